import ArgumentParser
import Foundation
import Strata

struct BuilderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "builder", abstract: "Manage the build cache.", subcommands: [BuilderDu.self, BuilderPrune.self])
}

/// Sizes as the docker CLI reads them: ``parse(_:)`` as `--keep-storage` (go-units'
/// FromHumanSize: `5GB`, `500MB`, `1.5g`, `1024` bytes; k, m, g, t are powers of 1000, kib,
/// mib… of 1024) and ``memory(_:flag:)`` as `--memory` (RAMInBytes: `64m`, `1g`, `512MiB`;
/// every unit a power of 1024).
enum ByteSizes {
    static func parse(_ s: String) throws -> Int64 {
        let factors: [String: Double] = ["": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
                                         "kib": 0x1p10, "mib": 0x1p20, "gib": 0x1p30, "tib": 0x1p40]
        guard let n = scaled(s, factors) else {
            throw StrataError(.invalidArgument, "invalid size \"\(s)\": use e.g. 500MB, 5GB or a number of bytes")
        }
        return n
    }

    static func memory(_ s: String, flag: String) throws -> Int64 {
        var factors: [String: Double] = ["": 1]
        for (unit, f) in [("b", 1.0), ("k", 0x1p10), ("m", 0x1p20), ("g", 0x1p30), ("t", 0x1p40), ("p", 0x1p50)] {
            factors[unit] = f
            if unit != "b" { factors[unit + "b"] = f; factors[unit + "ib"] = f }
        }
        guard let n = scaled(s, factors) else {
            throw StrataError(.invalidArgument, "invalid size \"\(s)\" for \(flag): use a number of bytes or one with a unit (64m, 1g)")
        }
        return n
    }

    /// The number times its unit's factor; nil for an unknown unit or a size past Int64.
    private static func scaled(_ s: String, _ factors: [String: Double]) -> Int64? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        let number = t.prefix { $0.isNumber || $0 == "." }
        let unit = t.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        guard let n = Double(number), n >= 0, let f = factors[unit], n * f < 9e18 else { return nil }
        return Int64(n * f)
    }
}

struct BuilderDu: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "du",
        abstract: "Show the build cache: one entry per built step.",
        discussion: """
            RECLAIMABLE is true when only the cache keeps the step's image (no tag, container or \
            lease reaches it): pruning the entry frees SIZE, the bytes its layer adds.

            Examples:
              strata builder du
              strata builder du --format json
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table

    func run() async throws {
        let store = try await global.openStore()
        let entries = try await store.buildCacheEntries()
        if format == .json { print(try Output.json(entries)); return }
        let now = Date()
        let rows = entries.map { e in
            [String(e.key.dropFirst("sha256:".count).prefix(12)), e.reclaimable ? "true" : "false", Units.size(e.size),
             Units.ago(e.lastUsed, now: now), String(e.uses), Units.ellipsis(e.instruction, 60)]
        }
        print(Output.table(["ID", "RECLAIMABLE", "SIZE", "LAST USED", "USES", "CREATED BY"], rows), terminator: "")
        let reclaimable = entries.filter(\.reclaimable).reduce(Int64(0)) { $0 + $1.size }
        let total = entries.reduce(Int64(0)) { $0 + $1.size }
        print("Reclaimable:\t\(Units.size(reclaimable))")
        print("Total:\t\t\(Units.size(total))")
    }
}

struct BuilderPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove build-cache entries and the images only they keep.",
        discussion: """
            Without -a only reclaimable entries (whose images no tag or container reaches) are \
            candidates. --keep-duration (or --filter until=) keeps entries used more recently; \
            --keep-storage keeps the most recently used entries up to a size. Both apply together: \
            an entry goes if it is too old or outside the budget.

            Examples:
              strata builder prune -f
              strata builder prune -a -f
              strata builder prune --keep-duration 48h --keep-storage 5GB -f
              strata builder prune --filter until=24h -f
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Remove all entries, not just reclaimable ones.")
    var all = false
    @Option(name: .customLong("keep-duration"), help: "Keep entries used within this long (e.g. 48h).")
    var keepDuration: String?
    @Option(name: .customLong("keep-storage"), help: "Keep the most recently used entries up to this size (e.g. 5GB).")
    var keepStorage: String?
    @Option(help: "Filter: until=DURATION (entries unused for longer).")
    var filter: [String] = []
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.")
    var force = false

    func run() async throws {
        var options = BuildCachePruneOptions(all: all)
        options.keepDuration = try keepDuration.map { try Durations.parse($0) }
        options.keepStorage = try keepStorage.map { try ByteSizes.parse($0) }
        for f in filter {
            guard f.hasPrefix("until=") else { throw StrataError(.invalidArgument, "invalid filter \"\(f)\": use until=DURATION") }
            let d = try Durations.parse(String(f.dropFirst(6)))
            options.keepDuration = min(options.keepDuration ?? d, d)
        }
        guard confirm(all ? "This will remove all build cache." : "This will remove all dangling build cache.", force: force) else { return }
        let store = try await global.openStore()
        let report = try await store.pruneBuildCache(options)
        if !report.removed.isEmpty {
            print("Deleted build cache objects:")
            for k in report.removed { print(String(k.dropFirst("sha256:".count).prefix(12))) }
            print("")
        }
        print("Total reclaimed space: \(Units.size(report.reclaimedBytes))")
    }
}
