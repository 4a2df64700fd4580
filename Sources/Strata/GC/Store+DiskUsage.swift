import Foundation
import GRDB

/// What `strata df` reports. The rows partition the bytes under the store root: their
/// sizes add up to what is on disk (within directory overhead).
public struct DiskUsage: Sendable, Codable {
    /// One row of the summary table.
    public struct Row: Sendable, Codable {
        public var type: String
        public var total: Int
        public var active: Int
        public var size: Int64
        /// What gc (or prune and gc) could free.
        public var reclaimable: Int64
    }
    /// Per-image sizes for `df -v`.
    public struct ImageUsage: Sendable, Codable {
        public var id: Digest
        public var tags: [String]
        public var created: Date?
        public var size: Int64
        /// Bytes of layers other images use too.
        public var sharedSize: Int64
        public var uniqueSize: Int64
        public var containers: Int
    }
    /// Layer chains: how many, how many live images use, their uncompressed bytes.
    public struct Layers: Sendable, Codable {
        public var total: Int
        public var active: Int
        public var uncompressedSize: Int64
    }
    public var rows: [Row]
    public var layers: Layers
    public var images: [ImageUsage]
    /// Sum of the rows' sizes.
    public var totalSize: Int64 { rows.reduce(0) { $0 + $1.size } }
    public var totalReclaimable: Int64 { rows.reduce(0) { $0 + $1.reclaimable } }
}

private struct Counts: Sendable {
    var total: Int
    var active: Int
    var size: Int64
    var liveSize: Int64
}

