import ArgumentParser
import Foundation
import Strata

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show the history of an image.",
        discussion: """
            Steps are newest first. A step shows an image ID where a local image ends at that \
            step, <missing> otherwise; steps that made no layer show 0B.

            Examples:
              strata history busybox
              strata history --no-trunc --format json app:1
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false
    @Flag(name: .shortAndLong, help: "Only show image IDs.")
    var quiet = false
    @Option(name: [.customShort("H"), .long], help: "Print sizes and dates in human readable format (true|false).")
    var human: Bool = true
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table
    @Argument var image: String

    /// 2000-01-01T00:00:00Z: docker's history shows no age for a step dated up to it.
    static let epoch: TimeInterval = 946_684_800

    func run() async throws {
        let store = try await global.openStore()
        let items = try await store.history(of: image)
        if format == .json {
            print(try Output.json(items))
            return
        }
        let now = Date()
        func id(_ i: HistoryItem) -> String { i.id.map { Units.shortID($0, noTrunc: noTrunc) } ?? "<missing>" }
        if quiet {
            for i in items { print(id(i)) }
            return
        }
        let rows = items.map { i -> [String] in
            let by = i.createdBy.replacingOccurrences(of: "\t", with: " ")
            // Docker gives no age to a step dated up to 2000-01-01 (no date included): N/A.
            // Without -H it prints the API's seconds in the local time zone: 0 (no date) is
            // 1970-01-01.
            let dated = i.created.flatMap { $0.timeIntervalSince1970 > Self.epoch ? $0 : nil }
            let created = human ? Units.ago(dated, now: now) : Units.localRFC3339(i.created ?? Date(timeIntervalSince1970: 0))
            return [id(i), created, noTrunc ? by : Units.ellipsis(by, 45), human ? Units.size(i.size) : String(i.size), i.comment]
        }
        print(Output.table(["IMAGE", human ? "CREATED" : "CREATED AT", "CREATED BY", "SIZE", "COMMENT"], rows), terminator: "")
    }
}

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show low-level information on images (Docker's fields), as JSON.",
        discussion: "Example:\n  strata inspect busybox:latest")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Output format: json.")
    var format: String = "json"
    @Argument var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("inspect needs at least one image") }
        guard format == "json" else { throw ValidationError("invalid --format \"\(format)\": only json is supported") }
    }

    func run() async throws {
        let store = try await global.openStore()
        var out: [DockerImageInspect] = []
        for i in images { out.append(try await store.inspect(i).docker) }
        print(try Output.json(out))
    }
}

struct LayersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "Show an image's layers: chain ID, diffID, parent, size, stored blobs and the step that made each.",
        discussion: "Examples:\n  strata layers busybox\n  strata layers --format json app:1")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false
    @Argument var image: String

    func run() async throws {
        let store = try await global.openStore()
        let layers = try await store.layers(of: image)
        if format == .json {
            print(try Output.json(layers))
            return
        }
        let rows = layers.map { l -> [String] in
            [String(l.position), Units.shortID(l.chainID, noTrunc: noTrunc), Units.shortID(l.diffID, noTrunc: noTrunc),
             Units.size(l.size), l.blobs.first?.compression ?? "none",
             noTrunc ? (l.createdBy ?? "") : Units.ellipsis(l.createdBy ?? "", 45)]
        }
        print(Output.table(["#", "CHAIN ID", "DIFF ID", "SIZE", "COMPRESSION", "CREATED BY"], rows), terminator: "")
    }
}
