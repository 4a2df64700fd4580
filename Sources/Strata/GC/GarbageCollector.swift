import Foundation
import GRDB

/// Options for ``Store/collectGarbage(_:)``.
public struct GCOptions: Sendable {
    /// Count what would go, delete nothing.
    public var dryRun = false
    /// Nothing younger than this is deleted: rows added and files written within it stay.
    public var grace: TimeInterval = 3600
    /// Skip the run, fast, when nothing changed since the last gc.
    public var ifDirty = false
    /// Build-cache entries unused for longer than this are no longer roots.
    public var buildCacheKeep: TimeInterval = 7 * 24 * 3600

    public init(dryRun: Bool = false, grace: TimeInterval = 3600, ifDirty: Bool = false) {
        self.dryRun = dryRun
        self.grace = grace
        self.ifDirty = ifDirty
    }
}

/// What a gc run did. The JSON shape is stable (documented in the README).
public struct GCReport: Sendable, Codable, Equatable {
    public var dryRun = false
    /// True when the run did nothing on purpose (see ``reason``).
    public var skipped = false
    public var reason: String?
    public var freedBytes: Int64 = 0
    public var imagesRemoved = 0
    public var layersRemoved = 0
    public var blobsRemoved = 0
    public var snapshotsRemoved = 0
    public var orphanFilesRemoved = 0
    public var ingestDirsRemoved = 0
    /// Volume directories no row names (a `volume create` cut short between its mkdir and its row).
    public var orphanVolumesRemoved = 0
    public var leasesExpired = 0
    public var durationMs = 0

    public init() {}
}

extension Store {
    /// Frees everything nothing needs, and nothing anything needs.
    ///
    /// Marks from the roots (tags, containers, unexpired leases, build cache kept by policy;
    /// parents of live images are reached through their children) in one recursive query,
    /// deletes unmarked rows older than the grace period in one short IMMEDIATE transaction
    /// that queues their files, unlinks the files after the commit, then removes orphan
    /// files and directories older than the grace period. Only one gc runs at a time; a
    /// second returns at once with `skipped`.
    public func collectGarbage(_ options: GCOptions = GCOptions()) async throws -> GCReport {
        let start = Date()
        var report = GCReport()
        report.dryRun = options.dryRun
        guard let gcLock = try FileLock(tryPath: paths.locksDir.appendingPathComponent("gc.lock").path) else {
            report.skipped = true
            report.reason = "another gc is running"
            return report
        }
        defer { withExtendedLifetime(gcLock) {} }
        if options.ifDirty, !options.dryRun, try await !isDirty() {
            report.skipped = true
            report.reason = "nothing changed since the last gc"
            return report
        }
        if !options.dryRun { try replayPendingUnlinks() }
        let t = now()
        let cutoff = t - Int64(options.grace)
        let cacheCutoff = t - Int64(options.buildCacheKeep)
        do {
            // Deleters take the blob lock exclusively, before the write transaction (lock order).
            let blobLock = try await FileLock.acquire(paths.blobsLock, mode: .exclusive)
            defer { withExtendedLifetime(blobLock) {} }
            let counts = try await db.writeWithoutTransaction { db -> GCReport in
                var r = GCReport()
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
                try db.inTransaction(options.dryRun ? .deferred : .immediate) {
                    r = try Self.sweepRows(db, cutoff: cutoff, now: t, cacheCutoff: cacheCutoff, paths: self.paths)
                    if options.dryRun { return .rollback }
                    if r.imagesRemoved + r.layersRemoved + r.blobsRemoved + r.snapshotsRemoved + r.leasesExpired > 0 {
                        try db.execute(sql: "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mutations'")
                    }
                    return .commit
                }
                return r
            }
            report.freedBytes = counts.freedBytes
            report.imagesRemoved = counts.imagesRemoved
            report.layersRemoved = counts.layersRemoved
            report.blobsRemoved = counts.blobsRemoved
            report.snapshotsRemoved = counts.snapshotsRemoved
            report.leasesExpired = counts.leasesExpired
            if !options.dryRun {
                CrashPoint.hit("gc.after-commit")
                try replayPendingUnlinks()
            }
            let orphans = try await sweepOrphans(cutoff: cutoff, now: t, dryRun: options.dryRun)
            report.orphanFilesRemoved = orphans.files
            report.ingestDirsRemoved = orphans.ingest
            report.snapshotsRemoved += orphans.snapshots
            report.orphanVolumesRemoved = orphans.volumes
            report.freedBytes += orphans.bytes
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(.database, "gc failed: \(error)", cause: error)
        }
        if !options.dryRun {
            try await db.write { db in
                try db.execute(sql: "UPDATE meta SET value = (SELECT value FROM meta WHERE key = 'mutations') WHERE key = 'last_gc_mutations'")
            }
        }
        report.durationMs = Int(Date().timeIntervalSince(start) * 1000)
        return report
    }

