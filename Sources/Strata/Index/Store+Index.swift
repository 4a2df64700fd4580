import Foundation
import GRDB

/// A layer of an image together with its indexed entries.
public struct IndexedLayer: Sendable {
    /// Position in the image's layer list (0 = base).
    public var position: Int
    public var chainID: Digest
    public var diffID: Digest
    /// The history step that made it (`created_by`), when the config says.
    public var createdBy: String?
    /// Position of that step in the image's history.
    public var historyPosition: Int?
    /// Sum of the tar headers' sizes (dive's layer size).
    public var size: Int64
    /// Number of tar entries.
    public var entryCount: Int
    /// The entries, one per path (the last tar entry for a path wins).
    public var entries: [LayerEntry]
    /// The layer's own root directory (`./`), when the tar has a header for it.
    public var root: LayerEntry?
}

extension Store {
    // MARK: - Recording

    /// Writes the index of every layer the images bring, from the spools their load pass
    /// produced. Runs after the images' own commit: a failure here leaves the layers
    /// unindexed, to be indexed lazily, never a broken image.
    func recordIndexes(_ images: [PendingImage]) async {
        var seen = Set<Digest>()
        var batch: [(Digest, LayerIndexSpool)] = []
        var rows = 0
        for image in images {
            for l in image.layers where seen.insert(l.blob.diffID).inserted {
                guard let spool = l.blob.index else { continue }
                batch.append((l.blob.diffID, spool))
                rows += spool.entries
                // Small layers share a transaction (10,000 one-file layers are not 10,000 commits).
                if rows >= Self.indexBatchRows {
                    try? await recordIndex(batch)
                    batch.removeAll()
                    rows = 0
                }
            }
        }
        if !batch.isEmpty { try? await recordIndex(batch) }
    }

    /// Index rows written per transaction before starting another (a bigger layer is still
    /// written in one transaction of its own).
    static let indexBatchRows = 20_000

    /// Inserts one layer's entries in one short transaction with a prepared statement,
    /// unless the diffID is indexed already (once per diffID) or no layer has it any more.
    func recordIndex(diffID: Digest, spool: LayerIndexSpool) async throws {
        try await recordIndex([(diffID, spool)])
    }

