import Foundation
import GRDB

/// A scratch directory inside the store (under `ingest/`), protected from gc while it is
/// alive. Registry pulls write the manifests they fetch into one (the blobs go straight into
/// the store through ``Store/beginDownload(_:source:)``) and then load it, so nothing is
/// written outside the store.
package final class ScratchDirectory: Sendable {
    let session: IngestSession
    /// The directory; files written here are moved, not copied, by ``Store/load(scratch:options:)``.
    public var url: URL { session.dir.appendingPathComponent("layout") }

    init(session: IngestSession) throws {
        self.session = session
        try FileManager.default.createDirectory(at: session.dir.appendingPathComponent("layout/blobs/sha256"), withIntermediateDirectories: true)
    }

    /// Removes the directory (also done when the object goes away).
    public func remove() { session.remove() }
    deinit { session.remove() }
}

/// A stored image index, for pushing.
package struct StoredIndex: Sendable {
    public var digest: Digest
    public var mediaType: String
    public var data: Data
    public var index: Index
}

/// A stored image's manifest, for pushing.
package struct StoredManifest: Sendable {
    public var digest: Digest
    public var mediaType: String
    public var data: Data
    public var manifest: Manifest
}

extension Store {
    /// A new scratch directory inside the store.
    package func makeScratchDirectory() throws -> ScratchDirectory {
        try ScratchDirectory(session: blobs.newSession())
    }

    /// Loads an OCI layout written into a scratch directory, moving its files into the blob
    /// store instead of copying them. Every blob is still verified.
    package func load(scratch: ScratchDirectory, options: LoadOptions = LoadOptions()) async throws -> [LoadedImage] {
        let known = KnownBlobs(db: db)
        let source = try DirectorySource(path: scratch.url.path, session: scratch.session, known: known, blobs: blobs, consume: true)
        return try await load(source, session: scratch.session, options: options, operation: "pull")
    }

    /// After a pull that failed on a full disk (its hold released): removes the blobs it
    /// committed that nothing else needs, as rmi removes an image's (law 2, the rule of
    /// ``Liveness/blobNeeded(_:image:chain:everyEncoding:)``, without the clause that keeps
    /// every encoding of a kept layer), so the space comes back now and the store is
    /// as it was before the pull. Best effort: whatever fails here is left to gc.
    package func discardBlobs(_ digests: [Digest]) async {
        guard !digests.isEmpty else { return }
        let candidates = Set(digests.map(\.string)), paths = self.paths
        guard let lock = try? await FileLock.acquire(paths.blobsLock, mode: .exclusive) else { return }
        defer { withExtendedLifetime(lock) {} }
        _ = try? await write { db in
            try Liveness.sweepContent(db, now: now(), cutoff: nil, blobs: candidates, blobsOnly: true, paths: paths)
        }
        try? replayPendingUnlinks()
    }

    /// Whether the store holds a blob (row and file).
    package func hasBlob(_ digest: Digest) async throws -> Bool {
        guard blobs.exists(digest) else { return false }
        return try await read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM blobs WHERE digest = ?", arguments: [digest.string]) ?? false }
    }

    /// Where a stored blob's bytes are (read-only), to stream them out.
    package func blobFile(_ digest: Digest) -> URL { paths.blob(digest) }

    /// The manifest stored for an image, byte for byte.
    package func storedManifest(of ref: String) async throws -> StoredManifest {
        let digest = try await read { db -> String in
            let id = try Self.resolve(ref, db: db)
            guard let d = try String.fetchOne(db, sql: "SELECT manifest_digest FROM images WHERE id = ?", arguments: [id.string]) else {
                throw StrataError(.imageNotFound, "no such image: \(ref)")
            }
            return d
        }
        return try await storedManifest(digest: try Digest(digest))
    }

    /// A stored manifest by digest, byte for byte.
    package func storedManifest(digest d: Digest) async throws -> StoredManifest {
        let mediaType = try await read { db in
            try String.fetchOne(db, sql: "SELECT media_type FROM blobs WHERE digest = ?", arguments: [d.string])
        }
        let data = try blobs.readSmall(d)
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw StrataError(.invalidJSON, "stored manifest \(d) is invalid: \(JSONErrors.describe(error))", cause: error)
        }
        return StoredManifest(digest: d, mediaType: manifest.mediaType ?? mediaType ?? MediaType.ociManifest, data: data, manifest: manifest)
    }

    /// The index an image was pulled or loaded with, byte for byte, when the store holds
    /// every manifest it lists (`pull --all-platforms`); nil otherwise.
    package func storedIndex(of ref: String) async throws -> StoredIndex? {
        let row = try await read { db -> (String, String?)? in
            let id = try Self.resolve(ref, db: db)
            guard let r = try Row.fetchOne(db, sql: """
                SELECT i.index_digest, b.media_type FROM images i JOIN blobs b ON b.digest = i.index_digest WHERE i.id = ?
                """, arguments: [id.string]) else { return nil }
            return (r["index_digest"], r["media_type"])
        }
        guard let (digest, mediaType) = row else { return nil }
        let d = try Digest(digest)
        let data = try blobs.readSmall(d)
        guard let index = try? JSONDecoder().decode(Index.self, from: data) else { return nil }
        for m in index.manifests where !(try await hasBlob(m.digest)) { return nil }
        return StoredIndex(digest: d, mediaType: index.mediaType ?? mediaType ?? MediaType.ociIndex, data: data, index: index)
    }

    /// Records `name@digest` for an image (pull and push), shown by `images --digests`.
    package func recordRepoDigest(name: String, digest: Digest, image: Digest) async throws {
        try await write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO repo_digests(name, digest, image_id) VALUES (?, ?, ?)",
                           arguments: [name, digest.string, image.string])
        }
    }
}

/// A repository of a registry that is known to hold a blob (see ``Store/blobSources(of:registry:)``).
package struct BlobSource: Sendable, Hashable {
    public var registry: String
    public var repository: String
}

extension Store {
    /// Records that `registry/repository` holds these blobs (after a pull from it or a push to
    /// it). Blobs the store does not have are skipped; rows go when their blob goes.
    package func recordBlobSources(_ digests: [Digest], registry: String, repository: String) async throws {
        let t = now()
        let list = digests.map(\.string)
        try await write(untracked: { db in
            for d in list {
                try db.execute(sql: """
                    INSERT INTO blob_sources(digest, registry, repository, seen_at)
                    SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = ?)
                    ON CONFLICT(digest, registry, repository) DO UPDATE SET seen_at = excluded.seen_at
                    """, arguments: [d, registry, repository, t, d])
            }
        }) { _ in }
    }

    /// The repositories of `registry` known to hold a blob, most recently seen first.
    package func blobSources(of digest: Digest, registry: String) async throws -> [BlobSource] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT registry, repository FROM blob_sources WHERE digest = ? AND registry = ? ORDER BY seen_at DESC, repository
                """, arguments: [digest.string, registry]).map { BlobSource(registry: $0["registry"], repository: $0["repository"]) }
        }
    }
}
