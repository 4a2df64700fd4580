import GRDB

extension Store {
    /// Resolves a user's image reference to an image ID: a full or short (≥ 4 hex) ID,
    /// with or without `sha256:`, or a tag such as `busybox` / `busybox:1.36`.
    public func resolve(_ ref: String) async throws -> Digest {
        try await read { db in try Self.resolve(ref, db: db) }
    }

    static func resolve(_ ref: String, db: Database) throws -> Digest {
        let (id, _) = try resolveWithTag(ref, db: db)
        return id
    }

    /// Like ``resolve(_:)`` and also tells whether the reference named a tag.
    static func resolveWithTag(_ ref: String, db: Database) throws -> (Digest, Reference?) {
        let trimmed = ref.hasPrefix("sha256:") ? String(ref.dropFirst(7)) : ref
        let isHex = trimmed.count >= 4 && trimmed.count <= 64 && trimmed.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        if isHex {
            // A tag that looks like hex wins only when it exists as a tag (Docker does the same).
            if trimmed.count < 64 || ref.hasPrefix("sha256:") {
                let ids = try String.fetchAll(db, sql: "SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2",
                                              arguments: ["sha256:" + trimmed, "sha256:" + trimmed + "g"])
                if ids.count > 1 { throw StrataError(.ambiguousImage, "image ID prefix \"\(trimmed)\" is ambiguous: use more characters") }
                if let id = ids.first {
                    if !ref.hasPrefix("sha256:"), let r = try? Reference(ref),
                       let tagged = try String.fetchOne(db, sql: "SELECT image_id FROM tags WHERE name = ?", arguments: [r.fullName]) {
                        return (try Digest(tagged), r)
                    }
                    return (try Digest(id), nil)
                }
            } else if let id = try String.fetchOne(db, sql: "SELECT id FROM images WHERE id = ?", arguments: ["sha256:" + trimmed]) {
                return (try Digest(id), nil)
            }
            if ref.hasPrefix("sha256:") { throw StrataError(.imageNotFound, "no such image: \(ref)") }
        }
        let r = try Reference(ref)
        if let d = r.digest {
            if let id = try String.fetchOne(db, sql: "SELECT image_id FROM repo_digests WHERE name = ? AND digest = ?", arguments: [r.name, d.string])
                ?? String.fetchOne(db, sql: "SELECT id FROM images WHERE manifest_digest = ? LIMIT 1", arguments: [d.string]) {
                return (try Digest(id), nil)
            }
            throw StrataError(.imageNotFound, "no such image: \(ref)")
        }
        guard let id = try String.fetchOne(db, sql: "SELECT image_id FROM tags WHERE name = ?", arguments: [r.fullName]) else {
            throw StrataError(.imageNotFound, "no such image: \(r.familiar)")
        }
        return (try Digest(id), r)
    }
}

extension Reference {
    /// Parses a stored full tag name back into a reference.
    static func stored(_ name: String) -> Reference? { try? Reference(name) }
}
