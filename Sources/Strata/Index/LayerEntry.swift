import Foundation

/// One entry of a layer tar as the file index records it.
///
/// Paths are cleaned (`./etc/` → `etc`, no leading `/`, `..` resolved lexically).
/// Whiteouts keep their own path (`etc/.wh.motd`); ``target`` names what they delete.
///
/// ```swift
/// for e in try await store.files(in: "app:1") where e.entry.kind == .file {
///     print(e.entry.path, e.entry.size, e.entry.digest?.shortHex ?? "")
/// }
/// ```
public struct LayerEntry: Sendable, Hashable, Codable {
    /// The type of a tar entry.
    public enum Kind: String, Sendable, Hashable, Codable {
        case file = "f", directory = "d", symlink = "l", hardlink = "h", char = "c", block = "b", fifo = "p", other = "o"
    }

    /// Whether the entry is an OCI whiteout marker.
    public enum Marker: Int, Sendable, Hashable, Codable {
        /// An ordinary entry.
        case none = 0
        /// `.wh.NAME`: deletes `NAME` (and everything under it) from the lower layers.
        case whiteout = 1
        /// `.wh..wh..opq`: hides everything the lower layers have in this directory.
        case opaque = 2
    }

    public var path: String
    public var kind: Kind
    public var marker: Marker
    /// Permission bits (with setuid, setgid and sticky): `0o755`.
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    /// The size in the tar header (0 for directories, links and markers).
    public var size: Int64
    /// Symlink target as written, or the path a hardlink points at.
    public var linkTarget: String?
    /// XXH3-128 of a regular file's bytes (algorithm `xxh128`, 32 hex): for telling content
    /// apart (``Store/diff(_:_:)``, ``Store/analyze(_:)``), not a security hash. The layer's
    /// diffID (sha256) is what vouches for the bytes.
    public var digest: Digest?

    public init(path: String, kind: Kind, marker: Marker = .none, mode: UInt32, uid: Int64, gid: Int64, size: Int64,
                linkTarget: String? = nil, digest: Digest? = nil) {
        self.path = path
        self.kind = kind
        self.marker = marker
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.linkTarget = linkTarget
        self.digest = digest
    }

    private enum CodingKeys: String, CodingKey {
        case path, kind, marker, mode, uid, gid, size, linkTarget, digest
    }

    /// Decodes an entry; its digest may be `xxh128:` (the index's own algorithm), which
    /// ``Digest/init(_:)`` refuses from other input, as well as `sha256:`/`sha512:`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        kind = try c.decode(Kind.self, forKey: .kind)
        marker = try c.decode(Marker.self, forKey: .marker)
        mode = try c.decode(UInt32.self, forKey: .mode)
        uid = try c.decode(Int64.self, forKey: .uid)
        gid = try c.decode(Int64.self, forKey: .gid)
        size = try c.decode(Int64.self, forKey: .size)
        linkTarget = try c.decodeIfPresent(String.self, forKey: .linkTarget)
        if let s = try c.decodeIfPresent(String.self, forKey: .digest) {
            if s.hasPrefix("xxh128:") {
                guard let d = Digest.xxh128(hex: String(s.dropFirst(7))) else {
                    throw StrataError(.invalidDigest, "invalid digest \"\(Digest.clip(s))\": expected xxh128:<32 lowercase hex>")
                }
                digest = d
            } else {
                digest = try Digest(s)
            }
        } else {
            digest = nil
        }
    }

    /// For a whiteout, the path it deletes; for an opaque marker, the directory it clears;
    /// otherwise the entry's own path.
    public var target: String {
        switch marker {
        case .none: return path
        case .opaque: return LayerEntry.parent(of: path)
        case .whiteout:
            let parent = LayerEntry.parent(of: path)
            let name = LayerEntry.baseName(of: path).dropFirst(LayerEntry.whiteoutPrefix.count)
            return parent.isEmpty ? String(name) : parent + "/" + name
        }
    }

    static let whiteoutPrefix = ".wh."
    static let opaqueName = ".wh..wh..opq"

    static func marker(for path: String) -> Marker {
        let base = baseName(of: path)
        if base == opaqueName { return .opaque }
        if base.hasPrefix(whiteoutPrefix) { return .whiteout }
        return .none
    }

    static func baseName(of path: String) -> Substring {
        guard let slash = path.lastIndex(of: "/") else { return path[...] }
        return path[path.index(after: slash)...]
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// Cleans a tar path as Go's `path.Clean` does, without the leading `/`. `nil` for the root.
    static func clean(_ raw: String) -> String? {
        var parts: [Substring] = []
        for c in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }
}
