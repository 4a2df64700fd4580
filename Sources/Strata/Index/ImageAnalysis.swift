import Foundation

/// Options for ``Store/analyze(_:options:)``.
public struct AnalyzeOptions: Sendable {
    /// Reproduce dive 0.13's numbers exactly, including its mistakes: it ignores opaque
    /// directory markers (`.wh..wh..opq`), keeps the lower layers' files under a directory
    /// that a later layer replaced by a file, and stops reading a layer at a whiteout whose
    /// path the lower layers do not have. By default strata counts the files that opaque
    /// markers and replaced directories hide as removed (wasted), and reads every entry.
    public var diveCompatible: Bool

    public init(diveCompatible: Bool = false) {
        self.diveCompatible = diveCompatible
    }
}

/// Wasted space in an image, computed from the layer file index the way dive computes it
/// (`dive --ci`): every path that more than one layer adds, changes or deletes is an
/// inefficient file; its wasted bytes are the sum of the sizes each layer gave it; the
/// efficiency is the sum of each path's smallest size over the sum of all of them.
///
/// ```swift
/// let a = try await store.analyze("app:1")
/// if a.efficiency < 0.95 { print("wasted", a.wastedBytes, a.inefficientFiles.prefix(5)) }
/// ```
public struct ImageAnalysis: Sendable, Codable {
    /// One layer's figures.
    public struct Layer: Sendable, Codable, Hashable {
        public var position: Int
        public var chainID: Digest
        public var diffID: Digest
        public var createdBy: String?
        /// Sum of the tar headers' sizes, as dive counts it.
        public var sizeBytes: Int64
        /// Paths the layer adds, changes (that a lower layer had) and removes (whiteouts,
        /// opaque directories, directories replaced by files).
        public var added: Int
        public var changed: Int
        public var removed: Int
    }

    /// A path that more than one layer touches.
    public struct InefficientFile: Sendable, Codable, Hashable {
        /// How many layers touch it.
        public var count: Int
        /// The sum of the sizes those layers gave it.
        public var wastedBytes: Int64
        /// Absolute path (`/etc/app.conf`), as dive prints it.
        public var path: String
    }

    public var imageID: Digest
    /// Sum of the layers' sizes.
    public var sizeBytes: Int64
    /// Sum of the sizes of every layer but the first (the bytes the image adds to its base).
    public var userSizeBytes: Int64
    /// 1 when nothing is wasted; dive's efficiency score.
    public var efficiency: Double
    public var wastedBytes: Int64
    /// wastedBytes / userSizeBytes; `nil` when the image has a single layer (no user bytes).
    public var userWastedPercent: Double?
    /// Largest waste first.
    public var inefficientFiles: [InefficientFile]
    public var layers: [Layer]
}

/// dive's efficiency algorithm over index entries (see ``ImageAnalysis``).
enum EfficiencyCalculator {
    private struct PathData {
        var count = 0
        var cumulative: Int64 = 0
        var minimum: Int64 = -1
    }

    static func analyze(imageID: Digest, layers: [IndexedLayer], options: AnalyzeOptions) -> ImageAnalysis {
        let compat = options.diveCompatible
        let trees = layers.enumerated().map { IndexTree(layer: $0.element.entries, index: $0.offset) }
        var data: [String: PathData] = [:]
        var order: [String] = []
        func record(_ path: String, _ size: Int64) {
            var d = data[path] ?? PathData()
            d.cumulative += size
            if d.minimum < 0 || size < d.minimum { d.minimum = size }
            d.count += 1
            data[path] = d
            if d.count == 2 { order.append(path) }
        }
        /// A whiteout's size, as dive sizes it: the whole subtree when it deleted a directory, else 0.
        func removalSize(_ n: IndexTree.Node) -> Int64 { n.isDirectory ? n.subtreeSize : 0 }

        var perLayer: [ImageAnalysis.Layer] = []
        // dive compares layer n with the stack of layers 0…n-1 laid over a copy of layer 0.
        let stacked = trees.first?.copy() ?? IndexTree()
        for (idx, tree) in trees.enumerated() {
            let layer = layers[idx]
            var added = 0, changed = 0, removed = 0
            let before: IndexTree? = idx == 0 ? nil : stacked
            // What strata counts and dive does not: files hidden by an opaque directory or by
            // a directory replaced with a non-directory.
            var hidden: [String] = []
            if !compat {
                for e in layer.entries {
                    if e.marker == .opaque {
                        if let d = before?.node(e.target) { hidden += d.children.keys.sorted().map { join(e.target, $0) } }
                    } else if e.marker == .none, e.kind != .directory, let d = before?.node(e.path), !d.children.isEmpty {
                        hidden += d.children.keys.sorted().map { join(e.path, $0) }
                    }
                }
                for p in hidden {
                    if let n = stacked.node(p) { record("/" + p, removalSize(n)) }
                }
            }
            removed += hidden.count
            for e in layer.entries {
                switch e.marker {
                case .whiteout: if before?.node(e.target) != nil { removed += 1 }
                case .opaque: break
                case .none: if before?.node(e.path) != nil { changed += 1 } else { added += 1 }
                }
            }
            // dive: visit this layer's leaves, children first, names sorted.
            _ = tree.root.visitChildFirst { node in
                guard node !== tree.root, node.isLeaf else { return true }
                var path = node.path
                var size: Int64
                if node.isWhiteout {
                    path = join(LayerEntry.parent(of: path), String(node.name.dropFirst(LayerEntry.whiteoutPrefix.count)))
                    if let prev = stacked.node(path) {
                        size = removalSize(prev)
                    } else if compat {
                        return false  // dive stops reading the layer here
                    } else {
                        size = 0
                    }
                } else {
                    size = node.entry?.size ?? 0
                }
                record("/" + path, size)
                return true
            }
            // Lay this layer over the stack, as dive's Stack does (plus strata's corrections).
            if !compat {
                for p in hidden { stacked.remove(p) }
            }
            _ = tree.root.visitChildFirst { node in
                guard node !== tree.root else { return true }
                if node.isWhiteout {
                    stacked.remove(join(LayerEntry.parent(of: node.path), String(node.name.dropFirst(LayerEntry.whiteoutPrefix.count))))
                } else {
                    stacked.add(node.path, entry: node.entry, layer: idx)
                }
                return true
            }
            perLayer.append(ImageAnalysis.Layer(position: layer.position, chainID: layer.chainID, diffID: layer.diffID,
                                                createdBy: layer.createdBy, sizeBytes: layer.size,
                                                added: added, changed: changed, removed: removed))
        }
        var minimum: Int64 = 0
        var discovered: Int64 = 0
        for d in data.values {
            minimum += d.minimum
            discovered += d.cumulative
        }
        let efficiency = discovered == 0 ? 1.0 : Double(minimum) / Double(discovered)
        var files = order.compactMap { p in data[p].map { ImageAnalysis.InefficientFile(count: $0.count, wastedBytes: $0.cumulative, path: p) } }
        files.sort { ($0.wastedBytes, $1.path) > ($1.wastedBytes, $0.path) }
        let wasted = files.reduce(Int64(0)) { $0 + $1.wastedBytes }
        let size = layers.reduce(Int64(0)) { $0 + $1.size }
        let user = layers.dropFirst().reduce(Int64(0)) { $0 + $1.size }
        return ImageAnalysis(imageID: imageID, sizeBytes: size, userSizeBytes: user, efficiency: efficiency, wastedBytes: wasted,
                             userWastedPercent: user == 0 ? nil : Double(wasted) / Double(user),
                             inefficientFiles: files, layers: perLayer)
    }

