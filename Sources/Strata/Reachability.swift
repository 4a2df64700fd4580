import GRDB

/// The store's object graph for garbage collection, all in SQL.
///
/// Nodes are `kind:id` strings: `image:sha256:…`, `blob:sha256:…`, `layer:sha256:…`
/// (chain ID), `container:…`, `lease:…`, `cache:…`. Edges come from the relational tables
/// and from the stored content graph (`edges`: index → manifest, manifest → config and
/// layer blobs). Marking is one recursive query over them.
enum Reachability {
    /// Every edge of the graph.
    static let edgesSQL = """
        SELECT 'image:' || id AS src, 'blob:' || manifest_digest AS dst FROM images
        UNION ALL SELECT 'image:' || id, 'blob:' || config_digest FROM images
        UNION ALL SELECT 'image:' || id, 'blob:' || index_digest FROM images WHERE index_digest IS NOT NULL
        UNION ALL SELECT 'image:' || id, 'image:' || parent_id FROM images WHERE parent_id IS NOT NULL
        UNION ALL SELECT 'image:' || image_id, 'layer:' || chain_id FROM image_layers
        UNION ALL SELECT 'image:' || image_id, 'blob:' || blob_digest FROM image_layers
        UNION ALL SELECT 'layer:' || chain_id, 'layer:' || parent_chain_id FROM layers WHERE parent_chain_id IS NOT NULL
        UNION ALL SELECT 'layer:' || l.chain_id, 'blob:' || lb.blob_digest FROM layers l JOIN layer_blobs lb ON lb.diff_id = l.diff_id
        UNION ALL SELECT 'layer:' || s.chain_id, 'snapshot:' || s.id FROM snapshots s WHERE s.chain_id IS NOT NULL
        UNION ALL SELECT 'blob:' || src, 'blob:' || dst FROM edges WHERE kind IN ('manifest', 'config', 'layer')
        UNION ALL SELECT 'container:' || id, 'image:' || image_id FROM containers
        UNION ALL SELECT 'cache:' || key, 'image:' || result_image_id FROM build_cache
        UNION ALL SELECT 'lease:' || lease_id, kind || ':' || ref FROM lease_refs
        """

    /// The roots: tags, containers, unexpired leases, and build-cache entries the policy keeps.
    /// (Images with live children are reached through the child → parent edge.)
    static let rootsSQL = """
        SELECT 'image:' || image_id FROM tags
        UNION SELECT 'container:' || id FROM containers
        UNION SELECT 'lease:' || id FROM leases WHERE expires_at > :now
        UNION SELECT 'cache:' || key FROM build_cache WHERE last_used_at > :cacheCutoff
        """

    /// The marking query: images reached from the roots (tags, containers, build cache kept
    /// by policy, leases) through parent links. One recursive CTE over indexed columns.
    static let liveImagesCTE = """
        WITH RECURSIVE live_images(id) AS (
            SELECT image_id FROM tags
            UNION SELECT image_id FROM containers
            UNION SELECT result_image_id FROM build_cache WHERE last_used_at > :cacheCutoff
            UNION SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE l.expires_at > :now AND r.kind = 'image'
            UNION SELECT i.parent_id FROM images i JOIN live_images li ON i.id = li.id WHERE i.parent_id IS NOT NULL
        )
        """

    /// ``liveImagesCTE`` ready to be followed by a statement.
    static let liveImagesSQL = liveImagesCTE + "\n"

