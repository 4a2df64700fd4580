import Foundation
import GRDB

/// A blob about to be committed, with what it must hash to (law 3).
struct PendingBlob: Sendable {
    var source: SourceBlob
    var expected: OCI.Digest
    var expectedSize: Int64
    var mediaType: String
    /// How errors name it ("layer 2 of busybox:latest", "manifest.json Config").
    var name: String
}

/// A verified layer of a pending image.
struct PendingLayer: Sendable {
    var blob: DigestResult
    var mediaType: String
}

/// Everything an image needs before its rows are written in one transaction.
struct PendingImage: Sendable {
    var manifestDigest: OCI.Digest
    var indexDigest: OCI.Digest?
    var configDigest: OCI.Digest
    var config: ImageConfig
    var layers: [PendingLayer]
    var tags: [Reference]
    var blobs: [PendingBlob]
    /// Edges of the content graph this image adds (src, dst, kind).
    var edges: [(String, String, String)]

    /// Checks the layers against the config's diffIDs.
    static func verifyLayers(_ layers: [PendingLayer], config: ImageConfig, configDigest: OCI.Digest, names: [String]) throws {
        for (i, l) in layers.enumerated() {
            if let err = l.blob.decodeError {
                throw StrataError(.corruptData, "layer \(l.blob.digest) (\(names[i])) cannot be decompressed: \(err)")
            }
        }
        let want = config.rootfs.diffIDs
        guard want.count == layers.count else {
            throw StrataError(.digestMismatch, "image config \(configDigest) lists \(want.count) layers (diff_ids) but the manifest has \(layers.count)")
        }
        for (i, (l, d)) in zip(layers, want).enumerated() where l.blob.diffID != d {
            throw StrataError(.digestMismatch, "layer \(i + 1) (\(names[i])) has diffID \(l.blob.diffID), but config \(configDigest) says \(d)")
        }
    }
}

/// Result of loading or importing: one entry per image.
public struct LoadedImage: Sendable, Hashable, Codable {
    /// The image ID (config digest).
    public var id: Digest
    /// Tags now pointing at it, in familiar form (`busybox:latest`).
    public var tags: [String]
    /// Digest of the stored manifest.
    public var manifestDigest: Digest
}

/// The operation's own event that an image commit records in its transaction, after the
/// events of its rows (the tags'), as dockerd orders them.
package enum CommitEvent: Sendable {
    /// `load`, `import`: each image by its ID.
    case image(String)
    /// `pull`: the reference pulled (familiar), named by its repository.
    case pull
    /// A container's `commit` (`docker commit`): with the comment, the new image's ID and
    /// the tag given (`imageRef`, empty for none).
    case commit(container: String, comment: String)

    /// The event of a load, pull or import; nil for other operations (a build's steps).
    init?(operation: String) {
        switch operation {
        case "load", "import": self = .image(operation)
        case "pull": self = .pull
        default: return nil
        }
    }
}

extension Store {
    /// Moves pending blobs into `blobs/` (verified), then writes every row in one short
    /// IMMEDIATE transaction (laws 1, 4, 8), with the operation's event (`event`, else
    /// the one `operation` names).
    func commit(_ images: [PendingImage], session: IngestSession, operation: String = "load", event: CommitEvent? = nil) async throws -> [LoadedImage] {
        // A lease holds every blob from before its file moves into blobs/ until the rows
        // that name it are committed (gc never deletes what a live lease holds).
        let digests = Set(images.flatMap { $0.blobs.map(\.expected.string) })
        let lease = try await createLease(operation, refs: digests.sorted())
        CrashPoint.hit("\(operation).after-lease")
        do {
            let result = try await commitUnderLease(images, session: session, lease: lease, operation: operation,
                                                    event: event ?? CommitEvent(operation: operation))
            CrashPoint.hit("\(operation).after-commit")
            // The file index, from the spools of the same pass that computed the diffIDs.
            await recordIndexes(images)
            return result
        } catch {
            await dropLease(lease)
            throw error
        }
    }

