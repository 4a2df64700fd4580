/// An in-memory file tree built from index entries: one layer's tree, or several layers
/// stacked. Nodes without an entry are implicit directories (a path's parents that the tar
/// did not list).
final class IndexTree {
    final class Node {
        let name: String
        weak var parent: Node?
        var entry: LayerEntry?
        /// The layer that last added, changed (or implicitly created) this node.
        var layer: Int
        var children: [String: Node] = [:]

        init(name: String, parent: Node?, entry: LayerEntry?, layer: Int) {
            self.name = name
            self.parent = parent
            self.entry = entry
            self.layer = layer
        }

        var isDirectory: Bool { entry?.kind == .directory }
        var isLeaf: Bool { children.isEmpty }
        var isWhiteout: Bool { name.hasPrefix(LayerEntry.whiteoutPrefix) }

        /// Slash-separated path from the root, without a leading slash (whiteout prefix kept).
        var path: String {
            var parts: [String] = []
            var n: Node? = self
            while let c = n, c.parent != nil { parts.append(c.name); n = c.parent }
            return parts.reversed().joined(separator: "/")
        }

        /// Every node below (and including) this one, children first, names sorted.
        func visitChildFirst(_ body: (Node) -> Bool) -> Bool {
            for k in children.keys.sorted() {
                if let c = children[k], !c.visitChildFirst(body) { return false }
            }
            return body(self)
        }

        func copy(parent: Node?) -> Node {
            let n = Node(name: name, parent: parent, entry: entry, layer: layer)
            for (k, c) in children { n.children[k] = c.copy(parent: n) }
            return n
        }

        /// Sum of the entry sizes of this node and everything below it.
        var subtreeSize: Int64 {
            var s: Int64 = 0
            _ = visitChildFirst { s += $0.entry?.size ?? 0; return true }
            return s
        }
    }

    let root = Node(name: "", parent: nil, entry: nil, layer: -1)

    init() {}

    /// dive's per-layer tree: every entry at its path (whiteouts under their `.wh.` name),
    /// opaque markers only create their parents.
    convenience init(layer entries: [LayerEntry], index: Int) {
        self.init()
        for e in entries {
            if e.marker == .opaque {
                let parent = LayerEntry.parent(of: e.path)
                if !parent.isEmpty { _ = ensure(parent, layer: index) }
            } else {
                add(e.path, entry: e, layer: index)
            }
        }
    }

    func copy() -> IndexTree {
        let t = IndexTree()
        for (k, c) in root.children { t.root.children[k] = c.copy(parent: t.root) }
        return t
    }

    func node(_ path: String) -> Node? {
        var n = root
        for part in path.split(separator: "/") {
            guard let c = n.children[String(part)] else { return nil }
            n = c
        }
        return n
    }

    /// Finds or creates the node at `path`, creating implicit parents.
    func ensure(_ path: String, layer: Int) -> Node {
        var n = root
        for part in path.split(separator: "/") {
            let name = String(part)
            if let c = n.children[name] {
                n = c
            } else {
                let c = Node(name: name, parent: n, entry: nil, layer: layer)
                n.children[name] = c
                n = c
            }
        }
        return n
    }

    /// Sets the entry at `path` (children are kept, as dive keeps them).
    @discardableResult
    func add(_ path: String, entry: LayerEntry?, layer: Int) -> Node {
        let n = ensure(path, layer: layer)
        n.entry = entry
        n.layer = layer
        return n
    }

    @discardableResult
    func remove(_ path: String) -> Node? {
        guard let n = node(path), let p = n.parent else { return nil }
        p.children[n.name] = nil
        return n
    }
}
