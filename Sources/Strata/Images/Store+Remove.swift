import Foundation
import GRDB

/// What `rmi` did, in order, as Docker prints it.
public enum RemovalEvent: Sendable, Hashable, Codable, CustomStringConvertible {
    case untagged(String)
    case deleted(Digest)

    public var description: String {
        switch self {
        case .untagged(let t): return "Untagged: \(t)"
        case .deleted(let d): return "Deleted: \(d)"
        }
    }
}

extension Store {
    /// Removes an image, following Docker's rules:
    /// - by tag: the tag goes; the image goes with its last tag unless child images use it;
    ///   the last tag of an image a container uses goes only with `force`;
    /// - by ID: refused when several repositories tag it, or child images use it, unless `force`;
    /// - `force` removes every tag of the image and the image, even with children;
    /// - untagged parents that nothing else needs go too.
    ///
    /// Rows go in one transaction that queues the blob files to unlink; files are
    /// unlinked after the commit (law 2).
    public func removeImage(_ ref: String, force: Bool = false) async throws -> [RemovalEvent] {
        let lock = try await FileLock.acquire(paths.blobsLock, mode: .exclusive)
        defer { withExtendedLifetime(lock) {} }
        let events = try await write { db -> [RemovalEvent] in
            let (id, named) = try Self.resolveWithTag(ref, db: db)
            let tags = try String.fetchAll(db, sql: "SELECT name FROM tags WHERE image_id = ? ORDER BY name", arguments: [id.string])
            let children = try Int.fetchOne(db, sql: "SELECT count(*) FROM images WHERE parent_id = ?", arguments: [id.string]) ?? 0
            let containers = try String.fetchAll(db, sql: "SELECT id FROM containers WHERE image_id = ?", arguments: [id.string])
            var events: [RemovalEvent] = []
            func untag(_ name: String) throws {
                try db.execute(sql: "DELETE FROM tags WHERE name = ?", arguments: [name])
                events.append(.untagged(Reference.stored(name)?.familiar ?? name))
            }
            if let c = containers.first {
                // Docker: a container's image keeps existing; -f only removes the names. A tag
                // of an image that keeps another tag goes without -f: the image stays named.
                guard force || (named != nil && tags.count > 1) else {
                    let what = named.map { "repository reference \"\($0.familiar)\"" } ?? id.shortHex
                    throw StrataError(.conflict, "conflict: unable to remove \(what) (must force) - container \(String(c.prefix(12))) is using its referenced image \(id.shortHex)")
                }
                if let named { try untag(named.fullName) } else { for t in tags { try untag(t) } }
                return events
            }
            if let named, !force {
                try untag(named.fullName)
                if tags.count > 1 || children > 0 { return events }
            } else {
                if !force {
                    let repos = Set(tags.compactMap { Reference.stored($0)?.name })
                    if repos.count > 1 {
                        throw StrataError(.conflict, "conflict: unable to delete \(id.shortHex) (must be forced) - image is referenced in multiple repositories")
                    }
                    if children > 0 {
                        throw StrataError(.conflict, "conflict: unable to delete \(id.shortHex) (must be forced) - image has dependent child images")
                    }
                }
                for t in tags { try untag(t) }
            }
            var candidates = Set<String>()
            var next: String? = id.string
            var first = true
            while let victim = next {
                if !first {
                    // An untagged parent goes only if it is no root and has no other child.
                    let busy = try Bool.fetchOne(db, sql: Liveness.isRootSQL, arguments: [victim, now()]) ?? true
                    if busy { break }
                }
                first = false
                let parent = try String.fetchOne(db, sql: "SELECT parent_id FROM images WHERE id = ?", arguments: [victim])
                candidates.formUnion(try Self.blobsOf(victim, db: db))
                try db.execute(sql: "UPDATE images SET parent_id = NULL WHERE parent_id = ?", arguments: [victim])
                try db.execute(sql: "DELETE FROM build_cache WHERE result_image_id = ?", arguments: [victim])
                try db.execute(sql: "DELETE FROM edges WHERE src = ?", arguments: [victim])
                try db.execute(sql: "DELETE FROM images WHERE id = ?", arguments: [victim])
                events.append(.deleted(try Digest(victim)))
                next = parent
            }
            _ = try Liveness.sweepContent(db, now: now(), cutoff: nil, blobs: candidates, paths: self.paths)
            return events
        }
        CrashPoint.hit("rmi.after-commit")
        try replayPendingUnlinks()
        return events
    }

    /// The blobs an image may have been the last to need: its own, every encoding of its
    /// layers, and what its index lists (other platforms' manifests, configs and layers).
    static func blobsOf(_ id: String, db: Database) throws -> Set<String> {
        var s = Set(try String.fetchAll(db, sql: """
            SELECT blob_digest FROM image_layers WHERE image_id = ?1
            UNION SELECT lb.blob_digest FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                JOIN layer_blobs lb ON lb.diff_id = l.diff_id WHERE il.image_id = ?1
            """, arguments: [id]))
        if let r = try Row.fetchOne(db, sql: "SELECT config_digest, manifest_digest, index_digest FROM images WHERE id = ?", arguments: [id]) {
            s.insert(r["config_digest"])
            s.insert(r["manifest_digest"])
            if let i: String = r["index_digest"] {
                s.insert(i)
                s.formUnion(try String.fetchAll(db, sql: """
                    SELECT m.dst FROM edges m WHERE m.src = ?1 AND m.kind = 'manifest'
                    UNION SELECT c.dst FROM edges m JOIN edges c ON c.src = m.dst AND c.kind IN ('config', 'layer')
                        WHERE m.src = ?1 AND m.kind = 'manifest'
                    """, arguments: [i]))
            }
        }
        return s
    }
}
