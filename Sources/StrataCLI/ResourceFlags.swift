import ArgumentParser
import Foundation
import Strata

/// The limit flags of create, run and update (`ContainerResources`).
struct ResourceFlags: ParsableArguments {
    @Option(name: [.customShort("m"), .long], help: "Memory limit (bytes, or with a unit: 64m, 1g; at least 6m).")
    var memory: String?
    @Option(parsing: .unconditional, help: "Memory plus swap limit (as --memory; -1: unlimited swap; default: twice --memory).")
    var memorySwap: String?
    @Option(help: "CPUs it may use (1.5: one and a half).")
    var cpus: Double?
    @Option(help: "Relative CPU weight (default 1024).")
    var cpuShares: Int64?
    @Option(help: "CPUs it may run on (0-1,3).")
    var cpusetCpus: String?
    @Option(parsing: .unconditional, help: "Most processes it may have (0 or -1: no limit).")
    var pidsLimit: Int64?

    func resources() throws -> ContainerResources {
        ContainerResources(memory: try memory.map { try ByteSizes.memory($0, flag: "--memory") },
                           memorySwap: try memorySwap.map { $0 == "-1" ? -1 : try ByteSizes.memory($0, flag: "--memory-swap") },
                           nanoCPUs: cpus.map { Int64(($0 * 1e9).rounded()) }, cpuShares: cpuShares, cpusetCPUs: cpusetCpus,
                           pidsLimit: pidsLimit)
    }
}

struct UpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change the limits of containers (a running one's at once).",
        discussion: """
            The limits given replace the container's; the others stay. --pids-limit 0 or -1 \
            removes that limit. A memory limit alone keeps the swap limit and must stay below it.

            Examples:
              strata update -m 256m --memory-swap 512m web
              strata update --cpus 0.5 --pids-limit 100 web worker
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var limits: ResourceFlags
    @Argument(help: "Containers, by name or ID.") var containers: [String]

    func run() async throws {
        let update = try limits.resources()
        let store = try await global.openStore()
        for c in containers {
            try await store.updateResources(c, update)
            print(c)
        }
    }
}
