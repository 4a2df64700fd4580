import Foundation

/// What a registry pull needs from the store, and all it may use, to download blobs into
/// it: which blobs are already there, a lease over the ones it wants, a download session per
/// blob that commits it under its digest, and a scratch OCI layout the pulled image is loaded
/// from. StrataRegistry reaches the store's ingest plumbing only through this protocol
/// (`Store` is the one conformance; a test may supply another).
package protocol BlobIngest: Sendable {
    /// Whether a blob row (and so its file) exists.
    func hasBlob(_ digest: Digest) async throws -> Bool
    /// A lease over every blob of a transfer, from before its first byte until its rows are in.
    func hold(_ digests: [Digest], for description: String) async throws -> BlobHold
    /// Ends a ``hold(_:for:)``.
    func release(_ hold: BlobHold) async
    /// A session that downloads one blob, or nil when the store already has it.
    func beginDownload(_ descriptor: Descriptor, source: String) async throws -> BlobDownload?
    /// Takes back blobs a failed transfer committed, unless something else needs them.
    func discardBlobs(_ digests: [Digest]) async
    /// An empty OCI layout inside the store's ingest space, for the manifests and index.
    func makeScratchDirectory() throws -> ScratchDirectory
    /// Loads the image(s) of a scratch layout whose blobs are already stored.
    func load(scratch: ScratchDirectory, options: LoadOptions) async throws -> [LoadedImage]
}

extension Store: BlobIngest {}
