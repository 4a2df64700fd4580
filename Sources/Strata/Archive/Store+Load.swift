import Foundation

/// Options for ``Store/load(from:options:)``.
public struct LoadOptions: Sendable {
    /// Platform chosen from image indexes; `nil` means the host's.
    public var platform: Platform?
    /// Keep every platform image of an index (and the index), not just the chosen one; tags
    /// go to the chosen one.
    public var allPlatforms: Bool

    public init(platform: Platform? = nil, allPlatforms: Bool = false) {
        self.platform = platform
        self.allPlatforms = allPlatforms
    }
}

extension Store {
    /// Loads every image from a docker-archive (legacy or Docker 25+), an oci-archive, or an
    /// OCI layout directory. Archives may be gzip/zstd compressed as a whole.
    ///
    /// Every blob is verified against its digest and size; a layer is read once, and its
    /// diffID computed in the same pass. A load that fails leaves no image, tag or row.
    /// Loading the same input twice changes nothing.
    ///
    /// ```swift
    /// let loaded = try await store.load(from: URL(fileURLWithPath: "busybox.tar"))
    /// print(loaded.map(\.tags))
    /// ```
    public func load(from url: URL, options: LoadOptions = LoadOptions()) async throws -> [LoadedImage] {
        let path = url.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw StrataError(.invalidArgument, "\(path): no such file or directory")
        }
        // What a load writes is about the input's size (its blobs, as stored in it).
        let estimate = isDir.boolValue ? treeSize(path) : DiskSpace.fileSize(path)
        return try await explainingDiskFull("loading \(DiskSpace.inputName(url))", estimate: { estimate }) {
            let session = try blobs.newSession()
            defer { session.remove() }
            let known = KnownBlobs(db: db)
            let source: LoadSource = isDir.boolValue
                ? try DirectorySource(path: path, session: session, known: known, blobs: blobs)
                : try TarSource(path: path, name: path, session: session, known: known, blobs: blobs)
            return try await load(source, session: session, options: options, operation: "load")
        }
    }

    /// Loads the images of a tar that arrives through `stream` (a `docker load` request
    /// body) as it arrives: each blob is hashed and written into the ingest session while the
    /// next bytes come, with no copy of the whole archive in between. The reading runs on a
    /// thread of its own (it blocks while the stream waits). Nothing is committed unless the
    /// stream reached its end; then the commit is the same as ``load(from:options:)``'s, so
    /// the images are durable when this returns. `sizeHint` (the body's length, when known)
    /// only words a disk-full error.
    package func load(stream: any ByteStream, name: String, sizeHint: Int64? = nil,
                      options: LoadOptions = LoadOptions()) async throws -> [LoadedImage] {
        try await explainingDiskFull("loading \(name)", estimate: { sizeHint }) {
            let session = try blobs.newSession()
            defer { session.remove() }
            let known = KnownBlobs(db: db)
            let blobs = self.blobs
            let images = try await onOwnThread("strata.load") { () throws -> [PendingImage] in
                defer { stream.stop() }
                let source = try TarSource(stream: stream, name: name, session: session, known: known, blobs: blobs)
                return try ArchiveLoader(source: source, store: blobs, platform: options.platform ?? .host,
                                         explicitPlatform: options.platform != nil, allPlatforms: options.allPlatforms).images()
            }
            return try await commit(images, session: session, operation: "load")
        }
    }

    /// Reads the source's images (every check of law 3) and commits them.
    func load(_ source: LoadSource, session: IngestSession, options: LoadOptions, operation: String) async throws -> [LoadedImage] {
        let images = try ArchiveLoader(source: source, store: blobs, platform: options.platform ?? .host,
                                       explicitPlatform: options.platform != nil, allPlatforms: options.allPlatforms).images()
        return try await commit(images, session: session, operation: operation)
    }
}

/// Reads an archive's metadata and turns it into verified pending images.
struct ArchiveLoader {
    let source: LoadSource
    let store: BlobStore
    let platform: Platform
    let explicitPlatform: Bool
    var allPlatforms = false

    func images() throws -> [PendingImage] {
        if source.has("index.json") {
            return try ociImages()
        }
        if source.has("manifest.json") {
            return try dockerArchiveImages()
        }
        throw StrataError(.unsupportedFormat, "\(source.name) is not an image archive: it has neither manifest.json nor index.json")
    }

    // MARK: Docker archive (manifest.json)

    struct DockerManifestEntry: Decodable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    private func dockerManifest() throws -> [DockerManifestEntry] {
        let data = try source.readSmall("manifest.json", store: store)
        do {
            return try JSONDecoder().decode([DockerManifestEntry].self, from: data)
        } catch {
            throw StrataError(.invalidJSON, "manifest.json in \(source.name) is invalid: \(JSONErrors.describe(error))", cause: error)
        }
    }

