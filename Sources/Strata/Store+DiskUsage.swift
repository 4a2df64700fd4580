import Foundation
import GRDB

/// What `strata df` reports.
public struct DiskUsage: Sendable, Codable {
    /// One row of the summary table.
    public struct Row: Sendable, Codable {
        public var type: String
        public var total: Int
        public var active: Int
        public var size: Int64
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
    public var rows: [Row]
    public var images: [ImageUsage]
}

extension Store {
    /// Disk usage: images, layers and blobs, with what removing unused images would free.
    public func diskUsage(verbose: Bool = false) async throws -> DiskUsage {
        try await read { db in
            // Images in use: tagged, used by a container, or an ancestor of one of those.
            let used = """
                WITH RECURSIVE used(id) AS (
                    SELECT image_id FROM tags UNION SELECT image_id FROM containers
                    UNION SELECT i.parent_id FROM images i JOIN used u ON i.id = u.id WHERE i.parent_id IS NOT NULL
                ),
                used_blobs(digest) AS (
                    SELECT config_digest FROM images WHERE id IN (SELECT id FROM used)
                    UNION SELECT manifest_digest FROM images WHERE id IN (SELECT id FROM used)
                    UNION SELECT index_digest FROM images WHERE id IN (SELECT id FROM used) AND index_digest IS NOT NULL
                    UNION SELECT blob_digest FROM image_layers WHERE image_id IN (SELECT id FROM used)
                )
                """
            let images = try GRDB.Row.fetchOne(db, sql: used + """
                SELECT (SELECT count(*) FROM images) AS total, (SELECT count(*) FROM used) AS active,
                       (SELECT coalesce(sum(size), 0) FROM blobs) AS size,
                       (SELECT coalesce(sum(size), 0) FROM blobs WHERE digest NOT IN (SELECT digest FROM used_blobs)) AS reclaimable,
                       (SELECT count(*) FROM blobs) AS blobs,
                       (SELECT count(*) FROM blobs WHERE digest IN (SELECT digest FROM used_blobs)) AS active_blobs
                """)!
            let layers = try GRDB.Row.fetchOne(db, sql: used + """
                SELECT (SELECT count(*) FROM layers) AS total,
                       (SELECT count(DISTINCT chain_id) FROM image_layers WHERE image_id IN (SELECT id FROM used)) AS active,
                       (SELECT coalesce(sum(size), 0) FROM layers) AS size,
                       (SELECT coalesce(sum(size), 0) FROM layers WHERE chain_id NOT IN
                            (SELECT chain_id FROM image_layers WHERE image_id IN (SELECT id FROM used))) AS reclaimable
                """)!
            let pending = try Int.fetchOne(db, sql: "SELECT count(*) FROM pending_unlinks") ?? 0
            let containers = try Int.fetchOne(db, sql: "SELECT count(*) FROM containers") ?? 0
            let cache = try Int.fetchOne(db, sql: "SELECT count(*) FROM build_cache") ?? 0
            var rows = [
                DiskUsage.Row(type: "Images", total: images["total"], active: images["active"], size: images["size"], reclaimable: images["reclaimable"]),
                DiskUsage.Row(type: "Layers", total: layers["total"], active: layers["active"], size: layers["size"], reclaimable: layers["reclaimable"]),
                DiskUsage.Row(type: "Blobs", total: images["blobs"], active: images["active_blobs"], size: images["size"], reclaimable: images["reclaimable"]),
                DiskUsage.Row(type: "Containers", total: containers, active: 0, size: 0, reclaimable: 0),
                DiskUsage.Row(type: "Build Cache", total: cache, active: 0, size: 0, reclaimable: 0),
            ]
            if pending > 0 {
                rows.append(DiskUsage.Row(type: "Pending unlinks", total: pending, active: 0, size: 0, reclaimable: 0))
            }
            var perImage: [DiskUsage.ImageUsage] = []
            if verbose {
                let list = try GRDB.Row.fetchAll(db, sql: """
                    WITH uses AS (SELECT chain_id, count(DISTINCT image_id) AS n FROM image_layers GROUP BY chain_id)
                    SELECT i.id, i.created, i.size,
                           coalesce((SELECT sum(l.size) FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                                     JOIN uses u ON u.chain_id = il.chain_id WHERE il.image_id = i.id AND u.n > 1), 0) AS shared,
                           (SELECT group_concat(name, char(10)) FROM tags WHERE image_id = i.id) AS tags,
                           (SELECT count(*) FROM containers c WHERE c.image_id = i.id) AS containers
                    FROM images i ORDER BY coalesce(i.created, 0) DESC, i.id
                    """)
                for r in list {
                    let size: Int64 = r["size"]
                    let shared: Int64 = r["shared"]
                    perImage.append(DiskUsage.ImageUsage(
                        id: try Digest(r["id"] as String),
                        tags: ((r["tags"] as String?) ?? "").split(separator: "\n").compactMap { Reference.stored(String($0))?.familiar }.sorted(),
                        created: (r["created"] as Int64?).map { Date(timeIntervalSince1970: Double($0)) },
                        size: size, sharedSize: shared, uniqueSize: size - shared, containers: r["containers"]))
                }
            }
            return DiskUsage(rows: rows, images: perImage)
        }
    }
}
