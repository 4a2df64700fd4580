import ArgumentParser
import Foundation
import Strata

struct DfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "df",
        abstract: "Show disk usage and what gc could reclaim.",
        discussion: """
            The rows partition the bytes under the store root: Images are the stored blobs, \
            Orphans are files no row names (writes in progress, leftovers of a crash, files \
            queued for unlink), Metadata is the SQLite database. RECLAIMABLE is what prune and \
            gc could free.

            Examples:
              strata df
              strata df -v --format json
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Per-image SIZE / SHARED SIZE / UNIQUE SIZE.")
    var verbose = false
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table

    func run() async throws {
        let store = try await global.openStore()
        let usage = try await store.diskUsage(verbose: verbose)
        if format == .json { print(try Output.json(usage)); return }
        func pct(_ part: Int64, _ whole: Int64) -> String {
            whole > 0 ? " (\(Int((Double(part) / Double(whole) * 100).rounded()))%)" : ""
        }
        var rows = usage.rows.map { r -> [String] in
            [r.type, String(r.total), String(r.active), Units.size(r.size), Units.size(r.reclaimable) + pct(r.reclaimable, r.size)]
        }
        rows.append(["Total", "", "", Units.size(usage.totalSize), Units.size(usage.totalReclaimable) + pct(usage.totalReclaimable, usage.totalSize)])
        print(Output.table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows), terminator: "")
        print("\nLayers: \(usage.layers.total) (\(usage.layers.active) in use), \(Units.size(usage.layers.uncompressedSize)) uncompressed")
        guard verbose else { return }
        print("\nImages space usage:\n")
        let now = Date()
        var irows: [[String]] = []
        for i in usage.images {
            for (repo, tag) in Output.splitTags(i.tags) {
                irows.append([repo, tag, i.id.shortHex, Units.ago(i.created, now: now), Units.size(i.size),
                              Units.size(i.sharedSize), Units.size(i.uniqueSize), String(i.containers)])
            }
        }
        print(Output.table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], irows), terminator: "")
    }
}