    func dockerArchiveImages() throws -> [PendingImage] {
        let entries = try dockerManifest()
        guard !entries.isEmpty else {
            throw StrataError(.invalidJSON, "manifest.json in \(source.name) lists no images")
        }
        return try entries.map { e in
            let configPath = try ArchivePath.clean(e.Config, in: "\(source.name) manifest.json")
            let configBlob = try source.blob(configPath)
            let configData = try source.readSmall(configPath, store: store)
            let configDigest = configBlob.result.digest
            let config = try ImageConfig.decode(configData, digest: configDigest)
            var layers: [PendingLayer] = []
            var blobs: [PendingBlob] = [PendingBlob(source: configBlob, expected: configDigest, expectedSize: configBlob.result.size,
                                                    mediaType: MediaType.ociConfig, name: "config \(configPath)")]
            var names: [String] = []
            for lp in e.Layers {
                let p = try ArchivePath.clean(lp, in: "\(source.name) manifest.json")
                let b = try source.blob(p)
                let r = b.result
                layers.append(PendingLayer(blob: r, mediaType: MediaType.ociLayer(r.compression)))
                blobs.append(PendingBlob(source: b, expected: r.digest, expectedSize: r.size, mediaType: MediaType.ociLayer(r.compression), name: "layer \(p)"))
                names.append(p)
            }
            try PendingImage.verifyLayers(layers, config: config, configDigest: configDigest, names: names)
            let tags = try (e.RepoTags ?? []).map { t -> Reference in
                let r = try Reference(t)
                guard r.digest == nil else { throw StrataError(.invalidReference, "RepoTags entry \"\(t)\" in \(source.name) has a digest") }
                return r
            }
            // A docker-archive has no manifest: write the OCI manifest the image would have.
            let manifest = Manifest(
                config: Descriptor(mediaType: MediaType.ociConfig, digest: configDigest, size: configBlob.result.size),
                layers: layers.map { Descriptor(mediaType: $0.mediaType, digest: $0.blob.digest, size: $0.blob.size) })
            let manifestData = try CanonicalJSON.encode(manifest)
            let manifestBlob = try spoolData(manifestData)
            let md = manifestBlob.result.digest
            blobs.append(PendingBlob(source: manifestBlob, expected: md, expectedSize: Int64(manifestData.count), mediaType: MediaType.ociManifest, name: "manifest"))
            var edges = [(md.string, configDigest.string, "config")]
            edges += layers.map { (md.string, $0.blob.digest.string, "layer") }
            return PendingImage(manifestDigest: md, indexDigest: nil, configDigest: configDigest, config: config, layers: layers,
                                tags: tags, blobs: blobs, edges: edges)
        }
    }

    private func spoolData(_ data: Data) throws -> SourceBlob {
        guard let ts = source as? SpoolsData else {
            throw StrataError(.internalError, "source cannot spool generated data")
        }
        return try ts.spool(data)
    }

    // MARK: OCI layout (index.json), including the Docker 25+ archive

    func ociImages() throws -> [PendingImage] {
        if source.has("oci-layout") {
            let data = try source.readSmall("oci-layout", store: store)
            struct Layout: Decodable { var imageLayoutVersion: String }
            guard let l = try? JSONDecoder().decode(Layout.self, from: data) else {
                throw StrataError(.invalidJSON, "oci-layout in \(source.name) is invalid")
            }
            guard l.imageLayoutVersion.hasPrefix("1.") else {
                throw StrataError(.unsupportedFormat, "\(source.name) has OCI layout version \(l.imageLayoutVersion); strata reads 1.x")
            }
        }
        let indexData = try source.readSmall("index.json", store: store)
        let index: Index
        do {
            index = try JSONDecoder().decode(Index.self, from: indexData)
        } catch {
            throw StrataError(.invalidJSON, "index.json in \(source.name) is invalid: \(JSONErrors.describe(error))", cause: error)
        }
        // RepoTags from a Docker 25+ manifest.json, keyed by config path.
        var repoTags: [String: [String]] = [:]
        if source.has("manifest.json"), let entries = try? dockerManifest() {
            for e in entries {
                if let p = try? ArchivePath.clean(e.Config, in: source.name) { repoTags[p, default: []] += e.RepoTags ?? [] }
            }
        }
        // Entries of a media type strata does not know are ignored, as the OCI image-index
        // spec requires; an index.json with nothing else is refused, naming one of them.
        var top = index.manifests.filter { $0.mediaType.isEmpty || MediaType.isManifest($0.mediaType) || MediaType.isIndex($0.mediaType) }
        if top.isEmpty, let u = index.manifests.first {
            throw StrataError(.unsupportedMediaType, "index.json in \(source.name) lists no image strata can read: unsupported media type \(MediaType.quoted(u.mediaType)) for \(u.digest)")
        }
        let withPlatform = top.filter { $0.platform != nil }
        if withPlatform.count > 1, top.contains(where: { $0.platform.map(platform.matches) ?? true }) {
            top = top.filter { $0.platform.map(platform.matches) ?? true }
        }
        guard !top.isEmpty else {
            throw StrataError(.invalidJSON, "index.json in \(source.name) lists no manifests")
        }
        var byConfig: [OCI.Digest: Int] = [:]
        var out: [PendingImage] = []
        for d in top {
            for (k, var image) in try imagesFor(d).enumerated() {
                let configPath = "blobs/\(image.configDigest.algorithm)/\(image.configDigest.encoded)"
                if k == 0 {  // tags go to the chosen platform's image
                    image.tags += try tagsFrom(d.annotations)
                    image.tags += try (repoTags[configPath] ?? []).map { try Reference($0) }
                }
                if let i = byConfig[image.configDigest] {
                    out[i].tags += image.tags
                } else {
                    byConfig[image.configDigest] = out.count
                    out.append(image)
                }
            }
        }
        for i in out.indices {
            var seen = Set<String>()
            out[i].tags = out[i].tags.filter { seen.insert($0.fullName).inserted }
        }
        return out
    }

