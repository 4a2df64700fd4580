import CArchive
import Foundation

/// What `lstat` says about one path, as far as container diffs care.
struct FileMeta: Equatable, Sendable {
    enum Kind: Sendable, Equatable { case file, directory, symlink, char, block, fifo, socket }
    var kind: Kind
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    var mtimeSec: Int
    var mtimeNsec: Int
    var rdev: UInt64
    var inode: UInt64
    var linkTarget: String?
    /// Number of hard links.
    var nlink: UInt64 = 1

    static func of(_ path: String) -> FileMeta? {
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

func isOpaque(_ dir: String) -> Bool {
    var v: UInt8 = 0
    return getxattr(dir.cPath, "trusted.overlay.opaque", &v, 1) == 1 && v == UInt8(ascii: "y")
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
        if names.contains(".wh..wh..opq") || (!rel.isEmpty && isOpaque(dir)) { children.removeAll() }
        for name in names where name.hasPrefix(".wh.") && name != ".wh..wh..opq" {
            children.removeValue(forKey: String(name.dropFirst(4)))
        }
        for name in names where !name.hasPrefix(".wh.") {
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

/// Copies layer directories into one root filesystem, applying whiteouts — the copy
/// snapshotter's merged view. Keeps modes, owners (as root), xattrs, times, symlinks,
/// hardlinks (within a layer), fifos and device nodes.
struct TreeCopier {
    let asRoot = geteuid() == 0
    /// Interpret `.wh.` files, 0/0 devices and opaque directories as whiteouts (layers), or
    /// copy everything as it is (`cp`).
    var whiteouts = true

    func apply(layer: String, to rootfs: String) throws {
        var links: [UInt64: String] = [:]
        try apply(layer: layer, rel: "", rootfs: rootfs, links: &links)
    }

    private func apply(layer: String, rel: String, rootfs: String, links: inout [UInt64: String]) throws {
        let src = rel.isEmpty ? layer : layer + "/" + rel
        let dst = rel.isEmpty ? rootfs : rootfs + "/" + rel
        let names = directoryEntries(src)
        if whiteouts {
            if names.contains(".wh..wh..opq") || (!rel.isEmpty && isOpaque(src)) {
                for n in directoryEntries(dst) { removeTree(dst + "/" + n) }
            }
            for name in names where name.hasPrefix(".wh.") && name != ".wh..wh..opq" {
                removeTree(dst + "/" + String(name.dropFirst(4)))
            }
        }
        var dirs: [(String, FileMeta)] = []
        for name in names where !whiteouts || !name.hasPrefix(".wh.") {
            let s = src + "/" + name, d = dst + "/" + name
            guard let meta = FileMeta.of(s) else { continue }
            if whiteouts && meta.isOverlayWhiteout { removeTree(d); continue }
            let existing = FileMeta.of(d)
            if meta.kind == .directory {
                if let existing, existing.kind != .directory { removeTree(d) }
                if existing?.kind != .directory, mkdir(d.cPath, 0o700) != 0 {
                    throw StrataError(.io, "cannot create \(d): \(String(cString: strerror(errno)))")
                }
                try apply(layer: layer, rel: rel.isEmpty ? name : rel + "/" + name, rootfs: rootfs, links: &links)
                dirs.append((d, meta))
                continue
            }
            if existing != nil { removeTree(d) }
            switch meta.kind {
            case .file:
                if let first = links[meta.inode], link(first.cPath, d.cPath) == 0 { continue }
                try copyFile(s, d, size: meta.size)
                if meta.nlink > 1 { links[meta.inode] = d }
            case .symlink:
                if symlink((meta.linkTarget ?? "").cPath, d.cPath) != 0 { throw StrataError(.io, "cannot create symlink \(d): \(String(cString: strerror(errno)))") }
            case .char, .block, .fifo, .socket:
                let type: UInt32 = meta.kind == .char ? S_IFCHR : meta.kind == .block ? S_IFBLK : meta.kind == .fifo ? S_IFIFO : S_IFSOCK
                if mknod(d.cPath, type | meta.mode, dev_t(meta.rdev)) != 0 {
                    throw StrataError(.io, "cannot create \(d): \(String(cString: strerror(errno)))")
                }
            case .directory:
                break
            }
            try copyMetadata(from: s, to: d, meta: meta)
        }
        // Directory metadata last: writing children changes a directory's times.
        for (d, meta) in dirs { try copyMetadata(from: src + "/" + splitPath(d).base, to: d, meta: meta) }
    }

    func copyFile(_ s: String, _ d: String, size: Int64) throws {
        let i = open(s.cPath, O_RDONLY | O_CLOEXEC)
        guard i >= 0 else { throw StrataError(.io, "cannot read \(s): \(String(cString: strerror(errno)))") }
        defer { close(i) }
        let o = open(d.cPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard o >= 0 else { throw StrataError(.io, "cannot create \(d): \(String(cString: strerror(errno)))") }
        defer { close(o) }
        if strata_copy_fd(i, o, size) != 0 { throw StrataError(.io, "cannot copy \(s): \(String(cString: strerror(errno)))") }
    }

    /// Owner, mode, xattrs (not overlay's own) and times.
    func copyMetadata(from s: String, to d: String, meta: FileMeta) throws {
        let dc = d.cPath, sc = s.cPath
        if asRoot { lchown(dc, meta.uid, meta.gid) }
        if meta.kind != .symlink { chmod(dc, mode_t(meta.mode)) }
        var names = [Int8](repeating: 0, count: 65536)
        let n = llistxattr(sc, &names, names.count)
        if n > 0 {
            let all = names[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            for name in all where !name.hasPrefix("trusted.overlay.") {
                var value = [UInt8](repeating: 0, count: 65536)
                let len = lgetxattr(sc, name, &value, value.count)
                if len >= 0 { lsetxattr(dc, name, value, len, 0) }
            }
        }
        var times = [timespec(tv_sec: meta.mtimeSec, tv_nsec: meta.mtimeNsec), timespec(tv_sec: meta.mtimeSec, tv_nsec: meta.mtimeNsec)]
        utimensat(AT_FDCWD, dc, &times, AT_SYMLINK_NOFOLLOW)
    }
}