    /// - Parameter requireLayer: skip diffIDs no `layers` row names (false for a pull, which
    ///   indexes each layer blob as it arrives, before the image's rows exist; gc drops such an
    ///   index if the pull never commits its image).
    func recordIndex(_ layers: [(Digest, LayerIndexSpool)], requireLayer: Bool = true) async throws {
        let t = now()
        try await write { db in
            let stmt = try db.makeStatement(sql: """
                INSERT OR REPLACE INTO layer_files(layer_index, path, kind, marker, mode, uid, gid, size, link, digest)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for (diffID, spool) in layers {
                if requireLayer {
                    guard try Bool.fetchOne(db, sql: "SELECT 1 FROM layers WHERE diff_id = ? LIMIT 1", arguments: [diffID.string]) == true else { continue }
                }
                try db.execute(sql: """
                    INSERT OR IGNORE INTO layer_indexes(diff_id, entries, size, error, indexed_at) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [diffID.string, spool.entries, spool.size, spool.error, t])
                guard db.changesCount == 1 else { continue }
                let id = db.lastInsertedRowID
                guard spool.error == nil else { continue }
                try LayerIndexSpoolReader(spool).forEachRow { r in
                    stmt.setUncheckedArguments([id, Self.nameValue(r.path), r.kind, r.marker, r.mode, r.uid, r.gid, r.size,
                                                Self.nameValue(r.link), r.digest])
                    try stmt.execute()
                }
            }
        }
    }

    // MARK: - Lazy indexing and reindex

    /// Indexes the layers with these diffIDs that have no index yet (layers stored before
    /// migration 0006, or whose index was lost to a crash): each stored blob is read once.
    func ensureIndexed(_ diffIDs: [Digest]) async throws {
        let wanted = Array(Set(diffIDs))
        let missing = try await read { db -> [(Digest, Digest)] in
            var out: [(Digest, Digest)] = []
            for d in wanted {
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM layer_indexes WHERE diff_id = ?", arguments: [d.string]) == true { continue }
                guard let blob = try String.fetchOne(db, sql: """
                    SELECT lb.blob_digest FROM layer_blobs lb JOIN blobs b ON b.digest = lb.blob_digest
                    WHERE lb.diff_id = ? ORDER BY (lb.compression = 'none') DESC, b.size LIMIT 1
                    """, arguments: [d.string]) else { continue }
                out.append((d, try Digest(blob)))
            }
            return out
        }
        guard !missing.isEmpty else { return }
        let session = try blobs.newSession()
        defer { session.remove() }
        for (diffID, blob) in missing {
            let digester = StreamDigester(indexTo: session.newIndexSpoolPath(), checkTrailers: false)
            try blobs.open(blob).forEachChunk { digester.update($0) }
            let r = digester.finish()
            if let e = r.decodeError {
                throw StrataError(.corruptData, "layer \(diffID) cannot be indexed: blob \(blob) cannot be decompressed: \(e)")
            }
            guard r.diffID == diffID else {
                throw StrataError(.digestMismatch, "layer \(diffID) cannot be indexed: blob \(blob) decompresses to \(r.diffID); run strata fsck")
            }
            guard let spool = r.index else { continue }
            try await recordIndex(diffID: diffID, spool: spool)
        }
    }

    /// Indexes every layer of the store that has no file index yet (`strata reindex`), or
    /// with `force`, drops every index and builds it again. Returns how many layers were indexed.
    ///
    /// ```swift
    /// let n = try await store.reindex()
    /// ```
    @discardableResult
    public func reindex(force: Bool = false) async throws -> Int {
        if force {
            try await write { db in try db.execute(sql: "DELETE FROM layer_indexes") }
            CrashPoint.hit("reindex.after-drop")
        }
        let pending = try await read { db in
            try String.fetchAll(db, sql: """
                SELECT DISTINCT l.diff_id FROM layers l
                WHERE NOT EXISTS (SELECT 1 FROM layer_indexes x WHERE x.diff_id = l.diff_id)
                """).map { try Digest($0) }
        }
        try await ensureIndexed(pending)
        return pending.count
    }

    // MARK: - Reading

    /// The image's layers, bottom first, with their entries (indexing any that are missing).
    ///
    /// ```swift
    /// for layer in try await store.indexedLayers(of: "app:1") { print(layer.position, layer.entries.count) }
    /// ```
    public func indexedLayers(of ref: String) async throws -> [IndexedLayer] {
        try await indexedLayers(of: ref, prefilter: nil)
    }

    /// With `prefilter` (an SQLite GLOB, a superset of what the caller wants), only the rows
    /// that can matter are read: those matching it, every whiteout and opaque marker, and the
    /// rows at the ancestors of those paths (a file that replaced a directory on the way).
    func indexedLayers(of ref: String, prefilter: [String]?) async throws -> [IndexedLayer] {
        let (_, layers) = try await imageLayers(ref)
        try await ensureIndexed(layers.map(\.diffID))
        return try await read { db in
            var ids: [Int64] = []
            var out = try layers.map { l in
                var l = l
                guard let row = try Row.fetchOne(db, sql: "SELECT id, entries, size, error FROM layer_indexes WHERE diff_id = ?",
                                                 arguments: [l.diffID.string]) else {
                    throw StrataError(.blobNotFound, "layer \(l.diffID) has no stored blob to index")
                }
                if let e = row["error"] as String? {
                    throw StrataError(.corruptData, "layer \(l.diffID) is not a readable tar: \(e)")
                }
                l.size = row["size"]
                l.entryCount = row["entries"]
                ids.append(row["id"])
                l.entries = try Self.entries(ofIndex: row["id"], prefilter: prefilter, db: db)
                if let i = l.entries.firstIndex(where: { $0.path.isEmpty }) {
                    l.root = l.entries.remove(at: i)
                } else if prefilter != nil {
                    var root: [LayerEntry] = []
                    try Self.decode(Row.fetchCursor(db, sql: "\(Self.entryColumns) AND path = ''", arguments: [row["id"] as Int64]), into: &root)
                    l.root = root.first
                }
                return l
            }
            // Then every layer's rows at the ancestors of any candidate path.
            if prefilter != nil {
                var ancestors = Set<String>()
                for l in out {
                    for e in l.entries {
                        var p = LayerEntry.parent(of: e.path)
                        while !p.isEmpty, ancestors.insert(p).inserted { p = LayerEntry.parent(of: p) }
                    }
                }
                let list = Array(ancestors)
                for (i, id) in ids.enumerated() {
                    var have = Set(out[i].entries.map(\.path))
                    var start = 0
                    while start < list.count {
                        let chunk = Array(list[start..<min(start + 500, list.count)])
                        var found: [LayerEntry] = []
                        try Self.decode(Row.fetchCursor(db, sql: "\(Self.entryColumns) AND path IN (\(chunk.map { _ in "?" }.joined(separator: ",")))",
                                                        arguments: StatementArguments([id.databaseValue] + chunk.map(Self.nameValue))), into: &found)
                        out[i].entries += found.filter { !$0.path.isEmpty && have.insert($0.path).inserted }
                        start += 500
                    }
                }
            }
            return out
        }
    }

    static let entryColumns = "SELECT path, kind, marker, mode, uid, gid, size, link, digest FROM layer_files WHERE layer_index = ?"

    static func entries(ofIndex id: Int64, prefilter: [String]? = nil, db: Database) throws -> [LayerEntry] {
        var out: [LayerEntry] = []
        let columns = entryColumns
        guard let globs = prefilter else {
            try decode(Row.fetchCursor(db, sql: columns, arguments: [id]), into: &out)
            return out
        }
        // Names that are not UTF-8 are BLOBs: always candidates (the merged view matches them).
        let match = globs.map { _ in "path GLOB ?" }.joined(separator: " OR ")
        try decode(Row.fetchCursor(db, sql: "\(columns) AND (marker != 0 OR typeof(path) = 'blob' OR \(match))",
                                   arguments: StatementArguments([id] + globs)), into: &out)
        return out
    }

    /// A name as SQLite keeps it (law 9): TEXT when it is UTF-8, else a BLOB of its exact bytes.
    static func nameValue(_ name: String?) -> DatabaseValue {
        guard let name else { return .null }
        return RawName.hasRawBytes(name) ? Data(RawName.encode(name)).databaseValue : name.databaseValue
    }

    /// A name read back from a TEXT or BLOB column.
    static func name(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case .string(let s): return s
        case .blob(let d): return RawName.decode(d)
        default: return nil
        }
    }

    static func decode(_ cursor: RowCursor, into out: inout [LayerEntry]) throws {
        while let r = try cursor.next() {
            let raw: Data? = r[8]
            out.append(LayerEntry(path: name(r[0]) ?? "", kind: LayerEntry.Kind(rawValue: r[1]) ?? .other,
                                  marker: LayerEntry.Marker(rawValue: r[2]) ?? .none, mode: UInt32(truncatingIfNeeded: r[3] as Int64),
                                  uid: r[4], gid: r[5], size: r[6], linkTarget: name(r[7]),
                                  digest: raw.flatMap { Digest.xxh128(raw: $0) }))
        }
    }

    /// The image ID and its layers (no entries yet).
    func imageLayers(_ ref: String) async throws -> (Digest, [IndexedLayer]) {
        try await read { db in
            let id = try Self.resolve(ref, db: db)
            let rows = try Row.fetchAll(db, sql: """
                SELECT il.position, il.chain_id, l.diff_id, h.created_by, h.position AS hpos
                FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                LEFT JOIN history h ON h.image_id = il.image_id AND h.layer_position = il.position
                WHERE il.image_id = ? ORDER BY il.position
                """, arguments: [id.string])
            let layers = try rows.map { r in
                IndexedLayer(position: r["position"], chainID: try Digest(r["chain_id"] as String), diffID: try Digest(r["diff_id"] as String),
                             createdBy: r["created_by"], historyPosition: r["hpos"], size: 0, entryCount: 0, entries: [])
            }
            return (id, layers)
        }
    }
}

extension Data {
    /// Bytes from lowercase hex (pairs that are not hex are dropped).
    init(hex: String) {
        var out = [UInt8]()
        out.reserveCapacity(hex.utf8.count / 2)
        var hi: UInt8?
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: continue
            }
            if let h = hi { out.append(h << 4 | v); hi = nil } else { hi = v }
        }
        self.init(out)
    }
}