    private func tagsFrom(_ a: [String: String]?) throws -> [Reference] {
        guard let a else { return [] }
        if let n = a[AnnotationKey.containerdImageName], let r = try? Reference(n), r.digest == nil { return [r] }
        if let n = a[AnnotationKey.refName], n.contains(":") || n.contains("/") {
            // A full reference; a bare tag ("latest") names no repository and is not a tag here.
            if let r = try? Reference(n), r.digest == nil { return [r] }
        }
        return []
    }

    private func blobPath(_ d: Descriptor) throws -> String {
        guard d.digest.algorithm == "sha256" else {
            throw StrataError(.invalidDigest, "blob \(d.digest): only sha256 content is supported")
        }
        return "blobs/sha256/\(d.digest.encoded)"
    }

    /// Fetches a descriptor's blob from the source and checks digest and size (law 3).
    private func verified(_ d: Descriptor, what: String) throws -> SourceBlob {
        let p = try blobPath(d)
        guard source.has(p) else {
            throw StrataError(.blobNotFound, "\(what) \(d.digest) is missing from \(source.name)")
        }
        let b = try source.blob(p)
        let r = b.result
        if r.digest != d.digest {
            throw StrataError(.digestMismatch, "digest mismatch for \(what) \(d.digest) in \(source.name): its content hashes to \(r.digest)")
        }
        if r.size != d.size {
            throw StrataError(.sizeMismatch, "size mismatch for \(what) \(d.digest) in \(source.name): descriptor says \(d.size) bytes, content is \(r.size)")
        }
        return b
    }

