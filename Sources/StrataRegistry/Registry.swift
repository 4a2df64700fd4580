import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import OCI
import Strata

/// Options for ``Registry/pull(_:into:options:platform:)``.
public struct PullResult: Sendable {
    public var image: LoadedImage
    /// Digest of the manifest (or index) the reference resolved to.
    public var digest: OCI.Digest
}

/// Pull and push through any OCI distribution registry.
///
/// ```swift
/// let result = try await Registry.pull("localhost:5000/app:1", into: store)
/// try await Registry.push("app:1", to: "localhost:5000/app:1", from: store)
/// ```
public enum Registry {
    /// Pulls an image: resolves the reference (tag or digest) with a full Accept list, verifies
    /// every digest, picks the platform from an index, fetches config and layers in parallel
    /// (skipping blobs the store has) into a scratch directory inside the store, and loads it
    /// (the same verification as `load`). Records `name@digest`.
    public static func pull(_ ref: String, into store: Store, options: RegistryOptions = RegistryOptions(),
                            platform: Platform? = nil) async throws -> PullResult {
        let reference = try Reference(ref)
        let client = RegistryClient(reference: reference, options: options)
        let scratch = try store.makeScratchDirectory()
        defer { scratch.remove() }
        let blobsDir = scratch.url.appendingPathComponent("blobs/sha256")
        let (topData, topType, topDigest) = try await client.manifest(reference.digest?.string ?? reference.tag ?? "latest", expected: reference.digest)
        try topData.write(to: blobsDir.appendingPathComponent(topDigest.encoded))
        struct Probe: Decodable { var mediaType: String?; var manifests: [Descriptor]?; var config: Descriptor?; var layers: [Descriptor]? }
        let top = try JSONDecoder().decode(Probe.self, from: topData)
        var manifests: [Probe] = []
        let want = platform ?? .host
        if let children = top.manifests {
            let candidates = children.filter { MediaType.isManifest($0.mediaType) }
            guard let pick = candidates.first(where: { $0.platform.map { want.matches($0) && $0.variant == want.variant } ?? false })
                    ?? candidates.first(where: { $0.platform.map(want.matches) ?? false })
                    ?? (candidates.count == 1 && platform == nil ? candidates.first : nil) else {
                let available = children.compactMap { $0.platform?.description }.joined(separator: ", ")
                throw StrataError(.platformNotFound, "\(reference.familiar) has no image for \(want) (available: \(available))")
            }
            let (data, _, d) = try await client.manifest(pick.digest.string, expected: pick.digest)
            try data.write(to: blobsDir.appendingPathComponent(d.encoded))
            manifests.append(try JSONDecoder().decode(Probe.self, from: data))
        } else {
            manifests.append(top)
        }
        // Config and layers, several at a time, straight into the scratch layout.
        var wanted: [Descriptor] = []
        for m in manifests {
            for d in [m.config].compactMap({ $0 }) + (m.layers ?? []) where !wanted.contains(where: { $0.digest == d.digest }) {
                if try await store.hasBlob(d.digest) { continue }
                wanted.append(d)
            }
        }
        try await forEach(wanted, atMost: options.parallelism) { d in
            try await fetchBlob(d, client: client, into: blobsDir, progress: options.progress)
        }
        var annotations: [String: String]? = nil
        if reference.digest == nil { annotations = [AnnotationKey.containerdImageName: reference.fullName] }
        let index = Index(manifests: [Descriptor(mediaType: top.mediaType ?? topType, digest: topDigest, size: Int64(topData.count), annotations: annotations)])
        try JSONEncoder().encode(index).write(to: scratch.url.appendingPathComponent("index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: scratch.url.appendingPathComponent("oci-layout"))
        let loaded = try await store.load(scratch: scratch, options: LoadOptions(platform: platform))
        guard let image = loaded.first else { throw StrataError(.internalError, "pull of \(ref) loaded nothing") }
        try await store.recordRepoDigest(name: reference.name, digest: topDigest, image: image.id)
        return PullResult(image: image, digest: topDigest)
    }

    /// Runs `body` for every item, at most `limit` at a time; the first error cancels the rest.
    static func forEach<T: Sendable>(_ items: [T], atMost limit: Int, _ body: @escaping @Sendable (T) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func launch() {
                guard next < items.count else { return }
                let item = items[next]
                next += 1
                group.addTask { try await body(item) }
            }
            for _ in 0..<max(1, limit) { launch() }
            while try await group.next() != nil { launch() }
        }
    }

    static func fetchBlob(_ d: Descriptor, client: RegistryClient, into dir: URL, progress: (@Sendable (String) -> Void)?) async throws {
        let resp = try await client.send(.GET, "/v2/\(client.repository)/blobs/\(d.digest)")
        guard resp.status == .ok else {
            _ = try? await resp.body.collect(upTo: 1 << 20)
            throw client.fail("GET blob \(d.digest)", resp.status, code: resp.status == .notFound ? .blobNotFound : .io)
        }
        let partial = dir.appendingPathComponent(d.digest.encoded + ".partial").path
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StrataError(.io, "cannot write \(partial): \(String(cString: strerror(errno)))") }
        var hasher = SHA256()
        var size: Int64 = 0
        do {
            defer { close(fd) }
            for try await chunk in resp.body {
                size += Int64(chunk.readableBytes)
                guard size <= d.size else {
                    throw StrataError(.sizeMismatch, "blob \(d.digest) from \(client.registry)/\(client.repository) is larger than its \(d.size) bytes")
                }
                try chunk.withUnsafeReadableBytes { buf in
                    guard let base = buf.baseAddress else { return }
                    hasher.update(bufferPointer: buf)
                    var off = 0
                    while off < buf.count {
                        let n = write(fd, base + off, buf.count - off)
                        if n < 0 { if errno == EINTR { continue }; throw StrataError(.io, "cannot write \(partial): \(String(cString: strerror(errno)))") }
                        off += n
                    }
                }
            }
        } catch {
            unlink(partial)
            throw error
        }
        let got = Digest.sha256(finalizing: hasher)
        guard size == d.size, got == d.digest else {
            unlink(partial)
            throw StrataError(size == d.size ? .digestMismatch : .sizeMismatch,
                              "blob \(d.digest) from \(client.registry)/\(client.repository): got \(size) bytes hashing to \(got)")
        }
        guard rename(partial, dir.appendingPathComponent(d.digest.encoded).path) == 0 else {
            throw StrataError(.io, "cannot move \(partial): \(String(cString: strerror(errno)))")
        }
        progress?("\(d.digest.shortHex): Pull complete")
    }

