import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OCI
import Strata
import Synchronization

extension Registry {
    /// Pulls an image: resolves the reference (tag or digest) with a full Accept list, verifies
    /// every digest, picks the platform from an index (or keeps them all), and fetches config
    /// and layers in parallel straight into the store.
    ///
    /// Each blob is hashed while it arrives — its digest and, for a layer, its diffID in the
    /// same pass — and committed as soon as it is verified, under a lease that gc respects;
    /// the image rows come last, in one transaction, so a killed pull leaves no partial image
    /// (only blobs whose lease expires). An interrupted blob resumes with a Range request;
    /// two pulls sharing a layer download it once. Records `name@digest` and where every
    /// blob came from (for cross-repository mounts at push).
    ///
    /// ```swift
    /// let result = try await Registry.pull("localhost:5000/app:1", into: store)
    /// print(result.image.id, result.digest)
    /// ```
    public static func pull(_ ref: String, into store: Store, options: RegistryOptions = RegistryOptions(),
                            platform: Platform? = nil, allPlatforms: Bool = false) async throws -> PullResult {
        // On a full disk: how many bytes the blobs not yet stored would take.
        let needed = PullEstimate()
        return try await store.explainingDiskFull("pulling \(ref)", estimate: { needed.bytes.withLock { $0 } }) {
            try await pullImage(ref, into: store, options: options, platform: platform, allPlatforms: allPlatforms, needed: needed)
        }
    }

