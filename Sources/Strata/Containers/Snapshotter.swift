import Foundation

/// How a container's root filesystem is put together from its image's layers.
public enum SnapshotterKind: String, Sendable, Codable, CaseIterable {
    /// A kernel overlay mount: layers are the lower directories, the container's writable
    /// layer is the upper directory. Needs overlayfs and root, or a user namespace where the
    /// kernel allows the mount (rootless: `-o userxattr`, see ``OverlayXattr``).
    case overlay
    /// A merged copy of the layers; changes are found by comparing with them. Works
    /// anywhere, without root.
    case copy

    /// Overlay when this process is root and can mount it, copy otherwise. In a user namespace
    /// (rootless) overlay is mounted with `-o userxattr` where the kernel allows it (5.11+): a
    /// test mount in a temporary directory decides, once per process
    /// (``preferred(probingIn:)`` tests on the store's own filesystem).
    public static var preferred: SnapshotterKind {
        guard overlayAvailable else { return .copy }
        guard UserNamespace.isNested else { return .overlay }
        return OverlayProbe.result(in: FileManager.default.temporaryDirectory.path) ? .overlay : .copy
    }

    /// ``preferred``, with the user-namespace test mount made in `dir` (a directory of the store,
    /// so the test also covers its filesystem: `user.*` xattrs and whiteouts on the upper layer).
    public static func preferred(probingIn dir: String) -> SnapshotterKind {
        guard overlayAvailable else { return .copy }
        guard UserNamespace.isNested else { return .overlay }
        return OverlayProbe.result(in: dir) ? .overlay : .copy
    }

    /// uid 0 (root, or root of a user namespace) and a kernel with overlayfs.
    private static var overlayAvailable: Bool {
        guard geteuid() == 0, let fs = try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8) else { return false }
        return fs.contains("\toverlay\n")
    }
}

/// A container's directories: `containers/<id>/{upper,work,merged}` (overlay) or
/// `containers/<id>/rootfs` (copy).
struct ContainerDirs: Sendable {
    let base: URL
    var upper: String { base.appendingPathComponent("upper").path }
    var work: String { base.appendingPathComponent("work").path }
    var merged: String { base.appendingPathComponent("merged").path }
    var rootfs: String { base.appendingPathComponent("rootfs").path }
    /// dockerd's init layer (``Store/makeInitLayer(at:)``), the top of the container's lowers.
    var initLayer: String { base.appendingPathComponent("init").path }
}

/// One change in a container's writable layer, as `docker diff` prints it.
public struct Change: Sendable, Codable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable { case added = "A", changed = "C", deleted = "D" }
    public var kind: Kind
    /// Absolute path inside the container.
    public var path: String
    public var description: String { "\(kind.rawValue) \(path)" }
}

/// The two snapshotters behind one small protocol.
protocol Snapshotter: Sendable {
    /// Creates the writable layer over `lowers` (bottom first).
    func prepare(_ dirs: ContainerDirs, lowers: [String]) throws
    /// The merged root filesystem, mounting it if needed.
    func mount(_ dirs: ContainerDirs, lowers: [String]) throws -> String
    func unmount(_ dirs: ContainerDirs) throws
    /// What the container changed, sorted by path.
    func changes(_ dirs: ContainerDirs, lowers: [String]) throws -> [Change]
    /// The root of the container's own changes, walked by commit, and whether deletions
    /// in it are overlay whiteouts (overlay) or must be found by comparison (copy).
    func writableRoot(_ dirs: ContainerDirs) -> String
}

struct OverlaySnapshotter: Snapshotter {
    func prepare(_ dirs: ContainerDirs, lowers: [String]) throws {
        for d in [dirs.upper, dirs.work, dirs.merged] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        // The merged root shows the upper directory's owner, mode and times: give it the top
        // layer's, as a copy-up would.
        if let top = lowers.last, let meta = FileMeta.of(top) { try TreeCopier().copyMetadata(from: top, to: dirs.upper, meta: meta) }
    }

