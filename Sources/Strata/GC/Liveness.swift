import GRDB

/// The one rule for what the store keeps (docs/ARCHITECTURE.md, "Liveness").
///
/// **Roots** are tags, containers, unexpired leases and build-cache entries (all of them, or
/// those the policy keeps). **Edges**: an image needs its parent image, its config,
/// manifest and index blobs, and its layer chains and layer blobs; a layer chain needs its
/// parent chain, every stored encoding of its diffID (`layer_blobs`), its file index and its
/// snapshots; a kept index blob needs the manifests it lists and what they name; a lease
/// needs what it names. Everything a root reaches is live; nothing else is.
///
/// Each command picks its roots (``Roots``) and reads the rule from here:
/// - gc marks with ``liveImagesCTE(_:)`` (`Roots.gc`), deletes dead images past the grace
///   period, then ``sweepContent(_:now:cutoff:blobs:)`` removes content no remaining image
///   needs; rmi, image prune, system prune and builder prune delete the images their own
///   policy names and call the same sweep;
/// - df counts the same closure without deleting: ``deadImagesCTE(_:)`` (its complement,
///   from the few images that are not roots) and ``deadBlobsSQL`` through ``blobNeeded``;
/// - `gc --explain` walks the same roots and edges as a graph (``mark(_:now:cacheCutoff:)``);
/// - rmi's "in use" test is ``isRootSQL`` with every root kind.
///
/// `GCTests` declares small graphs as tables and checks every command against this rule.
enum Liveness {
    /// The kinds of root a command counts.
    struct Roots: OptionSet, Sendable {
        let rawValue: Int
        static let tags = Roots(rawValue: 1)
        static let containers = Roots(rawValue: 2)
        static let leases = Roots(rawValue: 4)
        /// Build-cache entries used since `:cacheCutoff` (gc's keep policy).
        static let keptBuildCache = Roots(rawValue: 8)
        /// Every build-cache entry.
        static let buildCache = Roots(rawValue: 16)

        /// gc, df and explain.
        static let gc: Roots = [.tags, .containers, .leases, .keptBuildCache]
        /// What makes an image busy for rmi and prune's parent walk.
        static let any: Roots = [.tags, .containers, .leases, .buildCache]
    }

    /// Each root kind once: the image it names, and its node in the explain graph.
    private static let rootKinds: [(kind: Roots, image: String, node: String)] = [
        (.tags, "SELECT image_id FROM tags", "SELECT 'image:' || image_id FROM tags"),
        (.containers, "SELECT image_id FROM containers", "SELECT 'container:' || id FROM containers"),
        (.leases, "SELECT r.ref AS image_id FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE l.expires_at > :now AND r.kind = 'image'",
         "SELECT 'lease:' || id FROM leases WHERE expires_at > :now"),
        (.keptBuildCache, "SELECT result_image_id AS image_id FROM build_cache WHERE last_used_at > :cacheCutoff",
         "SELECT 'cache:' || key FROM build_cache WHERE last_used_at > :cacheCutoff"),
        (.buildCache, "SELECT result_image_id AS image_id FROM build_cache", "SELECT 'cache:' || key FROM build_cache"),
    ]

    /// The images the roots name directly (`:now`, `:cacheCutoff` as needed).
    static func rootImagesSQL(_ roots: Roots) -> String {
        let parts = rootKinds.filter { roots.contains($0.kind) }.map(\.image)
        return parts.isEmpty ? "SELECT NULL WHERE 0" : parts.joined(separator: "\nUNION ")
    }

    /// Whether image `?1` is a root of any kind or has a child (`:now` bound as `?2`): rmi's
    /// "in use". One indexed EXISTS per root kind (each subquery flattens onto its index).
    static let isRootSQL = "SELECT " + rootKinds.filter { Roots.any.contains($0.kind) }.map {
        "EXISTS (SELECT 1 FROM (\($0.image.replacingOccurrences(of: ":now", with: "?2"))) WHERE image_id = ?1)"
    }.joined(separator: " OR ") + " OR EXISTS (SELECT 1 FROM images WHERE parent_id = ?1)"

