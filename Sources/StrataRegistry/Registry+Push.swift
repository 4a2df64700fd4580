import AsyncHTTPClient
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1
import OCI
import Strata

extension Registry {
    /// Pushes an image and returns the digest of what the destination reference now names.
    /// See ``pushImage(_:to:from:options:)``.
    @discardableResult
    public static func push(_ image: String, to destination: String, from store: Store,
                            options: RegistryOptions = RegistryOptions()) async throws -> OCI.Digest {
        try await pushImage(image, to: destination, from: store, options: options).digest
    }

    /// Pushes an image: HEAD each blob first and send only what the registry lacks — mounted
    /// from another repository of the same registry when the store knows one that has it,
    /// else uploaded (monolithically, or in chunks above ``RegistryOptions/chunkSize``). Then
    /// the manifests, byte for byte as stored (so their digests are kept), then the index when
    /// the image came with one whose manifests are all in the store. Uncompressed layers go out
    /// compressed (``RegistryOptions/compression``); the compressed copy is kept and reused.
    /// Non-distributable (foreign) layers are not uploaded: the manifest keeps their
    /// descriptors, and pullers fetch them from their `urls`.
    ///
    /// ```swift
    /// let r = try await Registry.pushImage("app:1", to: "localhost:5000/team/app:1", from: store)
    /// print(r.summary)   // 1: digest: sha256:… size: 528
    /// ```
    public static func pushImage(_ image: String, to destination: String, from store: Store,
                                 options: RegistryOptions = RegistryOptions()) async throws -> PushResult {
        let reference = try Reference(destination)
        let client = RegistryClient(reference: reference, options: options)
        let tag = reference.digest?.string ?? reference.tag ?? "latest"
        let imageID = try await store.resolve(image)
        let index = try await store.storedIndex(of: image)
        var stored: [StoredManifest] = []
        if let index {
            for m in index.index.manifests { stored.append(try await store.storedManifest(digest: m.digest)) }
        } else {
            stored.append(try await store.storedManifest(of: image))
        }
        var prepared: [PreparedManifest] = []
        for m in stored { prepared.append(try await prepare(m, store: store, compression: options.compression)) }
        var blobs: [Descriptor] = []
        for p in prepared {
            for d in p.blobs where !blobs.contains(where: { $0.digest == d.digest }) { blobs.append(d) }
        }
        // Non-distributable layers are never uploaded (OCI image-spec, layer.md): their
        // descriptors stay in the manifest as they are, urls and all.
        let progress = options.progress
        for d in blobs where MediaType.isForeignLayer(d.mediaType) {
            progress?(.finished(d.digest, size: d.size, status: "Skipped foreign layer"))
        }
        blobs.removeAll { MediaType.isForeignLayer($0.mediaType) }
        try await forEach(blobs, atMost: options.parallelism) { d in
            try await pushBlob(d, client: client, store: store, options: options)
        }
        let result: PushResult
        if let index {
            for p in prepared { try await putManifest(p.data, mediaType: p.mediaType, as: p.digest.string, client: client) }
            let data = try rewrite(index, with: zip(stored, prepared).map { ($0.digest, $1) })
            try await putManifest(data, mediaType: index.mediaType, as: tag, client: client)
            result = PushResult(tag: tag, digest: Digest.sha256(data), size: data.count)
        } else {
            let p = prepared[0]
            try await putManifest(p.data, mediaType: p.mediaType, as: tag, client: client)
            result = PushResult(tag: tag, digest: p.digest, size: p.data.count)
        }
        try await store.recordRepoDigest(name: reference.name, digest: result.digest, image: imageID)
        try await store.recordBlobSources(blobs.map(\.digest), registry: client.registry, repository: client.repository)
        // dockerd's `push` event: the reference pushed, named by its repository.
        try? await store.recordImageEvents([(action: "push", actor: reference.familiar, image: imageID.string, name: reference.familiarName)])
        return result
    }

    /// A manifest as it will be pushed, and the blobs it names.
    struct PreparedManifest: Sendable {
        var data: Data
        var digest: OCI.Digest
        var mediaType: String
        var blobs: [Descriptor]
    }

