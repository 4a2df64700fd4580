import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OCI
import Strata

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
        let reference = try Reference(ref)
        let client = RegistryClient(reference: reference, options: options)
        let scratch = try store.makeScratchDirectory()
        defer { scratch.remove() }
        let blobsDir = scratch.url.appendingPathComponent("blobs/sha256")
        let (topData, topType, topDigest) = try await client.manifest(reference.digest?.string ?? reference.tag ?? "latest", expected: reference.digest)
        try topData.write(to: blobsDir.appendingPathComponent(topDigest.encoded))
        struct Probe: Decodable { var mediaType: String?; var manifests: [Descriptor]?; var config: Descriptor?; var layers: [Descriptor]? }
        let top: Probe
        do { top = try JSONDecoder().decode(Probe.self, from: topData) } catch {
            throw StrataError(.invalidJSON, "manifest \(topDigest) from \(client.registry)/\(client.repository) is not valid JSON", cause: error)
        }
        var manifests: [Probe] = []
        let want = platform ?? .host
        if let children = top.manifests {
            let candidates = children.filter { MediaType.isManifest($0.mediaType) }
            let picks: [Descriptor]
            if allPlatforms {
                picks = candidates
            } else {
                guard let pick = candidates.first(where: { $0.platform.map { want.matches($0) && $0.variant == want.variant } ?? false })
                        ?? candidates.first(where: { $0.platform.map(want.matches) ?? false })
                        ?? (candidates.count == 1 && platform == nil ? candidates.first : nil) else {
                    let available = children.compactMap { $0.platform?.description }.joined(separator: ", ")
                    throw StrataError(.platformNotFound, "\(reference.familiar) on \(client.registry) has no image for \(want) (available: \(available))")
                }
                picks = [pick]
            }
            for pick in picks {
                let (data, _, d) = try await client.manifest(pick.digest.string, expected: pick.digest)
                try data.write(to: blobsDir.appendingPathComponent(d.encoded))
                do { manifests.append(try JSONDecoder().decode(Probe.self, from: data)) } catch {
                    throw StrataError(.invalidJSON, "manifest \(d) from \(client.registry)/\(client.repository) is not valid JSON", cause: error)
                }
            }
        } else {
            manifests.append(top)
        }
        var wanted: [Descriptor] = []
        for m in manifests {
            for d in [m.config].compactMap({ $0 }) + (m.layers ?? []) where !wanted.contains(where: { $0.digest == d.digest }) {
                wanted.append(d)
            }
        }
        // The lease comes first: gc keeps every blob of this image from here until the rows are in.
        let hold = try await store.hold(wanted.map(\.digest), for: "pull \(reference.familiar)")
        do {
            let source = "\(client.registry)/\(client.repository)"
            // A download's slot frees up once its bytes are in; the commit (fsync, rename, rows)
            // then overlaps the next downloads.
            let progress = options.progress
            try await pipeline(wanted, atMost: options.parallelism) { d -> FollowUp? in
                guard let download = try await fetchBlob(d, client: client, store: store, source: source, progress: progress) else { return nil }
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
            let loaded = try await store.load(scratch: scratch, options: LoadOptions(platform: platform, allPlatforms: allPlatforms))
            guard let image = loaded.first else { throw StrataError(.internalError, "pull of \(ref) loaded nothing") }
            for l in loaded {
                try await store.recordRepoDigest(name: reference.name, digest: topDigest, image: l.id)
            }
            try await store.recordBlobSources(wanted.map(\.digest), registry: client.registry, repository: client.repository)
            await store.release(hold)
            return PullResult(image: image, images: loaded, digest: topDigest)
        } catch {
            await store.release(hold)
            throw error
        }
    }

    /// How many times one blob download may be resumed after the connection broke.
    static let maxResumes = 5

    /// Downloads one blob into the store's ingest space, resuming with `Range: bytes=N-` when
    /// the connection breaks (a server that answers 200 instead of 206 sends it again from 0).
    /// Returns the download for the caller to ``BlobDownload/commit()``, or nil when the store
    /// already has the blob.
    static func fetchBlob(_ d: Descriptor, client: RegistryClient, store: Store, source: String,
                          progress: (@Sendable (TransferEvent) -> Void)?) async throws -> BlobDownload? {
        guard let download = try await store.beginDownload(d, source: source) else {
            progress?(.finished(d.digest, size: d.size, status: "Already exists"))
            return nil
        }
        progress?(.started(d.digest, size: d.size))
        var resumes = 0
        var lastReport = Date.distantPast
        while true {
            var headers: [(String, String)] = []
            let offset = download.received
            if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
            let resp = try await client.send(.GET, "/v2/\(client.repository)/blobs/\(d.digest)", headers: headers)
            switch resp.status {
            case .ok:
                if offset > 0 { try download.restart() }
            case .partialContent:
                // "bytes START-END/TOTAL": it must start where we stopped.
                let range = resp.headers.first(name: "Content-Range") ?? ""
                let start = range.split(separator: " ").last?.split(separator: "-").first.flatMap { Int64($0) }
                guard start == offset else {
                    _ = try? await resp.body.collect(upTo: 1 << 20)
                    throw StrataError(.io, "GET blob \(d.digest) on \(source): the registry resumed at \"\(range)\", not at byte \(offset)")
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
                throw StrataError(.io, "GET blob \(d.digest) on \(source) failed: the connection broke \(resumes) times (last at byte \(download.received) of \(d.size))",
                                  cause: broken)
            }
            try await Task.sleep(nanoseconds: UInt64(100_000_000) << min(resumes, 4))
            progress?(.message("\(d.digest.shortHex): Connection broke; resuming at byte \(download.received) of \(d.size)"))
        }
        progress?(.advanced(d.digest, done: download.received, size: d.size))
        return download
    }
}