    /// `WITH RECURSIVE live_images(id)`: the images the roots reach through parent links.
    /// One recursive query over indexed columns.
    static func liveImagesCTE(_ roots: Roots) -> String {
        """
        WITH RECURSIVE live_images(id) AS (
            \(rootImagesSQL(roots).replacingOccurrences(of: "\n", with: "\n    "))
            UNION SELECT i.parent_id FROM images i JOIN live_images li ON i.id = li.id WHERE i.parent_id IS NOT NULL
        )

        """
    }

    /// The content rule: whether blob `d` (an SQL expression) is needed, given which images
    /// and layer chains remain. `image(x)` / `chain(x)` are SQL conditions saying the image /
    /// chain `x` remains (`"1"` after the dead rows are deleted; df passes "not dead").
    /// `everyEncoding: false` drops the one clause that keeps another encoding of a kept layer
    /// (the push cache): a failed pull takes back an encoding it just added (law 8).
    static func blobNeeded(_ d: String, image: (String) -> String = { _ in "1" }, chain: (String) -> String = { _ in "1" },
                           everyEncoding: Bool = true) -> String {
        """
        (EXISTS (SELECT 1 FROM images i WHERE i.id = \(d) AND \(image("i.id")))
          OR EXISTS (SELECT 1 FROM images i WHERE i.manifest_digest = \(d) AND \(image("i.id")))
          OR EXISTS (SELECT 1 FROM images i WHERE i.index_digest = \(d) AND \(image("i.id")))
          OR EXISTS (SELECT 1 FROM image_layers il WHERE il.blob_digest = \(d) AND \(image("il.image_id")))
          OR (\(everyEncoding ? 1 : 0) AND EXISTS (SELECT 1 FROM layer_blobs lb JOIN layers l ON l.diff_id = lb.diff_id
                                                  WHERE lb.blob_digest = \(d) AND \(chain("l.chain_id"))))
          OR EXISTS (SELECT 1 FROM edges m JOIN images i ON i.index_digest = m.src
                     WHERE m.kind = 'manifest' AND m.dst = \(d) AND \(image("i.id")))
          OR EXISTS (SELECT 1 FROM edges c JOIN edges m ON m.kind = 'manifest' AND m.dst = c.src JOIN images i ON i.index_digest = m.src
                     WHERE c.kind IN ('config', 'layer') AND c.dst = \(d) AND \(image("i.id")))
          OR EXISTS (SELECT 1 FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE r.ref = \(d) AND l.expires_at > :now))
        """
    }

    /// `WITH RECURSIVE … dead_images(id)`: the images the roots do not reach, the complement
    /// of ``liveImagesCTE(_:)`` over the same roots and edges, found without walking every
    /// root's ancestry. An image that is not a root itself (usually few) is live only as an
    /// ancestor of a root, so the walk starts at the roots' parents that are not roots and
    /// climbs parent links through non-roots only. `LivenessTests` checks both forms agree.
    static func deadImagesCTE(_ roots: Roots) -> String {
        let notRoot = rootKinds.filter { roots.contains($0.kind) }
            .map { "NOT EXISTS (SELECT 1 FROM (\($0.image)) WHERE image_id = i.id)" }
        return """
            WITH RECURSIVE
            non_roots(id) AS MATERIALIZED (SELECT id FROM images i WHERE \(notRoot.isEmpty ? "1" : notRoot.joined(separator: "\n    AND "))),
            kept_non_roots(id) AS (
                SELECT c.parent_id FROM images c WHERE c.parent_id IN (SELECT id FROM non_roots) AND c.id NOT IN (SELECT id FROM non_roots)
                UNION SELECT p.parent_id FROM images p JOIN kept_non_roots k ON p.id = k.id WHERE p.parent_id IN (SELECT id FROM non_roots)
            ),
            dead_images(id) AS MATERIALIZED (SELECT id FROM non_roots EXCEPT SELECT id FROM kept_non_roots)

            """
    }