    /// CTEs `live_images(id)`, `dead_images(id)` and `dead_blobs(d)`: the same closure as
    /// ``mark(_:now:cacheCutoff:)`` seen from the other side, written for the indexes so `df`
    /// stays one fast read with no temp tables. Only blobs of dead images, and blob rows no
    /// image names, are ever examined. `GCTests` checks that it agrees with gc on every graph.
    static let deadBlobsSQL = liveImagesCTE + """
        ,
        dead_images(id) AS (SELECT id FROM images EXCEPT SELECT id FROM live_images),
        live_indexes(d) AS (SELECT index_digest FROM images WHERE index_digest IS NOT NULL AND id IN (SELECT id FROM live_images)),
        index_manifests(d) AS (SELECT dst FROM edges WHERE kind = 'manifest' AND src IN (SELECT d FROM live_indexes)),
        index_content(d) AS (
            SELECT d FROM index_manifests
            UNION SELECT dst FROM edges WHERE kind IN ('config', 'layer') AND src IN (SELECT d FROM index_manifests)
        ),
        leased(d) AS (SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE l.expires_at > :now AND r.kind = 'blob'),
        candidates(d) AS (
            SELECT id FROM dead_images
            UNION SELECT manifest_digest FROM images WHERE id IN (SELECT id FROM dead_images)
            UNION SELECT index_digest FROM images WHERE index_digest IS NOT NULL AND id IN (SELECT id FROM dead_images)
            UNION SELECT blob_digest FROM image_layers WHERE image_id IN (SELECT id FROM dead_images)
            UNION SELECT digest FROM blobs b
                WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.id = b.digest)
                  AND NOT EXISTS (SELECT 1 FROM images i WHERE i.manifest_digest = b.digest)
                  AND NOT EXISTS (SELECT 1 FROM images i WHERE i.index_digest = b.digest)
                  AND NOT EXISTS (SELECT 1 FROM image_layers il WHERE il.blob_digest = b.digest)
        ),
        dead_blobs(d) AS (
            SELECT d FROM candidates c
            WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.id = c.d AND i.id NOT IN (SELECT id FROM dead_images))
              AND NOT EXISTS (SELECT 1 FROM images i WHERE i.manifest_digest = c.d AND i.id NOT IN (SELECT id FROM dead_images))
              AND NOT EXISTS (SELECT 1 FROM images i WHERE i.index_digest = c.d AND i.id NOT IN (SELECT id FROM dead_images))
              AND NOT EXISTS (SELECT 1 FROM image_layers il WHERE il.blob_digest = c.d AND il.image_id NOT IN (SELECT id FROM dead_images))
              AND NOT EXISTS (SELECT 1 FROM layer_blobs lb JOIN layers l ON l.diff_id = lb.diff_id
                              JOIN image_layers il ON il.chain_id = l.chain_id
                              WHERE lb.blob_digest = c.d AND il.image_id NOT IN (SELECT id FROM dead_images))
              AND c.d NOT IN (SELECT d FROM index_content)
              AND c.d NOT IN (SELECT d FROM leased)
        )

        """

    /// Builds `temp.gc_edges` and `temp.gc_live` in this connection. One recursive query marks.
    static func mark(_ db: Database, now: Int64, cacheCutoff: Int64) throws {
        try db.execute(sql: "DROP TABLE IF EXISTS temp.gc_edges; DROP TABLE IF EXISTS temp.gc_live")
        try db.execute(sql: "CREATE TEMP TABLE gc_edges AS \(edgesSQL)")
        try db.execute(sql: "CREATE INDEX temp.gc_edges_src ON gc_edges(src)")
        try db.execute(sql: "CREATE INDEX temp.gc_edges_dst ON gc_edges(dst)")
        try db.execute(sql: """
            CREATE TEMP TABLE gc_live AS
            WITH RECURSIVE live(node) AS (
                \(rootsSQL)
                UNION
                SELECT e.dst FROM gc_edges e JOIN live ON e.src = live.node
            )
            SELECT node FROM live
            """, arguments: ["now": now, "cacheCutoff": cacheCutoff])
        try db.execute(sql: "CREATE UNIQUE INDEX temp.gc_live_node ON gc_live(node)")
    }

    static func dropTemp(_ db: Database) throws {
        try db.execute(sql: "DROP TABLE IF EXISTS temp.gc_edges; DROP TABLE IF EXISTS temp.gc_live")
    }

    /// The roots as a set of nodes.
    static func roots(_ db: Database, now: Int64, cacheCutoff: Int64) throws -> [String] {
        try String.fetchAll(db, sql: rootsSQL, arguments: ["now": now, "cacheCutoff": cacheCutoff])
    }

    /// A path from a root to `node` (root first), or nil when nothing reaches it.
    /// Walks the reverse edges breadth-first; needs `mark` to have run in this connection.
    static func explain(_ node: String, db: Database, now: Int64, cacheCutoff: Int64) throws -> [String]? {
        let roots = Set(try roots(db, now: now, cacheCutoff: cacheCutoff))
        if roots.contains(node) { return [node] }
        var previous: [String: String] = [:]
        var frontier = [node]
        var seen: Set<String> = [node]
        while !frontier.isEmpty {
            var next: [String] = []
            for n in frontier {
                for src in try String.fetchAll(db, sql: "SELECT src FROM temp.gc_edges WHERE dst = ?", arguments: [n]) where !seen.contains(src) {
                    seen.insert(src)
                    previous[src] = n
                    if roots.contains(src) {
                        var path = [src]
                        var cur = src
                        while let p = previous[cur] { path.append(p); cur = p }
                        return path
                    }
                    next.append(src)
                }
            }
            frontier = next
        }
        return nil
    }
}
