import Foundation
import GRDB

/// A layer of an image, as `strata layers` shows it.
public struct LayerInfo: Sendable, Codable, Hashable {
    /// A stored blob holding this layer's content.
    public struct Blob: Sendable, Codable, Hashable {
        public var digest: Digest
        public var size: Int64
        public var mediaType: String
        public var compression: String
    }
    public var position: Int
    public var chainID: Digest
    public var diffID: Digest
    public var parentChainID: Digest?
    /// Uncompressed size of this layer alone.
    public var size: Int64
    /// The blob the image's manifest names first, then any other stored encodings.
    public var blobs: [Blob]
    /// The history step that made this layer.
    public var createdBy: String?
    public var created: Date?
    /// Tags of images whose top layer this is.
    public var topLayerOf: [String]
}

/// Everything `strata inspect` reports, in Docker's field names.
public struct ImageDetails: Sendable {
    public var id: Digest
    public var repoTags: [String]
    public var repoDigests: [String]
    public var parent: Digest?
    public var manifestDigest: Digest
    public var indexDigest: Digest?
    public var size: Int64
    /// The raw config blob, byte for byte.
    public var configData: Data
    public var config: ImageConfig
    /// When a tag last came to name this image (nil: never, or no tag now).
    public var lastTagTime: Date? = nil

    /// The inspect object's `Comment`, by dockerd's rule: the config's own top-level
    /// `comment` (what `docker commit -m` and `docker import -m` set), or else the comment of
    /// the last history step (BuildKit's `buildkit.dockerfile.v0`).
    public var dockerComment: String {
        if case .string(let own)? = config.otherFields["comment"], !own.isEmpty { return own }
        return config.history?.last?.comment ?? ""
    }

    /// Docker's `docker image inspect` object.
    public var docker: DockerImageInspect {
        DockerImageInspect(
            Id: id.string, RepoTags: repoTags, RepoDigests: repoDigests, Parent: parent?.string ?? "",
            Comment: dockerComment, Created: config.created ?? "", Author: config.author ?? "",
            Config: config.config, Architecture: config.architecture ?? "", Variant: config.variant,
            Os: config.os ?? "", OsVersion: config.otherFields["os.version"], DockerVersion: config.otherFields["docker_version"],
            Size: size, RootFS: DockerImageInspect.RootFSLayers(Type: config.rootfs.type, Layers: config.rootfs.diffIDs.map(\.string)),
            History: config.history ?? [], Descriptor: DockerImageInspect.ManifestDescriptor(digest: manifestDigest.string),
            Container: config.otherFields["container"]?.string ?? "",
            ContainerConfig: config.otherFields["container_config"]?.object,
            LastTagTime: lastTagTime)
    }
}

extension Store {
    /// The layers of an image, bottom first.
    public func layers(of ref: String) async throws -> [LayerInfo] {
        try await read { db in
            let id = try Self.resolve(ref, db: db)
            let rows = try Row.fetchAll(db, sql: """
                SELECT il.position, il.chain_id, il.blob_digest, il.media_type, l.diff_id, l.parent_chain_id, l.size,
                       b.size AS blob_size, lb.compression,
                       h.created_by, h.created,
                       (SELECT group_concat(t.name, char(10)) FROM images i JOIN tags t ON t.image_id = i.id
                         WHERE i.top_chain_id = il.chain_id) AS top_of
                FROM image_layers il
                JOIN layers l ON l.chain_id = il.chain_id
                JOIN blobs b ON b.digest = il.blob_digest
                LEFT JOIN layer_blobs lb ON lb.blob_digest = il.blob_digest
                LEFT JOIN history h ON h.image_id = il.image_id AND h.layer_position = il.position
                WHERE il.image_id = ? ORDER BY il.position
                """, arguments: [id.string])
            return try rows.map { r in
                let diff: String = r["diff_id"]
                let primary: String = r["blob_digest"]
                var blobs = [LayerInfo.Blob(digest: try Digest(primary), size: r["blob_size"], mediaType: r["media_type"],
                                            compression: r["compression"] ?? "none")]
                for o in try Row.fetchAll(db, sql: """
                    SELECT lb.blob_digest, lb.compression, b.size, b.media_type FROM layer_blobs lb JOIN blobs b ON b.digest = lb.blob_digest
                    WHERE lb.diff_id = ? AND lb.blob_digest != ? ORDER BY lb.blob_digest
                    """, arguments: [diff, primary]) {
                    blobs.append(LayerInfo.Blob(digest: try Digest(o["blob_digest"] as String), size: o["size"],
                                                mediaType: o["media_type"] ?? "", compression: o["compression"]))
                }
                return LayerInfo(position: r["position"], chainID: try Digest(r["chain_id"] as String), diffID: try Digest(diff),
                                 parentChainID: (r["parent_chain_id"] as String?).flatMap { try? Digest($0) },
                                 size: r["size"], blobs: blobs, createdBy: r["created_by"],
                                 created: (r["created"] as Int64?).map { Date(timeIntervalSince1970: Double($0)) },
                                 topLayerOf: ((r["top_of"] as String?) ?? "").split(separator: "\n").map { Reference.familiar(stored: String($0)) }.sorted())
            }
        }
    }

    /// Full details of one image (`docker image inspect`).
    public func inspect(_ ref: String) async throws -> ImageDetails {
        let row = try await read { db -> (Digest, [String], [String], String?, String, String?, Int64, Int64?) in
            let id = try Self.resolve(ref, db: db)
            guard let r = try Row.fetchOne(db, sql: "SELECT parent_id, manifest_digest, index_digest, size FROM images WHERE id = ?", arguments: [id.string]) else {
                throw StrataError(.imageNotFound, "no such image: \(ref)")
            }
            let tags = try String.fetchAll(db, sql: "SELECT name FROM tags WHERE image_id = ? ORDER BY name", arguments: [id.string])
                .map { Reference.familiar(stored: $0) }
            let tagged = try Int64.fetchOne(db, sql: "SELECT max(created_at) FROM tags WHERE image_id = ?", arguments: [id.string])
            let digests = try Row.fetchAll(db, sql: "SELECT name, digest FROM repo_digests WHERE image_id = ? ORDER BY name", arguments: [id.string])
                .map { r -> String in
                    let n: String = r["name"]
                    let d: String = r["digest"]
                    return ((try? Reference(n, defaultTag: false))?.familiarName ?? n) + "@" + d
                }
            return (id, tags, digests, r["parent_id"], r["manifest_digest"], r["index_digest"], r["size"], tagged)
        }
        let data = try blobs.readSmall(row.0)
        let config = try ImageConfig.decode(data, digest: row.0)
        return ImageDetails(id: row.0, repoTags: row.1, repoDigests: row.2, parent: try row.3.map { try Digest($0) },
                            manifestDigest: try Digest(row.4), indexDigest: try row.5.map { try Digest($0) },
                            size: row.6, configData: data, config: config,
                            lastTagTime: row.7.map { Date(timeIntervalSince1970: Double($0)) })
    }
}