    /// CTEs `dead_images(id)` and `dead_blobs(d)` (gc's roots, no grace period): what gc
    /// would free, as one read with no temp tables, for `df`. The blobs examined are, with
    /// `unnamed` false, those the dead images name; with `unnamed` true, the blob rows no
    /// image names at all (index children, other encodings, leased or forgotten blobs). The
    /// two sets are disjoint, so df reads them at the same time on two connections and adds.
    /// "No image names it" is `blobs.image_refs = 0` (migration 0008's triggers keep the
    /// count; fsck recounts it), read from a partial index.
    static func deadBlobsSQL(unnamed: Bool) -> String {
        let candidates = unnamed ? """
            SELECT digest FROM blobs WHERE image_refs = 0
            """ : """
            SELECT id FROM dead_images
                UNION SELECT manifest_digest FROM images WHERE id IN (SELECT id FROM dead_images)
                UNION SELECT index_digest FROM images WHERE index_digest IS NOT NULL AND id IN (SELECT id FROM dead_images)
                UNION SELECT blob_digest FROM image_layers WHERE image_id IN (SELECT id FROM dead_images)
            """
        return deadImagesCTE(.gc) + """
            ,
            candidates(d) AS (
                \(candidates)
            ),
            dead_blobs(d) AS (
                SELECT d FROM candidates c WHERE NOT \(blobNeeded("c.d", image: { "\($0) NOT IN (SELECT id FROM dead_images)" }, chain: liveChainForDF))
            )

            """
    }

    /// df's "chain remains": a live image uses it (an image lists every chain of its stack).
    private static func liveChainForDF(_ chain: String) -> String {
        "EXISTS (SELECT 1 FROM image_layers k WHERE k.chain_id = \(chain) AND k.image_id NOT IN (SELECT id FROM dead_images))"
    }

    /// What a sweep removed.
    struct Swept {
        var snapshots = 0
        var layers = 0
        var blobs = 0
        var bytes: Int64 = 0
    }

    /// Deletes the content no remaining image needs, and queues its files for unlink
    /// (law 2: files go after the commit): snapshots and layer chains no image uses (top
    /// first), file indexes of diffIDs no chain has, then blobs not ``blobNeeded(_:image:chain:everyEncoding:)``.
    /// Only rows older than `cutoff` go (gc's grace period; nil: no age limit), and with
    /// `blobs` only those blobs are examined (rmi: the blobs of the images it deleted).
    /// With `blobsOnly` (a pull that failed: only the `blobs` it committed), snapshots and
    /// layer chains are left alone, only the file indexes of those blobs' diffIDs go, and a
    /// blob that is only another encoding of a kept layer goes too (the pull added it).
    /// Runs inside the caller's write transaction.
    static func sweepContent(_ db: Database, now t: Int64, cutoff: Int64?, blobs candidates: Set<String>? = nil,
                             blobsOnly: Bool = false, paths: StorePaths) throws -> Swept {
        var r = Swept()
        let age = cutoff ?? Int64.max
        if !blobsOnly {
            try sweepChains(db, age: age, now: t, into: &r)
        }
        // Blobs nothing needs.
        try db.execute(sql: "DROP TABLE IF EXISTS temp.dead_blobs")
        try db.execute(sql: "CREATE TEMP TABLE dead_blobs(digest TEXT PRIMARY KEY, size INTEGER) WITHOUT ROWID")
        defer { try? db.execute(sql: "DROP TABLE IF EXISTS temp.dead_blobs") }
        let scope: String
        if let candidates {
            try db.execute(sql: "DROP TABLE IF EXISTS temp.blob_candidates")
            try db.execute(sql: "CREATE TEMP TABLE blob_candidates(digest TEXT PRIMARY KEY) WITHOUT ROWID")
            for d in candidates { try db.execute(sql: "INSERT OR IGNORE INTO temp.blob_candidates VALUES (?)", arguments: [d]) }
            scope = "AND b.digest IN (SELECT digest FROM temp.blob_candidates)"
        } else {
            scope = ""
        }
        defer { if candidates != nil { try? db.execute(sql: "DROP TABLE IF EXISTS temp.blob_candidates") } }
        try db.execute(sql: """
            INSERT INTO temp.dead_blobs(digest, size)
            SELECT digest, size FROM blobs b
            WHERE b.created_at <= :cutoff \(scope) AND NOT \(blobNeeded("b.digest", everyEncoding: !blobsOnly))
            """, arguments: ["now": t, "cutoff": age])
        r.blobs = try Int.fetchOne(db, sql: "SELECT count(*) FROM temp.dead_blobs") ?? 0
        r.bytes = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM temp.dead_blobs") ?? 0
        if r.blobs > 0 {
            // The path comes from StorePaths.blobRelative, set-based through an SQL function.
            db.add(function: blobPathFunction(paths))
            try db.execute(sql: """
                INSERT OR IGNORE INTO pending_unlinks(path, queued_at)
                SELECT strata_blob_path(digest), ? FROM temp.dead_blobs WHERE strata_blob_path(digest) IS NOT NULL
                """, arguments: [t])
            if blobsOnly {
                // The file index of a layer no chain has and no other encoding still carries.
                try db.execute(sql: """
                    DELETE FROM layer_indexes WHERE diff_id IN (SELECT lb.diff_id FROM layer_blobs lb JOIN temp.dead_blobs d ON d.digest = lb.blob_digest)
                      AND NOT EXISTS (SELECT 1 FROM layers l WHERE l.diff_id = layer_indexes.diff_id)
                      AND NOT EXISTS (SELECT 1 FROM layer_blobs o WHERE o.diff_id = layer_indexes.diff_id
                                      AND o.blob_digest NOT IN (SELECT digest FROM temp.dead_blobs))
                    """)
            }
            try db.execute(sql: "DELETE FROM edges WHERE src IN (SELECT digest FROM temp.dead_blobs)")
            try db.execute(sql: "DELETE FROM blobs WHERE digest IN (SELECT digest FROM temp.dead_blobs)")
        }
        return r
    }

