import CArchive
import Foundation

/// What a path in a container is: what `docker cp` asks before it copies
/// (``Store/statPath(inContainer:path:)``) and what comes with an archive of it.
public struct ContainerPathStat: Sendable, Codable, Hashable {
    /// The last component of the path as asked (`/etc/hosts` → `hosts`, `/` → `/`, and `/etc/.`,
    /// the directory's contents, → `.`).
    public var name: String
    /// The size in bytes (a symlink: the length of its target).
    public var size: Int64
    /// POSIX mode: the file type (`S_IFMT` bits) and the permission bits.
    public var mode: UInt32
    /// The modification time.
    public var modified: Date
    /// A symlink's target as stored in the container; empty for anything else.
    public var linkTarget: String

    /// Whether the path is a directory.
    public var isDirectory: Bool { mode & Self.typeMask == Self.directory }
    /// Whether the path is a symbolic link.
    public var isSymlink: Bool { mode & Self.typeMask == Self.symlink }

    /// The file-type bits of ``mode`` (`S_IFMT`; the values below are the same on every Linux):
    /// `stat.mode & ContainerPathStat.typeMask == ContainerPathStat.directory`.
    public static let typeMask: UInt32 = 0o170000
    /// A directory (`S_IFDIR`).
    public static let directory: UInt32 = 0o040000
    /// A symbolic link (`S_IFLNK`).
    public static let symlink: UInt32 = 0o120000
    /// A regular file (`S_IFREG`).
    public static let regular: UInt32 = 0o100000
    /// A character device (`S_IFCHR`).
    public static let charDevice: UInt32 = 0o020000
    /// A block device (`S_IFBLK`).
    public static let blockDevice: UInt32 = 0o060000
    /// A named pipe (`S_IFIFO`).
    public static let fifo: UInt32 = 0o010000
    /// A unix socket (`S_IFSOCK`).
    public static let socket: UInt32 = 0o140000
}

/// A path in a container resolved for an archive (``Store/resolveArchive(fromContainer:path:)``):
/// what it is, and where it is on this machine.
package struct ContainerPathArchive: Sendable {
    /// What the path is, as ``Store/statPath(inContainer:path:)`` tells.
    package let stat: ContainerPathStat
    /// The path on this machine, inside the container's root.
    let source: String
    let meta: FileMeta
}

extension Store {
    /// What `path` is inside the container, resolved as ``copy(fromContainer:path:to:)``
    /// resolves it (symlinks inside the container root; the last component is not followed).
    ///
    /// ```swift
    /// let s = try await store.statPath(inContainer: "web", path: "/etc")
    /// if s.isDirectory { … }
    /// ```
    /// Throws `.fileNotFound` when nothing is there.
    public func statPath(inContainer ref: String, path: String) async throws -> ContainerPathStat {
        let c = try await container(ref)
        let root = try await mountContainer(ref)
        let full = try hostPath(path, in: c, root: root, followFinal: false)
        guard let meta = FileMeta.of(full) else { throw StrataError(.fileNotFound, "\(path): no such file or directory in the container") }
        return Self.pathStat(path, meta)
    }

    /// Writes a tar of `path` in the container to `tar` (`strata cp CONTAINER:PATH -`, the
    /// Engine API's `GET /containers/{id}/archive`): its entries are named from the path's last
    /// component down (`/etc` → `etc/`, `etc/hosts`, …; `/etc/.` → `./`, `./hosts`, …), with
    /// their owners, modes, times and xattrs; symlinks are archived as links. Returns what the
    /// path is.
    ///
    /// The path is resolved inside the container root as ``copy(fromContainer:path:to:)``
    /// does; nothing outside the root is read.
    public func archive(fromContainer ref: String, path: String, to tar: URL) async throws -> ContainerPathStat {
        let resolved = try await resolveArchive(fromContainer: ref, path: path)
        let fd = Glibc.open(tar.path,  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StrataError.system("cannot create \(tar.path)") }
        defer { close(fd) }
        let writer = try ArchiveWriter(fd: fd, name: tar.path, reproducibleTimes: false)
        try writePathArchive(resolved, writer)
        return resolved.stat
    }

    /// Resolves `path` in the container for ``archive(_:to:name:)``: what the path is, known
    /// before any byte of its archive is written (a server sends it in the answer's head).
    /// Throws `.fileNotFound` when nothing is there.
    package func resolveArchive(fromContainer ref: String, path: String) async throws -> ContainerPathArchive {
        let c = try await container(ref)
        let root = try await mountContainer(ref)
        let source = try hostPath(path, in: c, root: root, followFinal: false)
        guard let meta = FileMeta.of(source) else { throw StrataError(.fileNotFound, "\(path): no such file or directory in the container") }
        return ContainerPathArchive(stat: Self.pathStat(path, meta), source: source, meta: meta)
    }

