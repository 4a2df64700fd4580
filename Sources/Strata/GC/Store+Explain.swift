import Foundation
import GRDB

/// Why something is kept (``Store/explainRetention(_:)``).
public struct RetentionExplanation: Sendable, Codable {
    /// The node asked about, e.g. `image:sha256:…` or `blob:sha256:…`.
    public var subject: String
    /// Root first, subject last; nil when nothing reaches it.
    public var path: [String]?
}

extension Store {
    /// The path from a root (tag, container, lease, build cache) to an image or blob, as
    /// `gc --explain` prints it; nil path means unreferenced.
    public func explainRetention(_ ref: String) async throws -> RetentionExplanation {
        let t = now()
        return try await db.writeWithoutTransaction { db in
            var result: RetentionExplanation?
            try db.inTransaction(.deferred) {
                var node: String
                if let id = try? Self.resolve(ref, db: db) {
                    node = "image:\(id)"
                } else if let d = try? Digest(ref), try Bool.fetchOne(db, sql: "SELECT 1 FROM blobs WHERE digest = ?", arguments: [d.string]) == true {
                    node = "blob:\(d)"
                } else if let d = try? Digest(ref), try Bool.fetchOne(db, sql: "SELECT 1 FROM layers WHERE chain_id = ?", arguments: [d.string]) == true {
                    node = "layer:\(d)"
                } else {
                    throw StrataError(.imageNotFound, "no image, blob or layer matches \"\(ref)\"")
                }
                try Liveness.mark(db, now: t, cacheCutoff: t - 7 * 24 * 3600)
                var path = try Liveness.explain(node, db: db, now: t, cacheCutoff: t - 7 * 24 * 3600)
                // Name tag roots by their tags, the way a person reads them.
                if let first = path?.first, first.hasPrefix("image:") {
                    let tags = try String.fetchAll(db, sql: "SELECT name FROM tags WHERE image_id = ? ORDER BY name", arguments: [String(first.dropFirst(6))])
                    if let tag = tags.first { path?.insert("tag:\(Reference.stored(tag)?.familiar ?? tag)", at: 0) }
                }
                result = RetentionExplanation(subject: node, path: path)
                return .rollback
            }
            guard let result else { throw StrataError(.internalError, "explain produced no result") }
            return result
        }
    }
}