    private func commitUnderLease(_ images: [PendingImage], session: IngestSession, lease: String, operation: String,
                                  event: CommitEvent?) async throws -> [LoadedImage] {
        let lock = try await FileLock.acquire(paths.blobsLock, mode: .shared)
        defer { withExtendedLifetime(lock) {} }
        var rows: [OCI.Digest: (Int64, String)] = [:]
        for image in images {
            for b in image.blobs {
                let r = b.source.result
                if case .spooled(let f) = b.source {
                    try session.commit(f, expected: b.expected, expectedSize: b.expectedSize, name: b.name)
                    CrashPoint.hit("\(operation).mid-rename")
                } else {
                    if !blobs.exists(r.digest) {
                        throw StrataError(.blobNotFound, "blob \(r.digest) was removed while loading; run the command again")
                    }
                    if r.digest != b.expected {
                        throw StrataError(.digestMismatch, "digest mismatch for \(b.name): expected \(b.expected), got \(r.digest)")
                    }
                    if r.size != b.expectedSize {
                        throw StrataError(.sizeMismatch, "size mismatch for \(b.name) (\(r.digest)): expected \(b.expectedSize) bytes, got \(r.size)")
                    }
                }
                rows[r.digest] = (r.size, b.mediaType)
            }
        }
        try session.syncBlobDirectory()
        CrashPoint.hit("\(operation).after-rename")
        let blobRows = rows
        let t = now()
        return try await write(untracked: { db in
            try db.execute(sql: "DELETE FROM leases WHERE id = ?", arguments: [lease])
        }) { db in
            for (d, (size, mt)) in blobRows {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO blobs(digest, size, media_type, created_at) VALUES (?, ?, ?, ?)")
                    .execute(arguments: [d.string, size, mt, t])
            }
            var out: [LoadedImage] = []
            for image in images {
                let before = db.totalChangesCount
                try Self.insert(image, db: db, now: t)
                // The operation's own event, after the tags' (as dockerd). A load, pull or
                // import records it only when it changed something: loading the same input
                // twice changes nothing, events included (dockerd records every load).
                let id = image.configDigest.string
                switch event {
                case .image(let action) where db.totalChangesCount != before:
                    try Self.recordImageEvent(db, action: action, actor: id, image: id, name: id)
                case .pull where db.totalChangesCount != before:
                    let ref = image.tags.first
                    try Self.recordImageEvent(db, action: "pull", actor: ref?.familiar ?? id, image: id, name: ref?.familiarName ?? id)
                case .commit(let container, let comment):
                    try Self.recordContainerEvent(db, id: container, action: "commit",
                                                  extra: ["comment": comment, "imageID": id, "imageRef": image.tags.first?.familiar ?? ""])
                default:
                    break
                }
                out.append(LoadedImage(id: image.configDigest, tags: image.tags.map(\.familiar), manifestDigest: image.manifestDigest))
            }
            return out
        }
    }

    /// Statements are cached on the connection: a load of thousands of images compiles each
    /// (with the reference-count triggers it fires) once, not once per image.
    static func insert(_ image: PendingImage, db: Database, now t: Int64) throws {
        let id = image.configDigest.string
        let diffIDs = image.layers.map(\.blob.diffID)
        let chain = ChainID.chain(diffIDs)
        for (i, l) in image.layers.enumerated() {
            try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO layer_blobs(blob_digest, diff_id, compression, uncompressed_size) VALUES (?, ?, ?, ?)
                """).execute(arguments: [l.blob.digest.string, l.blob.diffID.string, l.blob.compression.rawValue, l.blob.uncompressedSize])
            try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO layers(chain_id, diff_id, parent_chain_id, size, created_at) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [chain[i].string, diffIDs[i].string, i > 0 ? chain[i - 1].string : nil, l.blob.uncompressedSize, t])
        }
        for (s, d, k) in image.edges {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO edges(src, dst, kind) VALUES (?, ?, ?)").execute(arguments: [s, d, k])
        }
        let exists = try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM images WHERE id = ?"), arguments: [id]) ?? false
        if !exists {
            let cfg = image.config
            let history = cfg.history ?? []
            let size = image.layers.reduce(Int64(0)) { $0 + $1.blob.uncompressedSize }
            try db.cachedStatement(sql: """
                INSERT INTO images(id, config_digest, manifest_digest, index_digest, top_chain_id, parent_id, layer_count,
                    history_count, created, author, os, architecture, variant, size, added_at, labels)
                VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [id, id, image.manifestDigest.string, image.indexDigest?.string, chain.last?.string,
                                 image.layers.count, history.count, cfg.createdDate.map { Int64($0.timeIntervalSince1970) },
                                 cfg.author, cfg.os, cfg.architecture, cfg.variant, size, t, ImageLabels.encode(cfg.config?.Labels)])
            for (i, l) in image.layers.enumerated() {
                try db.cachedStatement(sql: "INSERT INTO image_layers(image_id, position, chain_id, blob_digest, media_type) VALUES (?, ?, ?, ?, ?)").execute(arguments: [id, i, chain[i].string, l.blob.digest.string, l.mediaType])
            }
            var layerIndex = 0
            for (pos, h) in history.enumerated() {
                let empty = h.emptyLayer ?? false
                var lp: Int? = nil
                if !empty, layerIndex < image.layers.count { lp = layerIndex; layerIndex += 1 }
                try db.cachedStatement(sql: """
                    INSERT INTO history(image_id, position, created, created_by, author, comment, empty_layer, layer_position)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [id, pos, h.created.flatMap(RFC3339.parse).map { Int64($0.timeIntervalSince1970) },
                                     h.createdBy ?? "", h.author ?? "", h.comment ?? "", empty, lp])
            }
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO edges(src, dst, kind) VALUES (?, ?, 'image-manifest')").execute(arguments: [id, image.manifestDigest.string])
            try Lineage.link(imageID: id, db: db)
        } else {
            // Every blob was just verified: an image fsck marked broken is whole again.
            try db.cachedStatement(sql: "UPDATE images SET broken = 0 WHERE id = ? AND broken = 1").execute(arguments: [id])
            if let idx = image.indexDigest {
                try db.cachedStatement(sql: "UPDATE images SET index_digest = ? WHERE id = ? AND index_digest IS NULL").execute(arguments: [idx.string, id])
            }
        }
        for tag in image.tags {
            try db.cachedStatement(sql: """
                INSERT INTO tags(name, image_id, created_at) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created_at = excluded.created_at
                WHERE tags.image_id != excluded.image_id
                """).execute(arguments: [tag.fullName, id, t])
        }
    }
}
