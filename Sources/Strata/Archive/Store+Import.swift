import Foundation

/// Options for ``Store/importRootfs(from:reference:options:)``.
public struct ImportOptions: Sendable {
    /// The history comment; defaults to `Imported from <file>`.
    public var message: String?
    public var platform: Platform?
    /// The image's creation time; defaults to now.
    public var created: Date?
    /// How errors name the input (default: the file's path), e.g. "the request body" for a
    /// file that is only a spooled copy.
    public var inputName: String?
    /// Edits of the new image's runtime config (`docker import --change`), in order, on an
    /// empty one. `ConfigEdit.parse(changes:)` in StrataBuild makes them from Dockerfile text.
    public var edits: [ConfigEdit] = []

    public init(message: String? = nil, platform: Platform? = nil, created: Date? = nil, inputName: String? = nil,
                edits: [ConfigEdit] = []) {
        self.message = message
        self.platform = platform
        self.created = created
        self.inputName = inputName
        self.edits = edits
    }
}

extension Store {
    /// Makes a one-layer image from a root filesystem tarball (plain, gzip or zstd), as
    /// `docker import` does. Every path in the tarball must stay inside the root (law 5).
    ///
    /// ```swift
    /// let image = try await store.importRootfs(from: URL(fileURLWithPath: "rootfs.tar"), reference: "base:1")
    /// ```
    public func importRootfs(from url: URL, reference: String? = nil, options: ImportOptions = ImportOptions()) async throws -> LoadedImage {
        let tag = try reference.map { try Reference($0) }
        if let tag, tag.digest != nil { throw StrataError(.invalidReference, "invalid reference \"\(reference ?? "")\": cannot import to a digest") }
        let path = url.path
        let name = options.inputName ?? path
        // The layer is stored as the file is (compressed or not): about the file's size.
        return try await explainingDiskFull("importing \(options.inputName ?? DiskSpace.inputName(url))", estimate: { DiskSpace.fileSize(path) }) {
            let session = try blobs.newSession()
            defer { session.remove() }
            let reader = try FileReader(path: path, what: name)
            let w = try session.newWriter()
            try reader.forEachChunk { try w.write($0) }
            let layerFile = try w.finish()
            if let e = layerFile.result.decodeError {
                throw StrataError(.corruptData, "\(name) cannot be decompressed: \(e)")
            }
            try Self.validateLayerTar(path: layerFile.path, name: name)
            let r = layerFile.result
            let platform = options.platform ?? .host
            let created = RFC3339.format(options.created ?? Date())
            var runtime = ContainerConfig()
            for edit in options.edits { edit.apply(to: &runtime) }
            let config = ImageConfig(
                created: created, architecture: platform.architecture, os: platform.os, variant: platform.variant,
                config: runtime, rootfs: RootFS(diffIDs: [r.diffID]),
                history: [HistoryEntry(created: created, createdBy: "", comment: options.message ?? "Imported from \(url.lastPathComponent)")])
            let configData = try CanonicalJSON.encode(config)
            let configBlob = try session.spool(configData)
            let cd = configBlob.result.digest
            let layerType = MediaType.ociLayer(r.compression)
            let manifest = Manifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(configData.count)),
                                    layers: [Descriptor(mediaType: layerType, digest: r.digest, size: r.size)])
            let manifestData = try CanonicalJSON.encode(manifest)
            let manifestBlob = try session.spool(manifestData)
            let md = manifestBlob.result.digest
            let image = PendingImage(
                manifestDigest: md, indexDigest: nil, configDigest: cd, config: config,
                layers: [PendingLayer(blob: r, mediaType: layerType)], tags: tag.map { [$0] } ?? [],
                blobs: [
                    PendingBlob(source: .spooled(layerFile), expected: r.digest, expectedSize: r.size, mediaType: layerType, name: "layer \(name)"),
                    PendingBlob(source: configBlob, expected: cd, expectedSize: Int64(configData.count), mediaType: MediaType.ociConfig, name: "config"),
                    PendingBlob(source: manifestBlob, expected: md, expectedSize: Int64(manifestData.count), mediaType: MediaType.ociManifest, name: "manifest"),
                ],
                edges: [(md.string, cd.string, "config"), (md.string, r.digest.string, "layer")])
            guard let loaded = try await commit([image], session: session, operation: "import").first else {
                throw StrataError(.internalError, "import produced no image")
            }
            return loaded
        }
    }

    /// Reads a layer tar's headers and refuses unsafe paths and links (law 5).
    static func validateLayerTar(path: String, name: String) throws {
        let reader = try ArchiveReader(path: path, name: name)
        while let e = try reader.next() {
            // Hardlink targets name paths inside the layer; symlink targets are resolved
            // at unpack time inside the rootfs (an absolute one like /bin/busybox is legal).
            if e.kind == .hardlink, let t = e.linkTarget { _ = try ArchivePath.clean(t, in: name) }
            try reader.skipData()
        }
    }
}