    /// Whether anything changed since the last gc (mutations, leases, queued unlinks or
    /// writes in progress that a crash may have left behind).
    func isDirty() async throws -> Bool {
        let dirtyRows = try await read { db in
            try Bool.fetchOne(db, sql: """
                SELECT (SELECT value FROM meta WHERE key = 'mutations') != (SELECT value FROM meta WHERE key = 'last_gc_mutations')
                    OR EXISTS (SELECT 1 FROM leases) OR EXISTS (SELECT 1 FROM pending_unlinks)
                """) ?? true
        }
        if dirtyRows { return true }
        let ingest = (try? FileManager.default.contentsOfDirectory(atPath: paths.ingestDir.path)) ?? []
        return !ingest.isEmpty
    }

    /// Deletes unreachable rows older than `cutoff` and queues their files. Runs inside the
    /// caller's transaction.
    ///
    /// The rule is ``Liveness``: images the gc roots reach through parent links live
    /// (``Liveness/liveImagesCTE(_:)``); unreached images older than the grace period go,
    /// then ``Liveness/sweepContent(_:now:cutoff:blobs:paths:)`` removes the snapshots,
    /// layer chains, file indexes and blobs no remaining image, kept index or live lease
    /// needs. (``Liveness/mark`` walks the same rule as a graph for `gc --explain`;
    /// `GCTests` checks they agree.)
    static func sweepRows(_ db: Database, cutoff: Int64, now t: Int64, cacheCutoff: Int64, paths: StorePaths) throws -> GCReport {
        var r = GCReport()
        let args: StatementArguments = ["now": t, "cacheCutoff": cacheCutoff, "cutoff": cutoff]
        try db.execute(sql: "DROP TABLE IF EXISTS temp.gc_dead")
        try db.execute(sql: "CREATE TEMP TABLE gc_dead(id TEXT PRIMARY KEY) WITHOUT ROWID")
        try db.execute(sql: Liveness.liveImagesCTE(.gc) + """
            INSERT INTO temp.gc_dead(id)
            SELECT id FROM images WHERE added_at <= :cutoff AND id NOT IN (SELECT id FROM live_images)
            """, arguments: args)
        CrashPoint.hit("gc.after-mark")
        r.imagesRemoved = try Int.fetchOne(db, sql: "SELECT count(*) FROM temp.gc_dead") ?? 0
        if r.imagesRemoved > 0 {
            try db.execute(sql: "UPDATE images SET parent_id = NULL WHERE parent_id IN (SELECT id FROM temp.gc_dead)")
            try db.execute(sql: "DELETE FROM edges WHERE kind = 'image-manifest' AND src IN (SELECT id FROM temp.gc_dead)")
            try db.execute(sql: "DELETE FROM images WHERE id IN (SELECT id FROM temp.gc_dead)")
        }
        try db.execute(sql: "DROP TABLE temp.gc_dead")
        let swept = try Liveness.sweepContent(db, now: t, cutoff: cutoff, paths: paths)
        r.snapshotsRemoved = swept.snapshots
        r.layersRemoved = swept.layers
        r.blobsRemoved = swept.blobs
        r.freedBytes = swept.bytes
        try db.execute(sql: "DELETE FROM leases WHERE expires_at <= ?", arguments: [t])
        r.leasesExpired = db.changesCount
        return r
    }