    /// Swaps uncompressed layers for compressed copies (made once, then reused) and rewrites
    /// the manifest to name them; a manifest with only compressed layers is kept byte for byte.
    static func prepare(_ stored: StoredManifest, store: Store, compression: Compression) async throws -> PreparedManifest {
        var layers = stored.manifest.layers
        let plain = [MediaType.ociLayer, MediaType.dockerLayer]
        guard layers.contains(where: { plain.contains($0.mediaType) }) else {
            return PreparedManifest(data: stored.data, digest: stored.digest, mediaType: stored.mediaType, blobs: [stored.manifest.config] + layers)
        }
        for i in layers.indices where plain.contains(layers[i].mediaType) {
            let c = try await store.compressedLayer(layers[i].digest, as: compression)
            layers[i].digest = c.digest
            layers[i].size = c.size
            // Docker manifests have no zstd layer type; they name gzip layers their own way.
            layers[i].mediaType = layers[i].mediaType == MediaType.dockerLayer && c.mediaType == MediaType.ociLayerGzip
                ? MediaType.dockerLayerGzip : c.mediaType
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
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
        return PreparedManifest(data: data, digest: Digest.sha256(data), mediaType: stored.mediaType, blobs: [stored.manifest.config] + layers)
    }

    /// The index with the entries of rewritten manifests updated; byte for byte when none was.
    static func rewrite(_ index: StoredIndex, with changes: [(OCI.Digest, PreparedManifest)]) throws -> Data {
        let changed = changes.filter { $0.0 != $0.1.digest }
        guard !changed.isEmpty else { return index.data }
        guard var json = try JSONSerialization.jsonObject(with: index.data) as? [String: Any],
              var entries = json["manifests"] as? [[String: Any]] else {
            throw StrataError(.invalidJSON, "stored index \(index.digest) cannot be rewritten")
        }
        for i in entries.indices {
            guard let old = entries[i]["digest"] as? String, let c = changed.first(where: { $0.0.string == old }) else { continue }
            entries[i]["digest"] = c.1.digest.string
            entries[i]["size"] = c.1.data.count
        }
        json["manifests"] = entries
        return try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func putManifest(_ data: Data, mediaType: String, as tag: String, client: RegistryClient) async throws {
        let resp = try await client.send(.PUT, "/v2/\(client.repository)/manifests/\(tag)", headers: [("Content-Type", mediaType)],
                                         body: { .bytes(ByteBuffer(bytes: data)) })
        let answer = (try? await resp.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
        guard resp.status == .created || resp.status == .ok else {
            throw client.fail("PUT manifest \(tag)", resp.status, detail: answer)
        }
    }

    static func pushBlob(_ d: Descriptor, client: RegistryClient, store: Store, options: RegistryOptions) async throws {
        let progress = options.progress
        let head = try await client.send(.HEAD, "/v2/\(client.repository)/blobs/\(d.digest)")
        if head.status == .ok {
            progress?(.finished(d.digest, size: d.size, status: "Layer already exists"))
            return
        }
        guard head.status == .notFound else { throw client.fail("HEAD blob \(d.digest)", head.status) }
        let digestParam = d.digest.string.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? d.digest.string
        // A repository of the same registry known to have it: ask for a mount. 201 means done;
        // 202 means the registry declined and opened an ordinary upload instead.
        var location: String?
        for src in try await store.blobSources(of: d.digest, registry: client.registry) where src.repository != client.repository {
            let from = src.repository.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "="])) ?? src.repository
            let resp = try await client.send(.POST, "/v2/\(client.repository)/blobs/uploads/?mount=\(digestParam)&from=\(from)")
            _ = try? await resp.body.collect(upTo: 1 << 20)
            if resp.status == .created {
                progress?(.finished(d.digest, size: d.size, status: "Mounted from \(src.repository)"))
                return
            }
            if resp.status == .accepted, let l = resp.headers.first(name: "Location") {
                location = l
                break
            }
        }
        if location == nil {
            let start = try await client.send(.POST, "/v2/\(client.repository)/blobs/uploads/")
            _ = try? await start.body.collect(upTo: 1 << 20)
            guard start.status == .accepted, let l = start.headers.first(name: "Location") else {
                throw client.fail("POST upload of \(d.digest)", start.status)
            }
            location = l
        }
        progress?(.started(d.digest, size: d.size))
        var url = client.absolute(location ?? "")
        let file = store.blobFile(d.digest).path
        let counter = ByteCounter(digest: d.digest, size: d.size, progress: progress)
        if d.size > options.chunkSize {
            url = try await uploadChunks(d, file: file, to: url, chunk: options.chunkSize, client: client, counter: counter)
        }
        url += (url.contains("?") ? "&" : "?") + "digest=\(digestParam)"
        let size = d.size
        let monolithic = d.size <= options.chunkSize
        let put = try await client.send(.PUT, url, headers: [("Content-Type", "application/octet-stream")], body: {
            counter.reset(to: monolithic ? 0 : size)
            return monolithic ? HTTPClientRequest.Body.stream(FileChunks(path: file, sent: { counter.add($0) }), length: .known(size)) : HTTPClientRequest.Body.bytes(ByteBuffer())
        })
        _ = try? await put.body.collect(upTo: 1 << 20)
        guard put.status == .created else { throw client.fail("PUT blob \(d.digest)", put.status) }
        progress?(.finished(d.digest, size: d.size, status: "Pushed"))
    }

