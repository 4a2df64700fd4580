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
            let blobLock = try FileLock(path: paths.blobsLock, mode: .exclusive)
            defer { withExtendedLifetime(blobLock) {} }
            let counts = try await db.writeWithoutTransaction { db -> GCReport in
                var r = GCReport()
                try db.inTransaction(options.dryRun ? .deferred : .immediate) {
                    try Reachability.mark(db, now: t, cacheCutoff: cacheCutoff)
                    CrashPoint.hit("gc.after-mark")
                    r = try Self.sweepRows(db, cutoff: cutoff, now: t, paths: self.paths)
                    try Reachability.dropTemp(db)
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

    /// Deletes unmarked rows older than `cutoff` and queues their files. Runs inside the
    /// caller's transaction, after ``Reachability/mark(_:now:cacheCutoff:)``.
    static func sweepRows(_ db: Database, cutoff: Int64, now t: Int64, paths: StorePaths) throws -> GCReport {
        var r = GCReport()
        let deadImages = try String.fetchAll(db, sql: """
            SELECT id FROM images WHERE added_at <= ? AND NOT EXISTS (SELECT 1 FROM temp.gc_live WHERE node = 'image:' || images.id)
            """, arguments: [cutoff])
        if !deadImages.isEmpty {
            try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS gc_dead_images(id TEXT PRIMARY KEY)")
            try db.execute(sql: "DELETE FROM temp.gc_dead_images")
            for id in deadImages { try db.execute(sql: "INSERT INTO temp.gc_dead_images(id) VALUES (?)", arguments: [id]) }
            try db.execute(sql: "UPDATE images SET parent_id = NULL WHERE id IN (SELECT id FROM temp.gc_dead_images) OR parent_id IN (SELECT id FROM temp.gc_dead_images)")
            try db.execute(sql: "DELETE FROM edges WHERE src IN (SELECT id FROM temp.gc_dead_images) AND kind = 'image-manifest'")
            try db.execute(sql: "DELETE FROM images WHERE id IN (SELECT id FROM temp.gc_dead_images)")
            try db.execute(sql: "DROP TABLE temp.gc_dead_images")
            r.imagesRemoved = deadImages.count
        }
        // Snapshots of dead layers.
        let deadSnapshots = try String.fetchAll(db, sql: """
            SELECT id FROM snapshots WHERE created_at <= ? AND NOT EXISTS (SELECT 1 FROM temp.gc_live WHERE node = 'snapshot:' || snapshots.id)
            """, arguments: [cutoff])
        for s in deadSnapshots {
            try db.execute(sql: "DELETE FROM snapshots WHERE id = ?", arguments: [s])
            try db.execute(sql: "INSERT OR IGNORE INTO pending_unlinks(path, queued_at) VALUES (?, ?)", arguments: ["snapshots/\(s)", t])
        }
        r.snapshotsRemoved = deadSnapshots.count
        // Layer chains: unmarked, old enough, used by no remaining image; leaves first.
        while true {
            try db.execute(sql: """
                DELETE FROM layers WHERE chain_id IN (
                    SELECT l.chain_id FROM layers l
                    WHERE l.created_at <= ?
                      AND NOT EXISTS (SELECT 1 FROM temp.gc_live WHERE node = 'layer:' || l.chain_id)
                      AND NOT EXISTS (SELECT 1 FROM image_layers il WHERE il.chain_id = l.chain_id)
                      AND NOT EXISTS (SELECT 1 FROM layers c WHERE c.parent_chain_id = l.chain_id)
                      AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.chain_id = l.chain_id))
                """, arguments: [cutoff])
            if db.changesCount == 0 { break }
            r.layersRemoved += db.changesCount
        }
        // Blobs: unmarked, old enough, named by no remaining image.
        let deadBlobs = try Row.fetchAll(db, sql: """
            SELECT digest, size FROM blobs b
            WHERE b.created_at <= ?
              AND NOT EXISTS (SELECT 1 FROM temp.gc_live WHERE node = 'blob:' || b.digest)
              AND NOT EXISTS (SELECT 1 FROM images i WHERE i.config_digest = b.digest OR i.manifest_digest = b.digest OR i.index_digest = b.digest)
              AND NOT EXISTS (SELECT 1 FROM image_layers il WHERE il.blob_digest = b.digest)
            """, arguments: [cutoff])
        for row in deadBlobs {
            let d: String = row["digest"]
            let size: Int64 = row["size"]
            try db.execute(sql: "DELETE FROM blobs WHERE digest = ?", arguments: [d])
            if let digest = try? Digest(d) {
                try db.execute(sql: "INSERT OR IGNORE INTO pending_unlinks(path, queued_at) VALUES (?, ?)", arguments: [paths.blobRelative(digest), t])
            }
            r.freedBytes += size
        }
        r.blobsRemoved = deadBlobs.count
        try db.execute(sql: """
            DELETE FROM edges WHERE NOT EXISTS (SELECT 1 FROM blobs WHERE digest = edges.src)
                                AND NOT EXISTS (SELECT 1 FROM images WHERE id = edges.src)
            """)
        try db.execute(sql: "DELETE FROM leases WHERE expires_at <= ?", arguments: [t])
        r.leasesExpired = db.changesCount
        return r
    }

    /// Removes files and directories no row names, when older than `cutoff` and held by no
    /// live lease: blob files, stale ingest sessions, snapshot directories.
    func sweepOrphans(cutoff: Int64, now t: Int64, dryRun: Bool) async throws -> (files: Int, ingest: Int, snapshots: Int, bytes: Int64) {
        let known = try await read { db -> (Set<String>, Set<String>, Set<String>) in
            let blobs = Set(try String.fetchAll(db, sql: "SELECT digest FROM blobs"))
            let leased = Set(try String.fetchAll(db, sql: "SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE l.expires_at > ?", arguments: [t]))
            let snaps = Set(try String.fetchAll(db, sql: "SELECT id FROM snapshots"))
            return (blobs, leased, snaps)
        }
        let fm = FileManager.default
        var files = 0, ingest = 0, snapshots = 0
        var bytes: Int64 = 0
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
            if !dryRun { try? fm.removeItem(at: dir) }
            ingest += 1
        }
        let snapDir = paths.root.appendingPathComponent("snapshots")
        for name in (try? fm.contentsOfDirectory(atPath: snapDir.path)) ?? [] where !known.2.contains(name) {
            let dir = snapDir.appendingPathComponent(name)
            guard newestMtime(dir.path, depth: 1) <= cutoff else { continue }
            bytes += treeSize(dir.path)
            if !dryRun { try? fm.removeItem(at: dir) }
            snapshots += 1
        }
        return (files, ingest, snapshots, bytes)
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
    var total: Int64 = 0
    guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
    for case let rel as String in e {
        var st = stat()
        if lstat(path + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
    }
    var st = stat()
    if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
    return total
}