    /// Writes the tar of a resolved container path into `sink` as it is made (the Engine
    /// API's `GET /containers/{id}/archive`, `docker cp C:/path -`): the same entries as
    /// ``archive(fromContainer:path:to:)``, with no file in between. The writing runs on a
    /// thread of its own (the sink may block); a failure part way throws with the archive
    /// cut short, which the caller must pass on as such.
    package func archive(_ resolved: ContainerPathArchive, to sink: any ByteSink, name: String) async throws {
        try await onOwnThread("strata.cp") {
            try self.writePathArchive(resolved, try ArchiveWriter(sink: sink, name: name, reproducibleTimes: false))
        }
    }

    /// The entries of a resolved path, depth first in name order, then the archive's end.
    private func writePathArchive(_ resolved: ContainerPathArchive, _ writer: ArchiveWriter) throws {
        var links: [UInt64: String] = [:]
        let top = resolved.stat.name == "/" ? "." : resolved.stat.name
        func add(_ full: String, _ rel: String, _ meta: FileMeta) throws {
            try writer.addFromDisk(full, as: rel, meta: meta, links: &links)
            guard meta.kind == .directory else { return }
            for name in rawDirectoryEntries(full).sorted() {
                guard let m = FileMeta.of(full + "/" + name) else { continue }
                try add(full + "/" + name, rel + "/" + name, m)
            }
        }
        try add(resolved.source, top, resolved.meta)
        try writer.close()
    }

    /// Extracts a tar (plain or compressed) into the directory `directory` of the container
    /// (`strata cp - CONTAINER:DIR`, the Engine API's `PUT /containers/{id}/archive`).
    ///
    /// The directory must exist in the container (symlinks on the way are resolved inside
    /// its root). Entries are written as ADD extracts an archive: `..` and absolute names are
    /// refused, a symlink can never take a write outside the directory, device nodes are
    /// refused. A tar that fails part way leaves what it extracted so far, as `docker cp` does.
    ///
    /// Entries keep the archive's owners; with `asContainerUser` (`docker cp -a`) every entry
    /// of the archive is owned by the user the container runs as instead (the image's USER,
    /// resolved in the container's /etc/passwd and /etc/group as a run resolves it), when it
    /// has one. `tar` must then be a file (it is read twice).
    public func extractArchive(_ tar: URL, intoContainer ref: String, at directory: String, asContainerUser: Bool = false) async throws {
        let c = try await container(ref)
        let root = try await mountContainer(ref)
        var owner: ResolvedUser?
        // The user its runs start as: the one given at create, else the image's USER.
        if asContainerUser {
            let user = if let u = c.user { u } else { try await inspect(c.imageID.string).config.config?.User }
            if let user, !user.isEmpty { owner = try UserResolver(root: root).resolve(user) }
        }
        let target = try hostPath(directory, in: c, root: root, followFinal: true, writing: true)
        guard let meta = FileMeta.of(target) else { throw StrataError(.fileNotFound, "\(directory): no such directory in the container") }
        guard meta.kind == .directory else { throw StrataError(.invalidArgument, "\(directory): extraction point is not a directory") }
        try await explainingDiskFull("copying into \(ref)", estimate: { treeSize(tar.path) }) {
            try LayerUnpacker(root: target, overlayWhiteouts: false, applyRootHeader: false, resolveLinksInRoot: true)
                .unpack(layer: tar.path, name: "the archive for \(ref)")
        }
        guard let owner else { return }
        // Each entry where the extraction put it: parents' symlinks resolved inside `target`,
        // the entry itself not followed.
        let reader = try ArchiveReader(path: tar.path, name: "the archive for \(ref)")
        while let entry = try reader.next() {
            let rel = try ArchivePath.clean(entry.path, in: "the archive for \(ref)")
            if rel.isEmpty || rel == "." { continue }
            let full = try ScopedPath.resolve(root: target, path: rel, followFinal: false)
            if lchown(full.cPath, owner.uid, owner.gid) != 0, errno != ENOENT {
                throw StrataError.system("cannot change the owner of \(rel) in \(ref)")
            }
        }
    }

    static func pathStat(_ asked: String, _ meta: FileMeta) -> ContainerPathStat {
        // `DIR/.` names the directory's contents (docker cp's rule): its entries are `./…`.
        let parts = asked.hasSuffix("/.") || asked == "." ? ["."] : asked.split(separator: "/").filter { $0 != "." }
        let type: UInt32
        switch meta.kind {
        case .file: type = ContainerPathStat.regular
        case .directory: type = ContainerPathStat.directory
        case .symlink: type = ContainerPathStat.symlink
        case .char: type = ContainerPathStat.charDevice
        case .block: type = ContainerPathStat.blockDevice
        case .fifo: type = ContainerPathStat.fifo
        case .socket: type = ContainerPathStat.socket
        }
        return ContainerPathStat(name: parts.last.map(String.init) ?? "/", size: meta.size, mode: type | meta.mode,
                                 modified: Date(timeIntervalSince1970: Double(meta.mtimeSec) + Double(meta.mtimeNsec) / 1e9),
                                 linkTarget: meta.linkTarget ?? "")
    }
}
