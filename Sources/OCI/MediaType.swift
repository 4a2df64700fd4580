/// Media types strata reads and writes.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let ociLayerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    public static func isManifest(_ t: String?) -> Bool { t == ociManifest || t == dockerManifest }
    public static func isIndex(_ t: String?) -> Bool { t == ociIndex || t == dockerManifestList }
    public static func isConfig(_ t: String) -> Bool { t == ociConfig || t == dockerConfig }
    public static func isLayer(_ t: String) -> Bool {
        [ociLayer, ociLayerGzip, ociLayerZstd, dockerLayer, dockerLayerGzip, dockerLayerZstd].contains(t) || isForeignLayer(t)
    }

    /// Non-distributable ("foreign") layers: layers like any other once their blob is at hand,
    /// but never uploaded by push; their descriptors may carry `urls` to fetch them from
    /// (OCI image-spec, layer.md "Non-Distributable Layers").
    public static func isForeignLayer(_ t: String) -> Bool {
        [ociLayerNondistributable, ociLayerNondistributableGzip, ociLayerNondistributableZstd, dockerForeignLayerGzip].contains(t)
    }

    /// Refuses an image manifest whose config or a layer has a media type strata does not
    /// know, naming the type and the descriptor's digest (law 3). Load and pull call this
    /// before reading any blob the manifest names.
    public static func checkImage(config: Descriptor, layers: [Descriptor], manifest: Digest) throws {
        guard isConfig(config.mediaType) else {
            throw StrataError(.unsupportedMediaType,
                              "unsupported config media type \(quoted(config.mediaType)) for \(config.digest) in manifest \(manifest)")
        }
        for l in layers where !isLayer(l.mediaType) {
            throw StrataError(.unsupportedMediaType,
                              "unsupported layer media type \(quoted(l.mediaType)) for \(l.digest) in manifest \(manifest)")
        }
    }

    /// A media type from input, quoted for a one-line message: control characters escaped,
    /// at most 100 characters.
    public static func quoted(_ t: String) -> String {
        var out = ""
        for u in t.unicodeScalars.prefix(100) {
            if u.value < 0x20 || u.value == 0x7F || u == "\"" || u == "\\" { out += u.escaped(asASCII: true) } else { out.unicodeScalars.append(u) }
        }
        return "\"" + out + (t.unicodeScalars.count > 100 ? "..." : "") + "\""
    }

    /// The OCI layer media type for a compression.
    public static func ociLayer(_ c: Compression) -> String {
        switch c {
        case .none: return ociLayer
        case .gzip: return ociLayerGzip
        case .zstd: return ociLayerZstd
        }
    }
}

/// Compression of a stored blob, always sniffed from its first bytes.
public enum Compression: String, Sendable, Codable, CaseIterable {
    case none, gzip, zstd

    /// Sniffs the compression from magic numbers; unknown bytes mean `none`.
    public static func sniff<C: Collection>(_ prefix: C) -> Compression where C.Element == UInt8 {
        let b = Array(prefix.prefix(4))
        if b.count >= 2, b[0] == 0x1F, b[1] == 0x8B { return .gzip }
        if b.count >= 4, b[0] == 0x28, b[1] == 0xB5, b[2] == 0x2F, b[3] == 0xFD { return .zstd }
        return .none
    }
}