    /// Removes files and directories no row names, when older than `cutoff` and held by no
    /// live lease: blob files, stale ingest sessions, snapshot and volume directories.
    func sweepOrphans(cutoff: Int64, now t: Int64, dryRun: Bool) async throws
        -> (files: Int, ingest: Int, snapshots: Int, volumes: Int, bytes: Int64) {
        let known = try await read { db -> (Set<String>, Set<String>, Set<String>) in
            let blobs = Set(try String.fetchAll(db, sql: "SELECT digest FROM blobs"))
            let leased = Set(try String.fetchAll(db, sql: "SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE l.expires_at > ?", arguments: [t]))
            let snaps = Set(try String.fetchAll(db, sql: "SELECT id FROM snapshots"))
            return (blobs, leased, snaps)
        }
        let fm = FileManager.default
        var files = 0, ingest = 0, snapshots = 0
        var bytes: Int64 = 0
        var removedFrom: Set<String> = []
        for algo in ["sha256", "sha512"] {
            let dir = paths.root.appendingPathComponent("blobs/\(algo)").path
            for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
                let digest = "\(algo):\(name)"
                guard !known.0.contains(digest), !known.1.contains(digest) else { continue }
                var st = stat()
                let path = dir + "/" + name
                guard lstat(path, &st) == 0, Int64(st.st_mtim.tv_sec) <= cutoff else { continue }
                if !dryRun {
                    CrashPoint.hit("gc.mid-orphans")
                    guard unlink(path) == 0 else { continue }
                    removedFrom.insert(dir)
                }
                files += 1
                bytes += Int64(st.st_size)
            }
        }
        for name in (try? fm.contentsOfDirectory(atPath: paths.ingestDir.path)) ?? [] {
            let dir = paths.ingestDir.appendingPathComponent(name)
            guard newestMtime(dir.path) <= cutoff else { continue }
            // A live session holds its lock; only abandoned ones can be taken.
            guard let sessionLock = try? FileLock(tryPath: dir.appendingPathComponent("lock").path) else { continue }
            defer { withExtendedLifetime(sessionLock) {} }
            bytes += treeSize(dir.path)
            if !dryRun { try? fm.removeItem(at: dir); removedFrom.insert(paths.ingestDir.path) }
            ingest += 1
        }
        // Snapshot directories: rows and leases are read again after the listing. An unpack
        // takes its lease before it makes `.tmp-<id>-…` and drops it in the transaction that
        // records the row, so whatever the listing saw is either leased or recorded by now.
        let snapDir = paths.root.appendingPathComponent("snapshots")
        let snapNames = (try? fm.contentsOfDirectory(atPath: snapDir.path)) ?? []
        let (snapRows, snapLeased) = try await read { db -> (Set<String>, Set<String>) in
            (Set(try String.fetchAll(db, sql: "SELECT id FROM snapshots")),
             Set(try String.fetchAll(db, sql: "SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE l.expires_at > ?", arguments: [t])))
        }
        for name in snapNames {
            let owner = name.hasPrefix(".tmp-") ? String(name.dropFirst(5).split(separator: "-").first ?? "") : name
            guard !known.2.contains(name), !snapRows.contains(name), !known.1.contains(owner), !snapLeased.contains(owner) else { continue }
            let dir = snapDir.appendingPathComponent(name)
            guard newestMtime(dir.path, depth: 1) <= cutoff else { continue }
            bytes += treeSize(dir.path)
            if !dryRun { try? fm.removeItem(at: dir); removedFrom.insert(snapDir.path) }
            snapshots += 1
        }
        let volumes = try await sweepOrphanVolumes(cutoff: cutoff, now: t, dryRun: dryRun, bytes: &bytes, removedFrom: &removedFrom)
        // What gc reported freed stays freed through a power cut.
        for dir in removedFrom { try fsyncDirectory(dir) }
        return (files, ingest, snapshots, volumes, bytes)
    }

    /// Volume directories with no row, older than `cutoff`: rows and leases are read after the
    /// listing, and a create holds a lease from before its mkdir until its row is committed,
    /// so what the listing saw is leased or recorded unless its create died.
    private func sweepOrphanVolumes(cutoff: Int64, now t: Int64, dryRun: Bool, bytes: inout Int64,
                                    removedFrom: inout Set<String>) async throws -> Int {
        let names = Self.orphanVolumeCandidates(paths)
        guard !names.isEmpty else { return 0 }
        let (rows, leased) = try await read { db -> (Set<String>, Set<String>) in
            (Set(try String.fetchAll(db, sql: "SELECT name FROM volumes")),
             Set(try String.fetchAll(db, sql: """
                SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE r.kind = 'volume' AND l.expires_at > ?
                """, arguments: [t])))
        }
        let volDir = paths.root.appendingPathComponent("volumes")
        var removed = 0
        for name in names where !rows.contains(name) && !leased.contains(name) {
            let dir = volDir.appendingPathComponent(name)
            guard newestMtime(dir.path, depth: 2) <= cutoff else { continue }
            bytes += treeSize(dir.path)
            if !dryRun { try? FileManager.default.removeItem(at: dir); removedFrom.insert(volDir.path) }
            removed += 1
        }
        return removed
    }

    /// Entries of `volumes/` (a first listing, before rows are read).
    static func orphanVolumeCandidates(_ paths: StorePaths) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: paths.root.appendingPathComponent("volumes").path)) ?? []
    }
}

/// The newest modification time of a path and (to `depth`) what is inside it.
func newestMtime(_ path: String, depth: Int = 2) -> Int64 {
    var st = stat()
    guard lstat(path, &st) == 0 else { return 0 }
    var newest = Int64(st.st_mtim.tv_sec)
    if depth > 0, (st.st_mode & S_IFMT) == S_IFDIR {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            newest = max(newest, newestMtime(path + "/" + name, depth: depth - 1))
        }
    }
    return newest
}

/// Bytes of regular files under `path`.
func treeSize(_ path: String) -> Int64 {
    var st = stat()
    guard lstat(path.cPath, &st) == 0 else { return 0 }
    switch st.st_mode & S_IFMT {
    case S_IFREG: return Int64(st.st_size)
    case S_IFDIR: return rawDirectoryEntries(path).reduce(0) { $0 + treeSize(path + "/" + $1) }
    default: return 0
    }
}