    private static func join(_ parent: String, _ name: String) -> String {
        parent.isEmpty ? name : parent + "/" + name
    }
}

/// The rules of `strata analyze --ci`, as `dive --ci` evaluates them.
public struct AnalyzeRules: Sendable {
    /// Fail when the efficiency is below this (dive's default 0.9).
    public var lowestEfficiency: Double?
    /// Fail when more bytes than this are wasted (dive's default: disabled).
    public var highestWastedBytes: Int64?
    /// Fail when wasted / user bytes is above this (dive's default 0.1).
    public var highestUserWastedPercent: Double?

    public init(lowestEfficiency: Double? = 0.9, highestWastedBytes: Int64? = nil, highestUserWastedPercent: Double? = 0.1) {
        self.lowestEfficiency = lowestEfficiency
        self.highestWastedBytes = highestWastedBytes
        self.highestUserWastedPercent = highestUserWastedPercent
    }

    /// One rule's verdict.
    public struct Result: Sendable, Codable, Hashable {
        public var rule: String
        public var passed: Bool
        public var message: String
    }

    /// Evaluates every configured rule.
    public func evaluate(_ a: ImageAnalysis) -> [Result] {
        var out: [Result] = []
        if let t = lowestEfficiency {
            let ok = !(t > a.efficiency)
            out.append(Result(rule: "lowestEfficiency", passed: ok,
                              message: ok ? "" : "image efficiency is too low (efficiency=\(a.efficiency) < threshold=\(t))"))
        }
        if let t = highestWastedBytes {
            let ok = !(a.wastedBytes > t)
            out.append(Result(rule: "highestWastedBytes", passed: ok,
                              message: ok ? "" : "too many bytes wasted (wasted-bytes=\(a.wastedBytes) > threshold=\(t))"))
        }
        if let t = highestUserWastedPercent {
            // dive divides by zero user bytes: +Inf fails when something is wasted, NaN passes.
            let pct = a.userWastedPercent ?? (a.wastedBytes > 0 ? Double.infinity : Double.nan)
            let ok = !(t < pct)
            out.append(Result(rule: "highestUserWastedPercent", passed: ok,
                              message: ok ? "" : "too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes=\(pct) > threshold=\(t))"))
        }
        return out
    }

    /// Parses a size as dive does (go-humanize): `20MB`, `20MiB`, `1.5GB`, `1000`.
    public static func parseBytes(_ s: String) -> Int64? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        var num = ""
        var unit = ""
        for c in t {
            if unit.isEmpty, c.isNumber || c == "." { num.append(c) } else if c != " " { unit.append(c) }
        }
        guard let v = Double(num), v >= 0 else { return nil }
        let units: [String: Double] = [
            "": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
            "ki": 1024, "kib": 1024, "mi": 1_048_576, "mib": 1_048_576, "gi": 1_073_741_824, "gib": 1_073_741_824,
            "ti": 1_099_511_627_776, "tib": 1_099_511_627_776,
        ]
        guard let m = units[unit] else { return nil }
        let r = v * m
        guard r < 9e18 else { return nil }
        return Int64(r)
    }
}
