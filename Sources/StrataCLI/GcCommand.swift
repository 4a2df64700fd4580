import ArgumentParser
import Foundation
import Strata

struct GcCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Free everything nothing needs; safe while other processes write.",
        discussion: """
            Roots are tags, containers, unexpired leases and recent build cache; everything \
            they reach is kept, and nothing younger than --grace is touched. Exit 0 when all \
            went well (also when skipped because another gc runs), 1 on an error.

            Examples:
              strata gc
              strata gc --dry-run --format json
              strata gc --if-dirty -q          # from cron
              strata gc --explain busybox:latest
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Report what would be freed; delete nothing.")
    var dryRun = false
    @Option(help: "Keep anything younger than this (default 1h).")
    var grace: String = "1h"
    @Flag(help: "Skip the run, fast, when nothing changed since the last gc.")
    var ifDirty = false
    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text
    @Flag(name: .shortAndLong, help: "Print nothing unless something is wrong.")
    var quiet = false
    @Option(help: "Explain why an image or blob is kept (digest, image ID or reference).")
    var explain: String?

    func run() async throws {
        let graceSeconds = try Durations.parse(grace)
        let store = try await global.openStore()
        if let explain {
            let e = try await store.explainRetention(explain)
            if format == .json { print(try Output.json(e)); return }
            if let path = e.path {
                print("\(e.subject) is kept: " + path.joined(separator: " -> "))
            } else {
                print("\(e.subject) is unreferenced: the next gc past the grace period removes it")
            }
            return
        }
        let report = try await store.collectGarbage(GCOptions(dryRun: dryRun, grace: graceSeconds, ifDirty: ifDirty))
        if format == .json { print(try Output.json(report)); return }
        if quiet { return }
        if report.skipped {
            print("gc skipped: \(report.reason ?? "nothing to do")")
            return
        }
        let verb = dryRun ? "Would free" : "Freed"
        print("\(verb) \(Units.size(report.freedBytes)): \(report.imagesRemoved) images, \(report.layersRemoved) layers, "
              + "\(report.blobsRemoved) blobs, \(report.snapshotsRemoved) snapshots, \(report.orphanFilesRemoved) orphan files, "
              + "\(report.ingestDirsRemoved) stale ingest dirs, \(report.orphanVolumesRemoved) orphan volumes, \(report.leasesExpired) expired leases in \(String(format: "%.2f", Double(report.durationMs) / 1000))s")
    }
}

struct FsckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Check the store: database integrity, every blob's digest, orphans, configs against layers.",
        discussion: """
            Exits 0 when clean, 1 with a report of every problem otherwise. --repair fixes what \
            is safe (removes orphans, drops rows whose content is gone, marks images that lost \
            content broken) and says what it did.

            Examples:
              strata fsck
              strata fsck --quick --format json
              strata fsck --repair
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Check sizes only, not digests.")
    var quick = false
    @Flag(help: "Fix what can be fixed safely.")
    var repair = false
    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

    func run() async throws {
        let store = try await global.openStore()
        let report = try await store.check(quick: quick, repair: repair)
        if format == .json {
            print(try Output.json(report))
        } else {
            for p in report.problems {
                var line = "\(p.kind): \(p.subject): \(p.detail)"
                if let r = p.repaired { line += " [repaired: \(r)]" }
                print(line)
            }
            print("fsck: \(report.blobsChecked) blobs, \(report.imagesChecked) images checked, \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")"
                  + (repair ? ", \(report.problems.filter { $0.repaired != nil }.count) repaired" : ""))
        }
        if !report.clean { throw CommandFailed() }
    }
}

struct LeaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease",
        abstract: "Inspect leases: what in-flight operations hold.",
        subcommands: [LeaseList.self])
}

struct LeaseList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List leases and their expiry.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table

    func run() async throws {
        let store = try await global.openStore()
        let leases = try await store.leases()
        if format == .json { print(try Output.json(leases)); return }
        let now = Date()
        let rows = leases.map { l -> [String] in
            let left = l.expiresAt.timeIntervalSince(now)
            return [l.id, Units.ago(l.createdAt, now: now), left > 0 ? "in " + Units.duration(left) : "expired", l.description, String(l.refs.count)]
        }
        print(Output.table(["ID", "CREATED", "EXPIRES", "OPERATION", "REFS"], rows), terminator: "")
    }
}