    /// Sends a blob in PATCH requests with Content-Range. After a 416 the upload's status
    /// (`GET` on its location, `Range: 0-N`) says where the registry is, and sending resumes
    /// from there. Returns the location to finish the upload at.
    static func uploadChunks(_ d: Descriptor, file: String, to start: String, chunk: Int64, client: RegistryClient,
                             counter: ByteCounter) async throws -> String {
        var url = start
        var offset: Int64 = 0
        var recoveries = 0
        while offset < d.size {
            let from = offset
            let length = min(chunk, d.size - offset)
            let resp = try await client.send(.PATCH, url, headers: [("Content-Type", "application/octet-stream"),
                                                                    ("Content-Range", "\(from)-\(from + length - 1)")], body: {
                counter.reset(to: from)
                return .stream(FileChunks(path: file, offset: from, length: length, sent: { counter.add($0) }), length: .known(length))
            })
            _ = try? await resp.body.collect(upTo: 1 << 20)
            if resp.status == .accepted {
                if let l = resp.headers.first(name: "Location") { url = client.absolute(l) }
                offset = Self.rangeEnd(resp.headers.first(name: "Range")).map { $0 + 1 } ?? from + length
                continue
            }
            guard resp.status == .rangeNotSatisfiable, recoveries < 3 else {
                throw client.fail("PATCH blob \(d.digest) bytes \(from)-\(from + length - 1)", resp.status)
            }
            recoveries += 1
            let status = try await client.send(.GET, url)
            _ = try? await status.body.collect(upTo: 1 << 20)
            guard status.status == .noContent || status.status == .ok else {
                throw client.fail("GET upload status of \(d.digest)", status.status)
            }
            if let l = status.headers.first(name: "Location") { url = client.absolute(l) }
            offset = Self.rangeEnd(status.headers.first(name: "Range")).map { $0 + 1 } ?? 0
        }
        return url
    }

    /// `0-N` (the upload's Range header) → N.
    static func rangeEnd(_ header: String?) -> Int64? {
        guard let h = header, let dash = h.lastIndex(of: "-") else { return nil }
        return Int64(h[h.index(after: dash)...].trimmingCharacters(in: .whitespaces))
    }
}

/// Counts the bytes of one blob handed to the HTTP client, for progress events.
final class ByteCounter: Sendable {
    private let state = Mutex<(done: Int64, last: Date)>((0, .distantPast))
    let digest: OCI.Digest
    let size: Int64
    let progress: (@Sendable (TransferEvent) -> Void)?

    init(digest: OCI.Digest, size: Int64, progress: (@Sendable (TransferEvent) -> Void)?) {
        self.digest = digest
        self.size = size
        self.progress = progress
    }

    func reset(to n: Int64) { state.withLock { $0.done = n } }

    func add(_ n: Int) {
        guard let progress else { return }
        let report: Int64? = state.withLock { s in
            s.done += Int64(n)
            guard Date().timeIntervalSince(s.last) > 0.1 else { return nil }
            s.last = Date()
            return s.done
        }
        if let report { progress(.advanced(digest, done: report, size: size)) }
    }
}
