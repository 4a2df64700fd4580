import ArgumentParser
import Foundation
import Strata

/// Asks on the terminal unless `force`; a closed or non-interactive stdin means no.
func confirm(_ warning: String, force: Bool) -> Bool {
    if force { return true }
    print("WARNING! \(warning)\nAre you sure you want to continue? [y/N] ", terminator: "")
    fflush(nil)
    guard let answer = readLine() else { return false }
    return answer.lowercased() == "y" || answer.lowercased() == "yes"
}

func parsePruneFilters(_ filters: [String], all: Bool) throws -> PruneOptions {
    let byKey = try FilterOption.byKey(filters)
    // `dangling` is the API's spelling of -a: the CLI takes the flag only.
    for k in byKey.keys.sorted() where !["until", "label", "label!"].contains(k) {
        throw StrataError(.invalidArgument, "invalid filter \"\(k)\": use until, label or label!")
    }
    return try PruneOptions(all: all, filters: byKey)
}

struct ContainerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "container", abstract: "Manage containers.", subcommands: [ContainerPrune.self])
}

struct ContainerPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove every container that is not running, with its writable layer.",
        discussion: """
            Examples:
              strata container prune -f
              strata container prune --filter until=24h -f
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Filter: until=DURATION, label=KEY[=VALUE], label!=KEY[=VALUE].")
    var filter: [String] = []
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.")
    var force = false

    func run() async throws {
        let options = try ContainerPruneOptions(filters: try FilterOption.byKey(filter))
        guard confirm("This will remove all stopped containers.", force: force) else { return }
        let store = try await global.openStore()
        printContainerPrune(try await store.pruneContainers(options))
    }
}

func printContainerPrune(_ report: ContainerPruneReport, total: Bool = true) {
    if !report.removed.isEmpty {
        print("Deleted Containers:")
        for id in report.removed { print(id) }
        print("")
    }
    if total { print("Total reclaimed space: \(Units.size(report.reclaimedBytes))") }
}

struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "image", abstract: "Manage images.", subcommands: [ImagePrune.self, ImageDiffCommand.self])
}

struct ImagePrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove dangling images (with -a: every image no container uses).",
        discussion: """
            Examples:
              strata image prune -f
              strata image prune -a --filter until=24h -f
              strata image prune --filter label=stage=build -f
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Remove all unused images, not just dangling ones.")
    var all = false
    @Option(help: "Filter: until=DURATION, label=KEY[=VALUE].")
    var filter: [String] = []
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.")
    var force = false

    func run() async throws {
        let options = try parsePruneFilters(filter, all: all)
        guard confirm(all ? "This will remove all images without at least one container associated to them."
                          : "This will remove all dangling images.", force: force) else { return }
        let store = try await global.openStore()
        let report = try await store.pruneImages(options)
        printPrune(report)
    }
}

func printPrune(_ report: PruneReport) {
    if !report.events.isEmpty {
        print("Deleted Images:")
        for e in report.events {
            switch e {
            case .untagged(let t): print("untagged: \(t)")
            case .deleted(let d): print("deleted: \(d)")
            }
        }
        print("")
    }
    print("Total reclaimed space: \(Units.size(report.reclaimedBytes))")
}

struct SystemCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "system", abstract: "Manage the store.", subcommands: [SystemPrune.self])
}

struct SystemPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove stopped containers, unused images and build cache, then run gc.",
        discussion: "Example:\n  strata system prune -a -f")

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Remove all unused images, not just dangling ones.")
    var all = false
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.")
    var force = false

    func run() async throws {
        guard confirm("This will remove:\n  - all stopped containers\n  - all \(all ? "images without at least one container associated to them" : "dangling images")\n  - all build cache\n  - everything gc finds unreferenced",
                      force: force) else { return }
        let store = try await global.openStore()
        let containers = try await store.pruneContainers()
        printContainerPrune(containers, total: false)
        var report = try await store.pruneImages(PruneOptions(all: all))
        report.reclaimedBytes += containers.reclaimedBytes
        let cache = try await store.pruneBuildCache()
        let gc = try await store.collectGarbage()
        report.reclaimedBytes += gc.freedBytes
        printPrune(report)
        if cache > 0 { print("Deleted build cache entries: \(cache)") }
    }
}