    /// The image `d` names; with `allPlatforms` and an index, every platform image of it,
    /// the one chosen for the platform first.
    private func imagesFor(_ d: Descriptor) throws -> [PendingImage] {
        guard allPlatforms, MediaType.isIndex(d.mediaType) else { return [try imageFor(d, depth: 0)] }
        let blob = try verified(d, what: "index")
        let data = try source.readSmall(try blobPath(d), store: store)
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
            throw StrataError(.invalidJSON, "index \(d.digest) in \(source.name) is invalid: \(JSONErrors.describe(error))", cause: error)
        }
        let chosen = try index.select(platform, explicit: explicitPlatform, nested: true, what: "index \(d.digest) in \(source.name)")
        let children = [chosen] + index.imageEntries(nested: false).filter { $0.digest != chosen.digest }
        return try children.map { child in
            var image = try imageFor(child, depth: 1)
            image.indexDigest = image.indexDigest ?? d.digest
            image.blobs.append(PendingBlob(source: blob, expected: d.digest, expectedSize: d.size, mediaType: d.mediaType, name: "index \(d.digest)"))
            image.edges += index.manifests.map { (d.digest.string, $0.digest.string, "manifest") }
            return image
        }
    }

    private func imageFor(_ d: Descriptor, depth: Int) throws -> PendingImage {
        guard depth < 4 else { throw StrataError(.unsupportedFormat, "\(source.name): indexes nested too deeply") }
        // An index entry names its type: an unknown one is refused before its blob is read.
        guard d.mediaType.isEmpty || MediaType.isManifest(d.mediaType) || MediaType.isIndex(d.mediaType) else {
            throw StrataError(.unsupportedMediaType, "unsupported manifest media type \(MediaType.quoted(d.mediaType)) for \(d.digest) in \(source.name)")
        }
        let blob = try verified(d, what: "manifest")
        let data = try source.readSmall(try blobPath(d), store: store)
        struct Probe: Decodable { var mediaType: String?; var manifests: [Descriptor]?; var config: Descriptor? }
        let probe: Probe
        do { probe = try JSONDecoder().decode(Probe.self, from: data) } catch {
            throw StrataError(.invalidJSON, "manifest \(d.digest) in \(source.name) is invalid: \(JSONErrors.describe(error))", cause: error)
        }
        let mt = probe.mediaType ?? (d.mediaType.isEmpty ? nil : d.mediaType)
        if MediaType.isIndex(mt) || (mt == nil && probe.manifests != nil) {
            let index = try JSONDecoder().decode(Index.self, from: data)
            let child = try index.select(platform, explicit: explicitPlatform, nested: true, what: "index \(d.digest) in \(source.name)")
            var image = try imageFor(child, depth: depth + 1)
            image.indexDigest = image.indexDigest ?? d.digest
            image.blobs.append(PendingBlob(source: blob, expected: d.digest, expectedSize: d.size, mediaType: mt ?? MediaType.ociIndex, name: "index \(d.digest)"))
            image.edges += index.manifests.map { (d.digest.string, $0.digest.string, "manifest") }
            return image
        }
        guard MediaType.isManifest(mt) || (mt == nil && probe.config != nil) else {
            throw StrataError(.unsupportedMediaType, "unsupported manifest media type \(mt.map(MediaType.quoted) ?? "(none)") for \(d.digest) in \(source.name)")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw StrataError(.invalidJSON, "manifest \(d.digest) in \(source.name) is invalid: \(JSONErrors.describe(error))", cause: error)
        }
        guard manifest.schemaVersion == 2 else {
            throw StrataError(.unsupportedFormat, "manifest \(d.digest) has schemaVersion \(manifest.schemaVersion); only 2 is supported")
        }
        try MediaType.checkImage(config: manifest.config, layers: manifest.layers, manifest: d.digest)
        let configBlob = try verified(manifest.config, what: "config")
        let configData = try source.readSmall(try blobPath(manifest.config), store: store)
        let config = try ImageConfig.decode(configData, digest: manifest.config.digest)
        var layers: [PendingLayer] = []
        var blobs: [PendingBlob] = [
            PendingBlob(source: blob, expected: d.digest, expectedSize: d.size, mediaType: mt ?? MediaType.ociManifest, name: "manifest \(d.digest)"),
            PendingBlob(source: configBlob, expected: manifest.config.digest, expectedSize: manifest.config.size,
                        mediaType: manifest.config.mediaType, name: "config \(manifest.config.digest)"),
        ]
        var names: [String] = []
        for l in manifest.layers {
            if MediaType.isForeignLayer(l.mediaType), !source.has(try blobPath(l)) {
                // A non-distributable layer may be left out of an archive; load has no network.
                let urls = (l.urls ?? []).prefix(3).map(MediaType.quoted).joined(separator: ", ")
                throw StrataError(.blobNotFound, "non-distributable layer \(l.digest) (\(l.mediaType)) in manifest \(d.digest) is not in \(source.name)"
                                  + (urls.isEmpty ? "" : " and load does not download it from its urls (\(urls)); pull the image from a registry instead"))
            }
            let b = try verified(l, what: "layer")
            layers.append(PendingLayer(blob: b.result, mediaType: l.mediaType))
            blobs.append(PendingBlob(source: b, expected: l.digest, expectedSize: l.size, mediaType: l.mediaType, name: "layer \(l.digest)"))
            names.append(l.digest.string)
        }
        try PendingImage.verifyLayers(layers, config: config, configDigest: manifest.config.digest, names: names)
        var edges = [(d.digest.string, manifest.config.digest.string, "config")]
        edges += manifest.layers.map { (d.digest.string, $0.digest.string, "layer") }
        return PendingImage(manifestDigest: d.digest, indexDigest: nil, configDigest: manifest.config.digest, config: config,
                            layers: layers, tags: [], blobs: blobs, edges: edges)
    }
}

/// Sources that can hold generated blobs (a synthesized manifest) next to spooled ones.
protocol SpoolsData {
    func spool(_ data: Data) throws -> SourceBlob
}

/// JSON that is the same bytes every time: sorted keys, no escaped slashes.
enum CanonicalJSON {
    static func encode<T: Encodable>(_ v: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return try e.encode(v) } catch {
            throw StrataError(.internalError, "cannot encode JSON: \(error)", cause: error)
        }
    }
}