    /// Pushes an image: HEAD each blob first and upload only what the registry lacks, then
    /// the manifest, byte for byte as stored (so its digest is kept). Returns the digest.
    @discardableResult
    public static func push(_ image: String, to destination: String, from store: Store,
                            options: RegistryOptions = RegistryOptions()) async throws -> OCI.Digest {
        let reference = try Reference(destination)
        let client = RegistryClient(reference: reference, options: options)
        let stored = try await store.storedManifest(of: image)
        // Uncompressed layers go out gzip-compressed, as Docker pushes them; the compressed
        // copy is kept in the store, so the next push reuses it.
        var layers = stored.manifest.layers
        var manifestData = stored.data
        var manifestDigest = stored.digest
        if layers.contains(where: { $0.mediaType == MediaType.ociLayer || $0.mediaType == MediaType.dockerLayer }) {
            for i in layers.indices where layers[i].mediaType == MediaType.ociLayer || layers[i].mediaType == MediaType.dockerLayer {
                let c = try await store.compressedLayer(layers[i].digest)
                layers[i].digest = c.digest
                layers[i].size = c.size
                layers[i].mediaType = layers[i].mediaType == MediaType.dockerLayer ? MediaType.dockerLayerGzip : c.mediaType
            }
            guard var json = try JSONSerialization.jsonObject(with: stored.data) as? [String: Any],
                  var entries = json["layers"] as? [[String: Any]], entries.count == layers.count else {
                throw StrataError(.invalidJSON, "stored manifest \(stored.digest) cannot be rewritten")
            }
            for i in entries.indices {
                entries[i]["mediaType"] = layers[i].mediaType
                entries[i]["digest"] = layers[i].digest.string
                entries[i]["size"] = layers[i].size
            }
            json["layers"] = entries
            manifestData = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
            manifestDigest = Digest.sha256(manifestData)
        }
        let blobs = [stored.manifest.config] + layers
        try await forEach(blobs, atMost: options.parallelism) { d in
            try await pushBlob(d, client: client, store: store, progress: options.progress)
        }
        let tag = reference.digest?.string ?? reference.tag ?? "latest"
        let data = manifestData
        let resp = try await client.send(.PUT, "/v2/\(client.repository)/manifests/\(tag)", headers: [("Content-Type", stored.mediaType)],
                                         body: { .bytes(ByteBuffer(bytes: data)) })
        let answer = (try? await resp.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
        guard resp.status == .created || resp.status == .ok else {
            throw StrataError(.io, "PUT manifest \(tag) on \(client.registry)/\(client.repository) failed: HTTP \(resp.status.code) \(answer.prefix(300))")
        }
        let image = try await store.resolve(image)
        try await store.recordRepoDigest(name: reference.name, digest: manifestDigest, image: image)
        options.progress?("\(tag): digest: \(manifestDigest) size: \(data.count)")
        return manifestDigest
    }

    static func pushBlob(_ d: Descriptor, client: RegistryClient, store: Store, progress: (@Sendable (String) -> Void)?) async throws {
        let head = try await client.send(.HEAD, "/v2/\(client.repository)/blobs/\(d.digest)")
        if head.status == .ok {
            progress?("\(d.digest.shortHex): Layer already exists")
            return
        }
        let start = try await client.send(.POST, "/v2/\(client.repository)/blobs/uploads/")
        _ = try? await start.body.collect(upTo: 1 << 20)
        guard start.status == .accepted, let location = start.headers.first(name: "Location") else {
            throw client.fail("POST upload of \(d.digest)", start.status)
        }
        var url = location.hasPrefix("http") ? location : client.baseURL + location
        url += (url.contains("?") ? "&" : "?") + "digest=\(d.digest.string.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? d.digest.string)"
        let file = store.blobFile(d.digest).path
        let size = d.size
        let put = try await client.send(.PUT, url, headers: [("Content-Type", "application/octet-stream")], body: {
            .stream(FileChunks(path: file), length: .known(size))
        })
        _ = try? await put.body.collect(upTo: 1 << 20)
        guard put.status == .created else { throw client.fail("PUT blob \(d.digest)", put.status) }
        progress?("\(d.digest.shortHex): Pushed")
    }
}

/// A file as an async sequence of 1 MiB byte buffers, for streaming uploads.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        mutating func next() async throws -> ByteBuffer? {
            guard let handle else { throw StrataError(.io, "cannot read a blob to upload") }
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            if data.isEmpty { try? handle.close(); return nil }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: FileHandle(forReadingAtPath: path)) }
}