    func isMounted(_ path: String) -> Bool {
        // Read to EOF: String(contentsOfFile:) stops after 4 KiB on procfs files, which
        // hid every mount past the first few dozen (stacked mounts, containers never unmounted).
        guard let data = FileHandle(forReadingAtPath: "/proc/self/mountinfo")?.readDataToEndOfFile() else { return false }
        let mounts = String(decoding: data, as: UTF8.self)
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst(4).first.map(String.init) == path }
    }

    func mount(_ dirs: ContainerDirs, lowers: [String]) throws -> String {
        if isMounted(dirs.merged) { return dirs.merged }
        var lower = lowers.reversed().joined(separator: ":")
        if lowers.isEmpty {
            let empty = dirs.base.appendingPathComponent("empty").path
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            lower = empty
        }
        // In a user namespace overlayfs keeps its attributes as user.overlay.* (OverlayXattr).
        let options = "lowerdir=\(lower),upperdir=\(dirs.upper),workdir=\(dirs.work)" + (OverlayXattr.inUserNamespace ? ",userxattr" : "")
        guard options.utf8.count < 4000 else {
            throw StrataError(.invalidArgument, "too many layers (\(lowers.count)) for one overlay mount here; use --snapshotter copy")
        }
        if Glibc.mount("overlay", dirs.merged, "overlay", 0, options) != 0 {
            throw StrataError(.io, "cannot mount overlay at \(dirs.merged): \(String(cString: strerror(errno))); use --snapshotter copy")
        }
        return dirs.merged
    }

    func unmount(_ dirs: ContainerDirs) throws {
        guard isMounted(dirs.merged) else { return }
        if umount2(dirs.merged, 0) != 0 && umount2(dirs.merged, Int32(MNT_DETACH)) != 0 {
            throw StrataError.system("cannot unmount \(dirs.merged)")
        }
    }

    func writableRoot(_ dirs: ContainerDirs) -> String { dirs.upper }

    func changes(_ dirs: ContainerDirs, lowers: [String]) throws -> [Change] {
        let lower = TreeNode.merged(lowers)
        var out: [Change] = []
        func walk(_ rel: String, _ lowerNode: TreeNode?) {
            let dir = rel.isEmpty ? dirs.upper : dirs.upper + "/" + rel
            for name in directoryEntries(dir) {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                guard let meta = FileMeta.of(dir + "/" + name) else { continue }
                let inLower = lowerNode?.children[name]
                if meta.isOverlayWhiteout {
                    if inLower != nil { out.append(Change(kind: .deleted, path: "/" + childRel)) }
                    continue
                }
                out.append(Change(kind: inLower == nil ? .added : .changed, path: "/" + childRel))
                if meta.kind == .directory {
                    walk(childRel, isOpaque(dir + "/" + name) ? nil : inLower)
                }
            }
        }
        walk("", lower)
        return out.sorted { $0.path < $1.path }
    }
}

struct CopySnapshotter: Snapshotter {
    func prepare(_ dirs: ContainerDirs, lowers: [String]) throws {
        try FileManager.default.createDirectory(atPath: dirs.rootfs, withIntermediateDirectories: true)
        let copier = TreeCopier()
        for l in lowers { try copier.apply(layer: l, to: dirs.rootfs) }
        if let top = lowers.last, let meta = FileMeta.of(top) { try copier.copyMetadata(from: top, to: dirs.rootfs, meta: meta) }
    }

    func mount(_ dirs: ContainerDirs, lowers: [String]) throws -> String { dirs.rootfs }
    func unmount(_ dirs: ContainerDirs) throws {}
    func writableRoot(_ dirs: ContainerDirs) -> String { dirs.rootfs }

    func changes(_ dirs: ContainerDirs, lowers: [String]) throws -> [Change] {
        let lower = TreeNode.merged(lowers)
        var out: [Change] = []
        /// Returns whether anything below changed.
        @discardableResult
        func walk(_ rel: String, _ lowerNode: TreeNode?) -> Bool {
            let dir = rel.isEmpty ? dirs.rootfs : dirs.rootfs + "/" + rel
            var changed = false
            let names = directoryEntries(dir)
            for name in names {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                guard let meta = FileMeta.of(dir + "/" + name) else { continue }
                let l = lowerNode?.children[name]
                if l == nil || l?.meta.kind != meta.kind {
                    out.append(Change(kind: l == nil ? .added : .changed, path: "/" + childRel))
                    if meta.kind == .directory { walk(childRel, nil) }
                    changed = true
                } else if meta.kind == .directory {
                    let below = walk(childRel, l)
                    if below || !(l.map { meta.sameAs($0.meta) } ?? false) {
                        out.append(Change(kind: .changed, path: "/" + childRel))
                        changed = true
                    }
                } else if let l, !meta.sameAs(l.meta) {
                    out.append(Change(kind: .changed, path: "/" + childRel))
                    changed = true
                }
            }
            let present = Set(names)
            for (name, _) in lowerNode?.children ?? [:] where !present.contains(name) {
                out.append(Change(kind: .deleted, path: "/" + (rel.isEmpty ? name : rel + "/" + name)))
                changed = true
            }
            return changed
        }
        walk("", lower)
        return out.sorted { $0.path < $1.path }
    }
}
