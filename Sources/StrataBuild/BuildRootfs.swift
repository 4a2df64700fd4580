import Foundation
import CArchive
import Strata
#if canImport(Glibc)
import Glibc
#endif

/// One file, directory or symlink a COPY/ADD step writes into the rootfs.
struct BuildCopyItem: Sendable, Hashable {
    /// Host path of the source (inside the context or another stage's rootfs).
    var source: String
    /// Absolute path in the build container.
    var destination: String

    init(source: String, destination: String) {
        self.source = source
        self.destination = destination
    }
}

/// A build container's mounted root filesystem. Every path is resolved inside it: symlinks
/// are followed relative to the root and `..` never climbs above it (law 5).
struct BuildRootfs: Sendable {
    /// The host path of the root.
    let root: String

    init(root: String) { self.root = root }

    /// The host path `path` (absolute, in the container) resolves to.
    func resolve(_ path: String, followFinal: Bool = true) throws -> String {
        try ScopedPath.resolve(root: root, path: path, followFinal: followFinal)
    }

    /// `path` with its last component followed when that is a symlink, dangling or not, as
    /// the container sees it (the link's target resolved inside the root): where BuildKit's
    /// copier and the classic builder write a file whose destination is a symlink, so the
    /// link stays and what it names is written. `path` itself when its last component is
    /// not a link.
    func followingFinalLink(_ path: String) throws -> String {
        let full = try resolve(path)
        guard full != (try resolve(path, followFinal: false)) else { return path }
        return full == root ? "/" : String(full.dropFirst(root.count))
    }

    /// Whether `path` is a directory in the container (following symlinks inside it).
    func isDirectory(_ path: String) -> Bool {
        guard let full = try? resolve(path) else { return false }
        return FileMeta.of(full)?.kind == .directory
    }

    /// Creates `path` and its missing parents (0755, owned by root unless `owner`).
    func makeDirectory(_ path: String, owner: (uid: UInt32, gid: UInt32)? = nil) throws {
        try ScopedPath.makeDirectories(root: root, path: path, owner: owner)
    }

    /// Resolves a `--chown` spec ("uid", "name", "uid:gid", "name:group"; empty: root) with
    /// the rootfs' own /etc/passwd and /etc/group (``UserResolver/owner(_:)``). An unknown
    /// name is an error, as in Docker.
    func owner(_ spec: String) throws -> (uid: UInt32, gid: UInt32) {
        try UserResolver(root: root).owner(spec)
    }

    /// The owner WORKDIR gives the directories it creates: the USER in effect, resolved in
    /// the rootfs with the `--chown` rule (a lone uid is its own gid), as BuildKit and buildah
    /// do. A user the image does not know gives root, as buildah does.
    func workdirOwner(_ user: String) -> (uid: UInt32, gid: UInt32)? {
        guard !user.isEmpty else { return nil }
        return try? UserResolver(root: root).owner(user)
    }

    /// Copies files, directories and symlinks in (in order: parents before children), with
    /// their mode (setuid/setgid/sticky included), times and xattrs; owner `owner`, else the
    /// source's own with `keepOwner` (`COPY --from`), else root; mode as given by `mode`.
    /// Missing parent directories are created (0755, owned by `owner`). An existing directory is merged into and
    /// takes the copied directory's metadata (owner, mode, times), as BuildKit's copier and buildah's do for
    /// everything below the destination; any other existing path is replaced. (The destination directory itself
    /// is not an item: the caller makes it, and an existing one keeps its own.)
    func copy(_ items: [BuildCopyItem], owner: (uid: UInt32, gid: UInt32)?, mode: UInt32?, keepOwner: Bool = false) throws {
        let copier = TreeCopier()
        var dirs: [(target: String, meta: FileMeta, source: String)] = []
        for item in items {
            guard let meta = FileMeta.of(item.source) else {
                throw StrataError(.invalidArgument, "\(item.source): no such file or directory")
            }
            let (parent, name) = splitPath(item.destination)
            try makeDirectory(parent, owner: owner)  // new parents get the --chown owner, as in Docker and buildah
            let parentFull = try resolve(parent)
            guard !name.isEmpty, name != ".", name != ".." else {
                if meta.kind == .directory { continue }
                throw StrataError(.invalidArgument, "cannot copy \(item.source) to \(item.destination)")
            }
            let target = parentFull + "/" + name
            let existing = FileMeta.of(target)
            if meta.kind == .directory, existing?.kind == .directory {
                dirs.append((target, meta, item.source))  // merged into, then given the source's metadata
                continue
            }
            if existing != nil { removeTree(target) }
            switch meta.kind {
            case .directory:
                if mkdir(target.cPath, 0o755) != 0 { throw StrataError.system("cannot create \(item.destination)") }
                dirs.append((target, meta, item.source))
                continue
            case .file:
                try copier.copyFile(item.source, target, size: meta.size)
            case .symlink:
                if symlink((meta.linkTarget ?? "").cPath, target.cPath) != 0 {
                    throw StrataError.system("cannot create \(item.destination)")
                }
            default:
                throw StrataError(.invalidArgument, "\(item.source): only files, directories and symlinks can be copied")
            }
            try apply(meta, from: item.source, to: target, owner: owner, mode: mode, keepOwner: keepOwner, copier: copier)
        }
        // Directory metadata last: writing children changes a directory's times.
        for d in dirs.reversed() {
            try apply(d.meta, from: d.source, to: d.target, owner: owner, mode: mode, keepOwner: keepOwner, copier: copier)
        }
    }

    private func apply(_ meta: FileMeta, from source: String, to target: String, owner: (uid: UInt32, gid: UInt32)?, mode: UInt32?,
                       keepOwner: Bool, copier: TreeCopier) throws {
        var m = meta
        if let owner {
            (m.uid, m.gid) = (owner.uid, owner.gid)
        } else if !keepOwner {
            (m.uid, m.gid) = (0, 0)
        }
        if let mode, meta.kind != .symlink { m.mode = mode }
        // Owner first, then mode: a chown after the chmod would clear setuid and setgid.
        try copier.copyMetadata(from: source, to: target, meta: m)
    }

    /// A path's extended attributes (not followed through a symlink), sorted by name,
    /// without overlayfs' own (``OverlayXattr``).
    static func extendedAttributes(_ path: String) -> [(name: String, value: [UInt8])] {
        var names = [Int8](repeating: 0, count: 65536)
        let n = llistxattr(path.cPath, &names, names.count)
        guard n > 0 else { return [] }
        let all = names[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }.sorted()
        return all.filter { !OverlayXattr.isInternal($0) }.map { name in
            var value = [UInt8](repeating: 0, count: 65536)
            let len = lgetxattr(path.cPath, name, &value, value.count)
            return (name, len > 0 ? Array(value[0..<len]) : [])
        }
    }

    /// Unpacks a local tar archive (plain, gzip, zstd, bzip2, xz) into the directory `path`
    /// (ADD's auto-extraction), as docker's classic builder and buildah do: the directory is
    /// the archive's root — an entry below a symlink (the archive's own or the image's) goes
    /// where it leads inside that directory, a file replaces a directory — and `..` or a
    /// symlink can never take a write outside it.
    func extract(archive: String, into path: String) throws {
        try makeDirectory(path)
        let dir = try resolve(path)
        try LayerUnpacker(root: dir, overlayWhiteouts: false, applyRootHeader: false, resolveLinksInRoot: true)
            .unpack(layer: archive, name: splitPath(archive).base)
    }
}