    private static func pullImage(_ ref: String, into store: Store, options: RegistryOptions, platform: Platform?,
                                  allPlatforms: Bool, needed: PullEstimate) async throws -> PullResult {
        let reference = try Reference(ref)
        let client = RegistryClient(reference: reference, options: options)
        // Blobs come in through the store's ingest plumbing only (BlobIngest); the records of
        // where they came from go through the store's own API.
        let ingest: some BlobIngest = store
        let scratch = try ingest.makeScratchDirectory()
        defer { scratch.remove() }
        let blobsDir = scratch.url.appendingPathComponent("blobs/sha256")
        let (topData, topType, topDigest) = try await client.manifest(reference.digest?.string ?? reference.tag ?? "latest", expected: reference.digest)
        try topData.write(to: blobsDir.appendingPathComponent(topDigest.encoded))
        struct Probe: Decodable { var mediaType: String?; var manifests: [Descriptor]?; var config: Descriptor?; var layers: [Descriptor]? }
        let top: Probe
        do { top = try JSONDecoder().decode(Probe.self, from: topData) } catch {
            throw StrataError(.invalidJSON, "manifest \(topDigest) from \(client.registry)/\(client.repository) is not valid JSON", cause: error)
        }
        // Media types are checked before the first blob is fetched: an image strata cannot
        // read is refused with nothing downloaded into the store (law 8).
        func kind(_ p: Probe, contentType: String) -> String? {
            p.mediaType ?? (MediaType.isManifest(contentType) || MediaType.isIndex(contentType) ? contentType : nil)
        }
        func unsupported(_ p: Probe, _ contentType: String, _ d: Digest) -> StrataError {
            StrataError(.unsupportedMediaType, "unsupported manifest media type \(MediaType.quoted(p.mediaType ?? contentType)) for \(d) from \(client.registry)/\(client.repository)")
        }
        var manifests: [(probe: Probe, digest: Digest)] = []
        let want = platform ?? .host
        let topKind = kind(top, contentType: topType)
        if MediaType.isIndex(topKind) || (topKind == nil && top.manifests != nil) {
            let index: Index
            do { index = try JSONDecoder().decode(Index.self, from: topData) } catch {
                throw StrataError(.invalidJSON, "index \(topDigest) from \(client.registry)/\(client.repository) is invalid", cause: error)
            }
            // The platform's image is chosen (and must exist) even when all are pulled: its tags.
            let chosen = try index.select(want, explicit: platform != nil, nested: false, what: "\(reference.familiar) on \(client.registry)")
            let picks = allPlatforms ? [chosen] + index.imageEntries(nested: false).filter { $0.digest != chosen.digest } : [chosen]
            for pick in picks {
                let (data, type, d) = try await client.manifest(pick.digest.string, expected: pick.digest)
                let probe: Probe
                do { probe = try JSONDecoder().decode(Probe.self, from: data) } catch {
                    throw StrataError(.invalidJSON, "manifest \(d) from \(client.registry)/\(client.repository) is not valid JSON", cause: error)
                }
                let k = kind(probe, contentType: type)
                guard MediaType.isManifest(k) || (k == nil && probe.config != nil) else { throw unsupported(probe, type, d) }
                try data.write(to: blobsDir.appendingPathComponent(d.encoded))
                manifests.append((probe, d))
            }
        } else if MediaType.isManifest(topKind) || (topKind == nil && top.config != nil) {
            manifests.append((top, topDigest))
        } else {
            throw unsupported(top, topType, topDigest)
        }
        for (m, d) in manifests {
            guard let config = m.config else {
                throw StrataError(.invalidJSON, "manifest \(d) from \(client.registry)/\(client.repository) has no config")
            }
            try MediaType.checkImage(config: config, layers: m.layers ?? [], manifest: d)
        }
        var wanted: [Descriptor] = []
        for (m, _) in manifests {
            for d in [m.config].compactMap({ $0 }) + (m.layers ?? []) where !wanted.contains(where: { $0.digest == d.digest }) {
                wanted.append(d)
            }
        }
        var missing: [Descriptor] = []
        for d in wanted where try await !ingest.hasBlob(d.digest) { missing.append(d) }
        let missingBytes = missing.reduce(Int64(0)) { $0 + $1.size }
        needed.bytes.withLock { $0 = missingBytes }
        // The lease comes first: gc keeps every blob of this image from here until the rows are in.
        let hold = try await ingest.hold(wanted.map(\.digest), for: "pull \(reference.familiar)")
        do {
            let source = "\(client.registry)/\(client.repository)"
            // A download's slot frees up once its bytes are in; the commit (fsync, rename, rows)
            // then overlaps the next downloads.
            let progress = options.progress
            try await pipeline(wanted, atMost: options.parallelism) { d -> FollowUp? in
                guard let download = try await fetchBlob(d, client: client, store: ingest, source: source, progress: progress) else { return nil }
                return {
                    try await download.commit()
                    progress?(.finished(d.digest, size: d.size, status: "Pull complete"))
                }
            }
            var annotations: [String: String]? = nil
            if reference.digest == nil { annotations = [AnnotationKey.containerdImageName: reference.fullName] }
            let index = Index(manifests: [Descriptor(mediaType: top.mediaType ?? topType, digest: topDigest, size: Int64(topData.count), annotations: annotations)])
            try JSONEncoder().encode(index).write(to: scratch.url.appendingPathComponent("index.json"))
            try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: scratch.url.appendingPathComponent("oci-layout"))
            let loaded = try await ingest.load(scratch: scratch, options: LoadOptions(platform: platform, allPlatforms: allPlatforms))
            guard let image = loaded.first else { throw StrataError(.internalError, "pull of \(ref) loaded nothing") }
            for l in loaded {
                try await store.recordRepoDigest(name: reference.name, digest: topDigest, image: l.id)
            }
            // A non-distributable layer may have come from its urls rather than this repository.
            try await store.recordBlobSources(wanted.filter { !MediaType.isForeignLayer($0.mediaType) }.map(\.digest),
                                              registry: client.registry, repository: client.repository)
            await ingest.release(hold)
            return PullResult(image: image, images: loaded, digest: topDigest)
        } catch {
            await ingest.release(hold)
            // A full disk: what this pull committed goes again at once (a broken connection
            // keeps it, for the next try to resume from).
            if DiskSpace.isDiskFull(error) { await ingest.discardBlobs(missing.map(\.digest)) }
            throw error
        }
    }

    /// GET of a non-distributable layer from one of its `urls`: a plain request with no
    /// credentials (they belong to the registry); a failure to connect counts as a miss.
    static func foreignGet(_ url: String, headers: [(String, String)]) async -> HTTPClientResponse? {
        var req = HTTPClientRequest(url: url)
        req.method = .GET
        req.headers.add(name: "Accept-Encoding", value: "identity")
        for (k, v) in headers { req.headers.add(name: k, value: v) }
        return try? await HTTPClient.foreignLayers.execute(req, timeout: .seconds(600))
    }

    /// How many times one blob download may be resumed after the connection broke.
    static let maxResumes = 5

    /// Downloads one blob into the store's ingest space, resuming with `Range: bytes=N-` when
    /// the connection breaks (a server that answers 200 instead of 206 sends it again from 0).
    /// Returns the download for the caller to ``BlobDownload/commit()``, or nil when the store
    /// already has the blob.
    ///
    /// A non-distributable layer the registry does not have (404) is fetched from the http(s)
    /// `urls` of its descriptor, in order, without the registry's credentials; its digest and
    /// size are verified like any other blob's.
    static func fetchBlob(_ d: Descriptor, client: RegistryClient, store: some BlobIngest, source: String,
                          progress: (@Sendable (TransferEvent) -> Void)?) async throws -> BlobDownload? {
        guard let download = try await store.beginDownload(d, source: source) else {
            progress?(.finished(d.digest, size: d.size, status: "Already exists"))
            return nil
        }
        progress?(.started(d.digest, size: d.size))
        var resumes = 0
        var lastReport = Date.distantPast
        let foreign = MediaType.isForeignLayer(d.mediaType)
        var urls = foreign ? (d.urls ?? []).filter { u in URL(string: u).flatMap(\.scheme).map { ["http", "https"].contains($0.lowercased()) } ?? false } : []
        var from: String?  // the URL being read; nil: the registry
        while true {
            var headers: [(String, String)] = []
            let offset = download.received
            if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
            let answer: HTTPClientResponse?
            if let from {
                answer = await foreignGet(from, headers: headers)
            } else {
                answer = try await client.send(.GET, "/v2/\(client.repository)/blobs/\(d.digest)", headers: headers)
            }
            let ok = answer.map { $0.status == .ok || $0.status == .partialContent } ?? false
            if !ok, foreign, from != nil || answer?.status == .notFound {
                _ = try? await answer?.body.collect(upTo: 1 << 20)
                guard !urls.isEmpty else {
                    let listed = (d.urls ?? []).prefix(3).map(MediaType.quoted).joined(separator: ", ")
                    throw StrataError(.blobNotFound, "non-distributable layer \(d.digest) is not on \(source)"
                                      + (listed.isEmpty ? " and its descriptor lists no urls" : " nor at its urls (\(listed))"))
                }
                let next = urls.removeFirst()
                if offset > 0 { try download.restart() }
                from = next
                progress?(.message("\(d.digest.shortHex): non-distributable layer; fetching it from \(next)"))
                continue
            }
            guard let resp = answer else { throw StrataError(.internalError, "no answer for blob \(d.digest)") }
            let at = from ?? source  // where the bytes come from, for messages
            switch resp.status {
            case .ok:
                if offset > 0 { try download.restart() }
            case .partialContent:
                // "bytes START-END/TOTAL": it must start where we stopped.
                let range = resp.headers.first(name: "Content-Range") ?? ""
                let start = range.split(separator: " ").last?.split(separator: "-").first.flatMap { Int64($0) }
                guard start == offset else {
                    _ = try? await resp.body.collect(upTo: 1 << 20)
                    throw StrataError(.io, "GET blob \(d.digest) on \(at): the server resumed at \"\(range)\", not at byte \(offset)")
                }
            default:
                _ = try? await resp.body.collect(upTo: 1 << 20)
                throw client.fail("GET blob \(d.digest)", resp.status, code: resp.status == .notFound ? .blobNotFound : nil)
            }
            var broken: Error?
            do {
                for try await chunk in resp.body {
                    try chunk.withUnsafeReadableBytes { try download.write($0) }
                    if progress != nil, Date().timeIntervalSince(lastReport) > 0.1 {
                        lastReport = Date()
                        progress?(.advanced(d.digest, done: download.received, size: d.size))
                    }
                }
            } catch let e as StrataError {
                throw e
            } catch {
                broken = error
            }
            if download.received == d.size { break }
            resumes += 1
            guard resumes <= maxResumes else {
                throw StrataError(.io, "GET blob \(d.digest) on \(at) failed: the connection broke \(resumes) times (last at byte \(download.received) of \(d.size))",
                                  cause: broken)
            }
            try await Task.sleep(nanoseconds: UInt64(100_000_000) << min(resumes, 4))
            progress?(.message("\(d.digest.shortHex): Connection broke; resuming at byte \(download.received) of \(d.size)"))
        }
        progress?(.advanced(d.digest, done: download.received, size: d.size))
        return download
    }
}

/// The bytes a pull still has to store, known once its manifests are read: the estimate of
/// its "disk full" line.
final class PullEstimate: Sendable {
    let bytes = Mutex<Int64?>(nil)
}