    /// Snapshots and layer chains no remaining image uses, and file indexes no chain has.
    private static func sweepChains(_ db: Database, age: Int64, now t: Int64, into r: inout Swept) throws {
        // Snapshots of chains no remaining image uses.
        let deadSnapshots = try String.fetchAll(db, sql: """
            SELECT id FROM snapshots s WHERE s.created_at <= ?
              AND NOT EXISTS (SELECT 1 FROM image_layers il WHERE il.chain_id = s.chain_id)
            """, arguments: [age])
        for s in deadSnapshots {
            try db.execute(sql: "DELETE FROM snapshots WHERE id = ?", arguments: [s])
            try db.execute(sql: "INSERT OR IGNORE INTO pending_unlinks(path, queued_at) VALUES (?, ?)", arguments: ["snapshots/\(s)", t])
        }
        r.snapshots = deadSnapshots.count
        // Layer chains no remaining image uses, top first so parents are free when reached.
        while true {
            try db.execute(sql: """
                DELETE FROM layers WHERE chain_id IN (
                    SELECT l.chain_id FROM layers l
                    WHERE l.created_at <= ?
                      AND NOT EXISTS (SELECT 1 FROM image_layers il WHERE il.chain_id = l.chain_id)
                      AND NOT EXISTS (SELECT 1 FROM layers c WHERE c.parent_chain_id = l.chain_id)
                      AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.chain_id = l.chain_id))
                """, arguments: [age])
            if db.changesCount == 0 { break }
            r.layers += db.changesCount
        }
        // A file index goes with the last chain of its diffID (its entries by cascade).
        try db.execute(sql: "DELETE FROM layer_indexes WHERE NOT EXISTS (SELECT 1 FROM layers l WHERE l.diff_id = layer_indexes.diff_id)")
    }

    /// `strata_blob_path(digest)`: ``StorePaths/blobRelative(_:)`` in SQL (NULL for a
    /// malformed digest).
    private static func blobPathFunction(_ paths: StorePaths) -> DatabaseFunction {
        DatabaseFunction("strata_blob_path", argumentCount: 1, pure: true) { values in
            guard let s = String.fromDatabaseValue(values[0]), let d = try? Digest(s) else { return nil }
            return paths.blobRelative(d)
        }
    }

    // MARK: The graph, for `gc --explain`

    /// Every edge of the rule, as `kind:id` nodes (`image:`, `blob:`, `layer:` (chain ID),
    /// `snapshot:`, `container:`, `lease:`, `cache:`).
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

    /// gc's roots as graph nodes.
    static let rootsSQL = rootKinds.filter { Roots.gc.contains($0.kind) }.map(\.node).joined(separator: "\nUNION ")

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
