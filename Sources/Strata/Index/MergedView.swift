import Foundation

/// An image's root filesystem as its layers stack up, computed from the index with the OCI
/// rules: whiteouts and opaque markers apply to the lower layers first; a non-directory
/// replaces a directory with everything under it; a directory replaces a non-directory.
/// Each path remembers the layer that last added, changed or deleted it.
struct MergedView {
    struct Item {
        var entry: LayerEntry
        var layer: Int
        var status: ImageFile.Status
    }

    /// Paths (no leading slash) present in the image.
    private(set) var present: [String: Item] = [:]
    /// Paths some layer had and a later one deleted (and nothing re-added).
    private(set) var deleted: [String: Item] = [:]

    /// A directory a layer only implies is made as mkdir makes it when the entry below it is
    /// unpacked: 0755 and root's, or in a setgid directory with its group and the setgid bit
    /// (as umoci and the snapshots show it). The parent is taken as it stands at that point of
    /// the stack; within one layer the index has no tar order, so a parent's header is taken as
    /// coming first (see docs/ARCHITECTURE.md, "Layer application").
    static func impliedMode(under parent: LayerEntry?, implied: (UInt32, Int64)?) -> (UInt32, Int64) {
        let (mode, gid) = parent.map { $0.kind == .directory ? ($0.mode, $0.gid) : (0o755, 0) } ?? implied ?? (0o755, 0)
        return mode & 0o2000 != 0 ? (0o2755, gid) : (0o755, 0)
    }

    init(layers: [IndexedLayer]) {
        var implied: [String: (UInt32, Int64)] = [:]
        var present: [String: Item] = [:]
        var deleted: [String: Item] = [:]
        let tree = IndexTree()
        var changed = Set<String>()
        for (i, layer) in layers.enumerated() {
            // The root's own header: only how it makes the directories it implies.
            if let root = layer.root { tree.root.entry = root }
            func drop(_ n: IndexTree.Node) {
                _ = n.visitChildFirst { c in
                    let p = c.path
                    if let e = c.entry { deleted[p] = Item(entry: e, layer: i, status: .deleted) }
                    changed.remove(p)
                    return true
                }
            }
            for e in layer.entries where e.marker == .opaque {
                guard let d = tree.node(e.target) else { continue }
                for c in d.children.values { drop(c) }
                d.children = [:]
            }
            for e in layer.entries where e.marker == .whiteout {
                if let n = tree.remove(e.target) { drop(n) }
            }
            for e in layer.entries.filter({ $0.marker == .none }).sorted(by: { $0.path < $1.path }) {
                // A directory replaces a non-directory on the way (it becomes an implicit directory).
                var n = tree.root
                for part in e.path.split(separator: "/").dropLast() {
                    let name = String(part)
                    if let c = n.children[name] {
                        if let ce = c.entry, ce.kind != .directory {
                            deleted[c.path] = Item(entry: ce, layer: i, status: .deleted)
                            c.entry = nil
                            c.layer = i
                            implied[c.path] = Self.impliedMode(under: n.entry, implied: n.parent == nil ? nil : implied[n.path])
                        }
                        n = c
                    } else {
                        let c = IndexTree.Node(name: name, parent: n, entry: nil, layer: i)
                        n.children[name] = c
                        implied[c.path] = Self.impliedMode(under: n.entry, implied: n.parent == nil ? nil : implied[n.path])
                        n = c
                    }
                }
                let existing = tree.node(e.path)
                if let x = existing, e.kind != .directory, !x.children.isEmpty {
                    for c in x.children.values { drop(c) }
                    x.children = [:]
                }
                if existing?.entry != nil { changed.insert(e.path) } else { changed.remove(e.path) }
                tree.add(e.path, entry: e, layer: i)
                deleted[e.path] = nil
            }
        }
        // Directories only implied by a path below them exist too (see `impliedMode`).
        func synthesize(_ n: IndexTree.Node) {
            if n.parent != nil, n.entry == nil {
                let p = n.path
                let (mode, gid) = implied[p] ?? (0o755, 0)
                n.entry = LayerEntry(path: p, kind: .directory, mode: mode, uid: 0, gid: gid, size: 0)
            }
            for c in n.children.values where c.entry == nil || c.entry?.kind == .directory { synthesize(c) }
        }
        synthesize(tree.root)
        _ = tree.root.visitChildFirst { n in
            if n.parent != nil, let e = n.entry {
                let p = n.path
                present[p] = Item(entry: e, layer: n.layer, status: changed.contains(p) ? .changed : .added)
            }
            return true
        }
        for p in present.keys { deleted[p] = nil }
        self.present = present
        self.deleted = deleted
    }
}