extension Store {
    /// Disk usage, by what gc would keep and free: images (their blobs), snapshots, orphans
    /// and in-flight writes, pending unlinks, and the metadata database.
    public func diskUsage(verbose: Bool = false) async throws -> DiskUsage {
        let t = now()
        // Blob files are counted while the database is read (on another thread: listing a
        // directory of 30,000 files is a sixth of df's time), to find orphan files below.
        let blobDirs = [paths.blobsDir.path, paths.root.appendingPathComponent("blobs/sha512").path]
        async let fileCount = blobDirs.reduce(0) { $0 + countEntries($1) }
        let args: StatementArguments = ["now": t, "cacheCutoff": t - Int64(GCOptions().buildCacheKeep)]
        // The blob rows no image names are checked on a second connection at the same time
        // (a third of the SQL): a second read transaction, begun together with the first.
        async let unnamedDeadSize = read { db in
            // Usually no blob row is unnamed: then the rule's query is not even compiled.
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM blobs WHERE image_refs = 0)") == true else { return Int64(0) }
            return try Int64.fetchOne(db, sql: Liveness.deadBlobsSQL(unnamed: true) + """
                SELECT coalesce(sum(size), 0) FROM blobs WHERE digest IN (SELECT d FROM dead_blobs)
                """, arguments: args) ?? 0
        }
        let (namedImageRow, layerRow, snapRows, blobCount, containers, cache, pending) = try await read { db in
            let deadImages = try Int.fetchOne(db, sql: Liveness.deadImagesCTE(.gc) + "SELECT count(*) FROM dead_images", arguments: args) ?? 0
            guard let row = try GRDB.Row.fetchOne(db, sql: """
                SELECT (SELECT count(*) FROM images) AS total,
                       (SELECT coalesce(sum(size), 0) FROM blobs) AS size,
                       (SELECT count(*) FROM blobs) AS blob_count,
                       (SELECT count(*) FROM layers) AS layers_total,
                       -- Chains no image uses (image_refs, kept by triggers: a partial index).
                       (SELECT count(*) FROM layers WHERE image_refs = 0) AS layers_unused,
                       (SELECT coalesce(sum(size), 0) FROM layers) AS layers_size
                """) else { throw StrataError(.internalError, "disk usage query returned nothing") }
            // What only dead images need: asked of the rule when there are dead images.
            var deadSize: Int64 = 0, chainsOnlyDeadUse = 0
            let live = Liveness.deadBlobsSQL(unnamed: false)
            if deadImages > 0, let dead = try GRDB.Row.fetchOne(db, sql: live + """
                SELECT (SELECT coalesce(sum(size), 0) FROM blobs WHERE digest IN (SELECT d FROM dead_blobs)) AS dead_size,
                       (SELECT count(DISTINCT il.chain_id) FROM image_layers il WHERE il.image_id IN (SELECT id FROM dead_images)
                          AND NOT EXISTS (SELECT 1 FROM image_layers k WHERE k.chain_id = il.chain_id
                                          AND k.image_id NOT IN (SELECT id FROM dead_images))) AS chains
                """, arguments: args) {
                deadSize = dead["dead_size"]
                chainsOnlyDeadUse = dead["chains"]
            }
            let snaps = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM snapshots)") == true
                ? try GRDB.Row.fetchAll(db, sql: (deadImages > 0 ? live : "WITH dead_images(id) AS (SELECT NULL WHERE 0)\n") + """
                    SELECT s.id, EXISTS (SELECT 1 FROM image_layers il WHERE il.chain_id = s.chain_id
                                         AND il.image_id NOT IN (SELECT id FROM dead_images)) AS live
                    FROM snapshots s
                    """, arguments: args)
                : []
            let total: Int = row["total"], size: Int64 = row["size"]
            let i = Counts(total: total, active: total - deadImages, size: size, liveSize: size - deadSize)
            let layersTotal: Int = row["layers_total"], layersUnused: Int = row["layers_unused"]
            let l = Counts(total: layersTotal, active: layersTotal - layersUnused - chainsOnlyDeadUse, size: row["layers_size"], liveSize: 0)
            let blobCount: Int = row["blob_count"]
            let liveSnapshots = Dictionary(uniqueKeysWithValues: snaps.map { ($0["id"] as String, ($0["live"] as Bool?) ?? false) })
            return (i, l, liveSnapshots, blobCount,
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM containers") ?? 0,
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM build_cache") ?? 0,
                    try String.fetchAll(db, sql: "SELECT path FROM pending_unlinks"))
        }
        var imageRow = namedImageRow
        imageRow.liveSize -= try await unnamedDeadSize
        // Orphan blob files: when the directories hold as many files as there are rows,
        // there are none (fsck is the check for a missing file offset by an orphan).
        let blobDigests = await fileCount == blobCount
            ? nil : Set(try await read { db in try String.fetchAll(db, sql: "SELECT digest FROM blobs") })
        let fm = FileManager.default
        // Orphans: blob files with no row, ingest sessions, files queued for unlink.
        var orphanCount = 0
        var orphanBytes: Int64 = 0
        for algo in ["sha256", "sha512"] {
            guard let blobDigests else { break }
            let dir = paths.root.appendingPathComponent("blobs/\(algo)").path
            for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where !blobDigests.contains("\(algo):\(name)") {
                orphanCount += 1
                orphanBytes += treeSize(dir + "/" + name)
            }
        }
        for name in (try? fm.contentsOfDirectory(atPath: paths.ingestDir.path)) ?? [] {
            orphanCount += 1
            orphanBytes += treeSize(paths.ingestDir.appendingPathComponent(name).path)
        }
        for p in pending where !p.hasPrefix("blobs/") {
            orphanCount += 1
            orphanBytes += treeSize(paths.root.appendingPathComponent(p).path)
        }
        var snapBytes: Int64 = 0, snapReclaim: Int64 = 0, snapActive = 0
        let snapDir = paths.root.appendingPathComponent("snapshots")
        let liveSnaps = snapRows
        let snapNames = (try? fm.contentsOfDirectory(atPath: snapDir.path)) ?? []
        for name in snapNames {
            let size = treeSize(snapDir.appendingPathComponent(name).path)
            snapBytes += size
            if liveSnaps[name] == true { snapActive += 1 } else { snapReclaim += size }
        }
        let containersBytes = treeSize(paths.root.appendingPathComponent("containers").path)
        let volumesBytes = treeSize(paths.root.appendingPathComponent("volumes").path)
        let volumes = ((try? fm.contentsOfDirectory(atPath: paths.root.appendingPathComponent("volumes").path)) ?? []).count
        var metaBytes: Int64 = 0
        for f in ["strata.db", "strata.db-wal", "strata.db-shm"] { metaBytes += treeSize(paths.root.appendingPathComponent(f).path) }
        metaBytes += treeSize(paths.locksDir.path)

        let rows = [
            DiskUsage.Row(type: "Images", total: imageRow.total, active: imageRow.active, size: imageRow.size,
                          reclaimable: imageRow.size - imageRow.liveSize),
            DiskUsage.Row(type: "Containers", total: containers, active: 0, size: containersBytes, reclaimable: 0),
            DiskUsage.Row(type: "Local Volumes", total: volumes, active: 0, size: volumesBytes, reclaimable: 0),
            DiskUsage.Row(type: "Build Cache", total: cache, active: 0, size: 0, reclaimable: 0),
            DiskUsage.Row(type: "Snapshots", total: snapNames.count, active: snapActive, size: snapBytes, reclaimable: snapReclaim),
            DiskUsage.Row(type: "Orphans", total: orphanCount, active: 0, size: orphanBytes, reclaimable: orphanBytes),
            DiskUsage.Row(type: "Metadata", total: 1, active: 1, size: metaBytes, reclaimable: 0),
        ]
        let layers = DiskUsage.Layers(total: layerRow.total, active: layerRow.active, uncompressedSize: layerRow.size)
        var perImage: [DiskUsage.ImageUsage] = []
        if verbose {
            perImage = try await read { db in
                try GRDB.Row.fetchAll(db, sql: """
                    WITH uses AS (SELECT chain_id, count(DISTINCT image_id) AS n FROM image_layers GROUP BY chain_id)
                    SELECT i.id, i.created, i.size,
                           coalesce((SELECT sum(l.size) FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                                     JOIN uses u ON u.chain_id = il.chain_id WHERE il.image_id = i.id AND u.n > 1), 0) AS shared,
                           (SELECT group_concat(name, char(10)) FROM tags WHERE image_id = i.id) AS tags,
                           (SELECT count(*) FROM containers c WHERE c.image_id = i.id) AS containers
                    FROM images i ORDER BY coalesce(i.created, 0) DESC, i.id
                    """).map { r in
                    let size: Int64 = r["size"]
                    let shared: Int64 = r["shared"]
                    return DiskUsage.ImageUsage(
                        id: try Digest(r["id"] as String),
                        tags: ((r["tags"] as String?) ?? "").split(separator: "\n").map { Reference.familiar(stored: String($0)) }.sorted(),
                        created: (r["created"] as Int64?).map { Date(timeIntervalSince1970: Double($0)) },
                        size: size, sharedSize: shared, uniqueSize: size - shared, containers: r["containers"])
                }
            }
        }
        return DiskUsage(rows: rows, layers: layers, images: perImage)
    }
}

/// Number of entries in a directory (0 when it cannot be read), without building names.
func countEntries(_ path: String) -> Int {
    guard let d = opendir(path) else { return 0 }
    defer { closedir(d) }
    var n = 0
    while let e = readdir(d) {
        let first = e.pointee.d_name.0
        if first == 46 /* . */ {
            let second = e.pointee.d_name.1
            if second == 0 || (second == 46 && e.pointee.d_name.2 == 0) { continue }
        }
        n += 1
    }
    return n
}
