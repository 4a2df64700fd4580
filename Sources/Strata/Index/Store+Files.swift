import Foundation

/// A path of an image's filesystem and the layer that owns it.
public struct ImageFile: Sendable, Codable, Hashable {
    /// What the owning layer did to the path.
    public enum Status: String, Sendable, Codable, Hashable {
        /// The first layer that has the path.
        case added
        /// A later layer that replaced what a lower layer had.
        case changed
        /// The layer that deleted it (whiteout, opaque directory, or a directory replaced by a file).
        case deleted
    }

    /// Absolute path: `/etc/passwd`.
    public var path: String
    /// The entry as the owning layer recorded it (for a deleted path: the entry it deleted).
    public var entry: LayerEntry
    public var status: Status
    /// The owning layer's position (0 = base), chain ID and diffID.
    public var layer: Int
    public var chainID: Digest
    public var diffID: Digest
    /// The history step that made the owning layer.
    public var createdBy: String?
    public var historyPosition: Int?
}

/// One line of ``Store/diff(_:_:)``: what happened to a path from image A to image B.
public struct ImageChange: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, Hashable {
        case added = "A", changed = "C", deleted = "D"
    }

    public var kind: Kind
    /// Absolute path: `/etc/passwd`.
    public var path: String
    /// The entry in A (nil when added).
    public var before: LayerEntry?
    /// The entry in B (nil when deleted).
    public var after: LayerEntry?
    /// What differs for a change: `content`, `size`, `type`, `mode`, `owner`, `link`.
    public var what: [String]
}

extension Store {
    /// Every path of the image's filesystem, answered from the layer file index (no layer is
    /// unpacked), each with the layer and history step that last added or changed it.
    /// Layers stored before the index existed are indexed on first use.
    ///
    /// ```swift
    /// for f in try await store.files(in: "app:1") where f.entry.kind == .file {
    ///     print(f.path, f.entry.size, f.chainID.shortHex, f.createdBy ?? "")
    /// }
    /// ```
    public func files(in ref: String) async throws -> [ImageFile] {
        let layers = try await indexedLayers(of: ref)
        let view = MergedView(layers: layers)
        return Self.files(view.present, layers: layers)
    }

    /// The paths of the image matching a glob (`etc/*.conf`, `/usr/bin/*`; `*` does not
    /// cross `/`; a pattern without `/` matches file names at any depth), including paths a
    /// layer deleted (status `.deleted`, owned by the deleting layer).
    ///
    /// ```swift
    /// for f in try await store.find("etc/*.conf", in: "app:1") { print(f.status, f.path, f.layer) }
    /// ```
    public func find(_ pattern: String, in ref: String) async throws -> [ImageFile] {
        let matcher = try PathGlob(pattern)
        let layers = try await indexedLayers(of: ref, prefilter: matcher.sqlPrefilter)
        let view = MergedView(layers: layers)
        return Self.files(view.present.filter { matcher.matches($0.key) }, layers: layers)
            + Self.files(view.deleted.filter { matcher.matches($0.key) }, layers: layers)
    }

    private static func files(_ items: [String: MergedView.Item], layers: [IndexedLayer]) -> [ImageFile] {
        items.map { p, item in
            let l = layers[item.layer]
            return ImageFile(path: "/" + p, entry: item.entry, status: item.status, layer: l.position, chainID: l.chainID,
                             diffID: l.diffID, createdBy: l.createdBy, historyPosition: l.historyPosition)
        }.sorted { $0.path < $1.path }
    }

    /// What changed from image `a` to image `b`, path by path, from the index: added,
    /// changed (content, size, type, mode, owner or link target) and deleted paths. The same
    /// answer as unpacking both images and comparing the trees (modification times aside).
    ///
    /// ```swift
    /// for c in try await store.diff("app:1", "app:2") { print(c.kind.rawValue, c.path) }
    /// ```
    public func diff(_ a: String, _ b: String) async throws -> [ImageChange] {
        let va = MergedView(layers: try await indexedLayers(of: a)).present
        let vb = MergedView(layers: try await indexedLayers(of: b)).present
        var out: [ImageChange] = []
        for (p, x) in va {
            guard let y = vb[p] else {
                out.append(ImageChange(kind: .deleted, path: "/" + p, before: x.entry, after: nil, what: []))
                continue
            }
            let what = Self.differences(x.entry, y.entry)
            if !what.isEmpty { out.append(ImageChange(kind: .changed, path: "/" + p, before: x.entry, after: y.entry, what: what)) }
        }
        for (p, y) in vb where va[p] == nil {
            out.append(ImageChange(kind: .added, path: "/" + p, before: nil, after: y.entry, what: []))
        }
        return out.sorted { $0.path < $1.path }
    }

    static func differences(_ x: LayerEntry, _ y: LayerEntry) -> [String] {
        var what: [String] = []
        if x.kind != y.kind { what.append("type") }
        if x.kind == .file, y.kind == .file {
            if x.size != y.size { what.append("size") }
            if x.digest != y.digest { what.append("content") }
        }
        if x.mode != y.mode { what.append("mode") }
        if x.uid != y.uid || x.gid != y.gid { what.append("owner") }
        if x.linkTarget != y.linkTarget, x.kind == y.kind { what.append("link") }
        return what
    }

    /// Wasted space in the image, as `dive --ci` reports it (efficiency, wasted bytes, the
    /// inefficient files), plus per-layer counts of added, changed and removed paths. From
    /// the index: no layer is read again.
    ///
    /// ```swift
    /// let a = try await store.analyze("app:1")
    /// let failed = AnalyzeRules(lowestEfficiency: 0.95).evaluate(a).filter { !$0.passed }
    /// ```
    public func analyze(_ ref: String, options: AnalyzeOptions = AnalyzeOptions()) async throws -> ImageAnalysis {
        let id = try await resolve(ref)
        let layers = try await indexedLayers(of: id.string)
        return EfficiencyCalculator.analyze(imageID: id, layers: layers, options: options)
    }
}

/// Shell-style patterns over index paths (`fnmatch` with `FNM_PATHNAME`).
struct PathGlob {
    let pattern: String
    let nameOnly: Bool

    init(_ raw: String) throws {
        var p = raw
        while p.hasPrefix("/") { p.removeFirst() }
        while p.hasPrefix("./") { p.removeFirst(2) }
        guard !p.isEmpty else { throw StrataError(.invalidArgument, "empty pattern: give a path or a glob such as 'etc/*.conf'") }
        guard !p.utf8.contains(0) else { throw StrataError(.invalidArgument, "invalid pattern: NUL byte") }
        pattern = p
        nameOnly = !p.contains("/")
    }

    /// SQLite GLOBs that match every path this pattern matches (and maybe more: their `*`
    /// crosses `/`); nil when the pattern uses backslash escapes, which GLOB does not know.
    var sqlPrefilter: [String]? {
        if pattern.contains("\\") { return nil }
        return nameOnly ? [pattern, "*/" + pattern] : [pattern]
    }

    func matches(_ path: String) -> Bool {
        let subject = nameOnly ? String(LayerEntry.baseName(of: path)) : path
        return fnmatch(pattern, subject, FNM_PATHNAME) == 0
    }
}
