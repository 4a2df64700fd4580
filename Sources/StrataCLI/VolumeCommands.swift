import ArgumentParser
import Foundation
import Strata

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Manage volumes.",
        subcommands: [VolumeCreate.self, VolumeList.self, VolumeInspect.self, VolumeRemove.self, VolumePrune.self])
}

struct VolumeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume and print its name.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Set a label (KEY=VALUE, or KEY for an empty value).") var label: [String] = []
    @Argument var name: String?
    func run() async throws {
        let labels = try ContainerFlags.labels(label)
        let store = try await global.openStore()
        print(try await store.createVolume(name, labels: labels).name)
    }
}

struct VolumeList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List volumes.",
        discussion: """
            Filters are docker's `volume ls --filter`: name=NAME (or an unanchored regular \
            expression), dangling=true|false (used by no container), driver=local, label.

            Examples:
              strata volume ls --filter dangling=true -q
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only show names.") var quiet = false
    @Option(name: .shortAndLong, help: "Filter output (key=value, repeatable).") var filter: [String] = []
    @Option(help: "Output format: table or json.") var format: TableFormat = .table
    func run() async throws {
        let filters = try VolumeFilters(try FilterOption.byKey(filter))
        let store = try await global.openStore()
        let list = try await store.volumes(filters: filters)
        if format == .json { print(try Output.json(list)); return }
        if quiet { for v in list { print(v.name) }; return }
        print(Output.table(["DRIVER", "VOLUME NAME"], list.map { ["local", $0.name] }), terminator: "")
    }
}

struct VolumeInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a volume as JSON.")
    @OptionGroup var global: GlobalOptions
    @Argument var names: [String]
    func run() async throws {
        let store = try await global.openStore()
        var out: [Any] = []
        for n in names {
            let v = try await store.volume(n)
            out.append(["Name": v.name, "Driver": "local", "Mountpoint": v.mountpoint, "CreatedAt": RFC3339.format(v.created),
                        "Labels": v.labels, "Scope": "local", "UsedBy": v.containers] as [String: Any])
        }
        print(try Output.jsonObject(out))
    }
}

struct VolumeRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove volumes no container uses.")
    @OptionGroup var global: GlobalOptions
    @Argument var names: [String]
    func run() async throws {
        let store = try await global.openStore()
        for n in try await store.removeVolumes(names) { print(n) }
    }
}

struct VolumePrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove the anonymous volumes no container uses (with -a, named ones too).",
        discussion: """
            Filters are docker's `volume prune --filter`: label=KEY[=VALUE], label!=KEY[=VALUE].

            Examples:
              strata volume prune -f
              strata volume prune -a -f --filter label=scratch
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Named volumes too, not only anonymous ones.") var all = false
    @Option(name: .customLong("filter"), help: "Filter (label=, label!=; repeatable).") var filter: [String] = []
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false
    func run() async throws {
        var options = try VolumePruneOptions(filters: try FilterOption.byKey(filter))
        options.all = options.all || all
        let what = options.all ? "all local volumes" : "anonymous local volumes"
        guard confirm("This will remove \(what) not used by at least one container.", force: force) else { return }
        let store = try await global.openStore()
        let report = try await store.pruneVolumes(options)
        if !report.removed.isEmpty {
            print("Deleted Volumes:")
            for n in report.removed { print(n) }
            print("")
        }
        print("Total reclaimed space: \(Units.size(report.reclaimedBytes))")
    }
}
