import CArchive
import Foundation

/// What `lstat` says about one path, as far as container diffs care.
package struct FileMeta: Equatable, Sendable {
    package enum Kind: Sendable, Equatable { case file, directory, symlink, char, block, fifo, socket }
    package var kind: Kind
    package var mode: UInt32
    package var uid: UInt32
    package var gid: UInt32
    package var size: Int64
    package var mtimeSec: Int
    package var mtimeNsec: Int
    package var rdev: UInt64
    package var inode: UInt64
    package var linkTarget: String?
    /// Number of hard links.
    package var nlink: UInt64 = 1

    package static func of(_ path: String) -> FileMeta? {
        var st = stat()
        guard lstat(path.cPath, &st) == 0 else { return nil }
        let kind: Kind
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        case S_IFCHR: kind = .char
        case S_IFBLK: kind = .block
        case S_IFIFO: kind = .fifo
        default: kind = .socket
        }
        let target = kind == .symlink ? readLinkTarget(path) : nil
        return FileMeta(kind: kind, mode: UInt32(st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid, size: Int64(st.st_size),
                        mtimeSec: st.st_mtim.tv_sec, mtimeNsec: st.st_mtim.tv_nsec, rdev: UInt64(st.st_rdev),
                        inode: UInt64(st.st_ino), linkTarget: target, nlink: UInt64(st.st_nlink))
    }

    /// An overlayfs whiteout: a 0/0 character device.
    var isOverlayWhiteout: Bool { kind == .char && rdev == 0 }

    /// Same content and metadata, as far as a diff is concerned (the inode does not count).
    func sameAs(_ o: FileMeta) -> Bool {
        kind == o.kind && mode == o.mode && uid == o.uid && gid == o.gid && linkTarget == o.linkTarget && rdev == o.rdev
            && (kind == .directory || (size == o.size && mtimeSec == o.mtimeSec && mtimeNsec == o.mtimeNsec))
    }
}

/// Sorted names in a directory (no `.` and `..`).
func directoryEntries(_ path: String) -> [String] {
    rawDirectoryEntries(path).sorted()
}

/// Whether `dir` is an opaque directory (overlayfs' attribute, ``OverlayXattr``).
func isOpaque(_ dir: String) -> Bool {
    OverlayXattr.isOpaque(path: dir)
}

/// A tree of paths, used for the merged view of read-only layers.
final class TreeNode {
    var meta: FileMeta
    /// Where this path's bytes live (a layer directory's file).
    var source: String
    var children: [String: TreeNode] = [:]

    init(meta: FileMeta, source: String) {
        self.meta = meta
        self.source = source
    }

    func find(_ rel: String) -> TreeNode? {
        var node = self
        for c in rel.split(separator: "/") {
            guard let n = node.children[String(c)] else { return nil }
            node = n
        }
        return node
    }

    /// The merged view of layer directories, bottom first, with whiteouts applied
    /// (overlay 0/0 devices and opaque xattrs, or OCI `.wh.` files).
    static func merged(_ layers: [String]) -> TreeNode {
        let root = TreeNode(meta: FileMeta.of(layers.first ?? "/") ?? FileMeta(kind: .directory, mode: 0o755, uid: 0, gid: 0, size: 0, mtimeSec: 0, mtimeNsec: 0, rdev: 0, inode: 0), source: layers.first ?? "")
        for layer in layers { root.apply(layerDir: layer, rel: "") }
        return root
    }

    private func apply(layerDir: String, rel: String) {
        let dir = rel.isEmpty ? layerDir : layerDir + "/" + rel
        let names = directoryEntries(dir)
        if names.contains(LayerEntry.opaqueName) || (!rel.isEmpty && isOpaque(dir)) { children.removeAll() }
        for name in names where name.hasPrefix(LayerEntry.whiteoutPrefix) && name != LayerEntry.opaqueName {
            children.removeValue(forKey: String(name.dropFirst(4)))
        }
        for name in names where !name.hasPrefix(LayerEntry.whiteoutPrefix) {
            let path = dir + "/" + name
            guard let meta = FileMeta.of(path) else { continue }
            if meta.isOverlayWhiteout { children.removeValue(forKey: name); continue }
            let childRel = rel.isEmpty ? name : rel + "/" + name
            if meta.kind == .directory {
                let node: TreeNode
                if let existing = children[name], existing.meta.kind == .directory {
                    existing.meta = meta
                    existing.source = path
                    node = existing
                } else {
                    node = TreeNode(meta: meta, source: path)
                    children[name] = node
                }
                node.apply(layerDir: layerDir, rel: childRel)
            } else {
                children[name] = TreeNode(meta: meta, source: path)
            }
        }
    }
}
