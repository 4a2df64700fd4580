import Foundation
import GRDB

/// One step of an image's history, newest first, as `docker history` shows it.
public struct HistoryItem: Sendable, Codable, Hashable {
    /// The local image this step produced, or nil (`<missing>`) when no local image is known.
    public var id: Digest?
    public var created: Date?
    public var createdBy: String
    public var comment: String
    /// Uncompressed size of the layer this step made; 0 for an empty layer.
    public var size: Int64
    public var emptyLayer: Bool
    /// Tags of ``id``, in familiar form.
    public var tags: [String]

    /// The object Docker's `GET /images/{name}/history` lists for this step.
    public func dockerJSON() -> [String: Any] {
        [
            "Id": id?.string ?? "<missing>",
            "Created": Int64(created?.timeIntervalSince1970 ?? 0),
            "CreatedBy": createdBy,
            "Tags": tags.isEmpty ? NSNull() : tags as Any,
            "Size": size,
            "Comment": comment,
        ]
    }
}

extension Store {
    /// The history of an image, newest step first.
    ///
    /// Config history entries consume diffIDs in order (entries marked `empty_layer` do
    /// not); a step shows an image ID where a known local image ends at that step (the
    /// image itself and its parent chain), `<missing>` otherwise.
    public func history(of ref: String) async throws -> [HistoryItem] {
        try await read { db in
            let id = try Self.resolve(ref, db: db)
            let rows = try Row.fetchAll(db, sql: """
                WITH RECURSIVE anc(id, parent_id, history_count, depth) AS (
                    SELECT id, parent_id, history_count, 0 FROM images WHERE id = ?1
                    UNION ALL
                    SELECT i.id, i.parent_id, i.history_count, anc.depth + 1 FROM images i JOIN anc ON i.id = anc.parent_id
                    WHERE anc.depth < 10000
                )
                SELECT h.position, h.created, h.created_by, h.comment, h.empty_layer, l.size,
                       (SELECT anc.id FROM anc WHERE anc.history_count = h.position + 1 ORDER BY anc.depth LIMIT 1) AS step_id,
                       (SELECT group_concat(t.name, char(10)) FROM tags t JOIN anc ON t.image_id = anc.id
                         WHERE anc.history_count = h.position + 1) AS tags
                FROM history h
                LEFT JOIN image_layers il ON il.image_id = h.image_id AND il.position = h.layer_position
                LEFT JOIN layers l ON l.chain_id = il.chain_id
                WHERE h.image_id = ?1
                ORDER BY h.position DESC
                """, arguments: [id.string])
            return try rows.map { r in
                HistoryItem(
                    id: try (r["step_id"] as String?).map { try Digest($0) },
                    created: (r["created"] as Int64?).map { Date(timeIntervalSince1970: Double($0)) },
                    createdBy: r["created_by"], comment: r["comment"],
                    size: (r["size"] as Int64?) ?? 0, emptyLayer: r["empty_layer"],
                    tags: ((r["tags"] as String?) ?? "").split(separator: "\n").map { Reference.familiar(stored: String($0)) }.sorted())
            }
        }
    }

    /// The image's parent chain, starting with the image itself (one recursive query).
    public func lineage(of ref: String) async throws -> [ImageNode] {
        try await read { db in
            let id = try Self.resolve(ref, db: db)
            return try Self.nodes(db: db, sql: """
                WITH RECURSIVE anc(id, depth) AS (
                    SELECT id, 0 FROM images WHERE id = ?1
                    UNION ALL
                    SELECT i.parent_id, anc.depth + 1 FROM images i JOIN anc ON i.id = anc.id
                    WHERE i.parent_id IS NOT NULL AND anc.depth < 10000
                )
                """, id: id)
        }
    }

    /// Every image that builds on this one (children, grandchildren, …), depth-first order
    /// with ``ImageNode/depth`` giving the level (one recursive query).
    public func dependents(of ref: String) async throws -> [ImageNode] {
        try await read { db in
            let id = try Self.resolve(ref, db: db)
            return try Self.nodes(db: db, sql: """
                WITH RECURSIVE anc(id, depth, path) AS (
                    SELECT id, 0, id FROM images WHERE id = ?1
                    UNION ALL
                    SELECT i.id, anc.depth + 1, anc.path || '/' || i.id FROM images i JOIN anc ON i.parent_id = anc.id
                    WHERE anc.depth < 10000
                )
                """, id: id, order: "anc.path")
        }
    }

    private static func nodes(db: Database, sql: String, id: Digest, order: String = "anc.depth") throws -> [ImageNode] {
        try Row.fetchAll(db, sql: sql + """
            SELECT anc.depth, i.id, i.parent_id, i.created, i.size, i.layer_count, i.top_chain_id,
                   (SELECT group_concat(name, char(10)) FROM tags WHERE image_id = i.id) AS tags,
                   (SELECT created_by FROM history WHERE image_id = i.id ORDER BY position DESC LIMIT 1) AS created_by
            FROM anc JOIN images i ON i.id = anc.id ORDER BY \(order)
            """, arguments: [id.string]).map { r in
            ImageNode(depth: r["depth"], id: try Digest(r["id"] as String),
                      parentID: (r["parent_id"] as String?).flatMap { try? Digest($0) },
                      tags: ((r["tags"] as String?) ?? "").split(separator: "\n").map { Reference.familiar(stored: String($0)) }.sorted(),
                      created: (r["created"] as Int64?).map { Date(timeIntervalSince1970: Double($0)) },
                      size: r["size"], layerCount: r["layer_count"],
                      topChainID: (r["top_chain_id"] as String?).flatMap { try? Digest($0) },
                      createdBy: r["created_by"] ?? "")
        }
    }
}

/// An image in a lineage or dependents tree.
public struct ImageNode: Sendable, Codable, Hashable {
    /// 0 for the image asked about; 1 for its parent (lineage) or children (dependents); …
    public var depth: Int
    public var id: Digest
    public var parentID: Digest?
    public var tags: [String]
    public var created: Date?
    public var size: Int64
    public var layerCount: Int
    public var topChainID: Digest?
    /// The last history step's command.
    public var createdBy: String
}
