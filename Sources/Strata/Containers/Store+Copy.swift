import Foundation

/// Path resolution inside a container's root, as the container sees it: symlinks are
/// followed relative to the root and `..` never climbs above it (what `docker cp` does
/// since its symlink CVEs).
package enum ScopedPath {
    /// Creates `path` (absolute, in the tree at `root`) and its missing parents: 0755, owned
    /// by root unless `owner`; each component resolved inside `root`, so a symlink in the
    /// tree never takes the creation outside it. An existing non-directory is an error.
    package static func makeDirectories(root: String, path: String, owner: (uid: UInt32, gid: UInt32)? = nil) throws {
        var current = ""
        for c in path.split(separator: "/") where !c.isEmpty && c != "." {
            current += "/" + c
            let full = try resolve(root: root, path: current, followFinal: true)
            if let m = FileMeta.of(full) {
                guard m.kind == .directory else {
                    throw StrataError(.invalidArgument, "\(current) exists in the image and is not a directory")
                }
                continue
            }
            if mkdir(full.cPath, 0o755) != 0 { throw StrataError.system("cannot create \(current)") }
            chmod(full.cPath, 0o755)
            if let owner { lchown(full.cPath, owner.uid, owner.gid) }
        }
    }

    package static func resolve(root: String, path: String, followFinal: Bool) throws -> String {
        var done: [String] = []
        var pending = Array(path.split(separator: "/").map(String.init).reversed())
        var hops = 0
        while let c = pending.popLast() {
            if c.isEmpty || c == "." { continue }
            if c == ".." { _ = done.popLast(); continue }
            let candidate = root + "/" + (done + [c]).joined(separator: "/")
            if let meta = FileMeta.of(candidate), meta.kind == .symlink, followFinal || !pending.isEmpty {
                hops += 1
                guard hops <= 255 else { throw StrataError(.unsafePath, "too many levels of symbolic links at \(path)") }
                let target = meta.linkTarget ?? ""
                if target.hasPrefix("/") { done = [] }
                pending += target.split(separator: "/").map(String.init).reversed()
                continue
            }
            done.append(c)
        }
        return done.isEmpty ? root : root + "/" + done.joined(separator: "/")
    }
}

extension Store {
    /// Where `path` of container `c` (its root mounted at `root`) is on the host, as the
    /// container sees it with its mounts in place: under a volume or host directory mounted
    /// at or above the path, in that mount's directory (`docker cp` reads and writes volumes,
    /// as dockerd's does), elsewhere in the root. Symlinks resolve inside whichever holds the
    /// path, never above it. `writing` into a read-only mount is refused.
    func hostPath(_ path: String, in c: ContainerInfo, root: String, followFinal: Bool, writing: Bool = false) throws -> String {
        let clean = "/" + (LayerEntry.clean(path) ?? "")
        let mount = (c.volumes ?? []).filter { clean == $0.destination || clean.hasPrefix($0.destination + "/") }
            .max { $0.destination.count < $1.destination.count }
        guard let mount else { return try ScopedPath.resolve(root: root, path: path, followFinal: followFinal) }
        if writing, mount.isReadOnly {
            throw StrataError(.permissionDenied, "\(path): the volume mounted at \(mount.destination) is read-only")
        }
        let rest = String(clean.dropFirst(mount.destination.count))
        // (The trailing "/." a copy's destination may end in is kept.)
        let tail = path.hasSuffix("/.") ? "/." : ""
        return try ScopedPath.resolve(root: mount.isBind ? mount.source : volumeData(mount.source), path: rest + tail, followFinal: followFinal)
    }

    /// Copies a host file or directory into a container (`strata cp SRC CONTAINER:DST`).
    /// The destination is resolved inside the container root; nothing is written outside it.
    public func copy(intoContainer ref: String, from source: String, to destination: String) async throws {
        guard let meta = FileMeta.of(source) else { throw StrataError(.invalidArgument, "\(source): no such file or directory") }
        let c = try await container(ref)
        let root = try await mountContainer(ref)
        var target = try hostPath(destination, in: c, root: root, followFinal: true, writing: true)
        if FileMeta.of(target)?.kind == .directory, !destination.hasSuffix("/.") {
            target += "/" + (source as NSString).lastPathComponent
        }
        // (Not NSString.deletingLastPathComponent: it traps on "." here.)
        let parent = target.lastIndex(of: "/").map { $0 == target.startIndex ? "/" : String(target[..<$0]) } ?? "."
        guard FileMeta.of(parent)?.kind == .directory else {
            throw StrataError(.invalidArgument, "\(destination): the parent directory does not exist in the container")
        }
        try await explainingDiskFull("copying \((source as NSString).lastPathComponent) into \(ref)", estimate: { treeSize(source) }) {
            try copyTree(meta, from: source, to: target)
        }
    }

    /// Copies a file or directory out of a container (`strata cp CONTAINER:SRC DST`).
    public func copy(fromContainer ref: String, path: String, to destination: String) async throws {
        let c = try await container(ref)
        let root = try await mountContainer(ref)
        let source = try hostPath(path, in: c, root: root, followFinal: false)
        guard let meta = FileMeta.of(source) else { throw StrataError(.invalidArgument, "\(path): no such file or directory in the container") }
        var target = destination
        if FileMeta.of(target)?.kind == .directory { target += "/" + (source as NSString).lastPathComponent }
        try copyTree(meta, from: source, to: target)
    }

    /// Copies into a new name beside `target` and renames it into place, so a copy that fails
    /// (a full disk) leaves neither a partial file nor a half-copied new directory, and what
    /// `target` was stays until the copy is whole. Copying a directory onto an existing one
    /// merges into it in place, as `docker cp` does.
    private func copyTree(_ meta: FileMeta, from source: String, to target: String) throws {
        var copier = TreeCopier()
        copier.whiteouts = false
        let existing = FileMeta.of(target)
        if meta.kind == .directory, existing?.kind == .directory {
            try copier.apply(layer: source, to: target)
            try copier.copyMetadata(from: source, to: target, meta: meta)
            return
        }
        let slash = target.lastIndex(of: "/").map { target.index(after: $0) } ?? target.startIndex
        let temp = String(target[..<slash]) + ".strata-cp-\(UUID().uuidString.prefix(8))"
        do {
            switch meta.kind {
            case .directory:
                if mkdir(temp.cPath, 0o700) != 0 { throw StrataError.system("cannot create \(temp)") }
                try copier.apply(layer: source, to: temp)
            case .file:
                try copier.copyFile(source, temp, size: meta.size)
            case .symlink:
                if symlink((meta.linkTarget ?? "").cPath, temp.cPath) != 0 { throw StrataError.system("cannot create \(temp)") }
            default:
                throw StrataError(.invalidArgument, "\(source): only files, directories and symlinks can be copied")
            }
            try copier.copyMetadata(from: source, to: temp, meta: meta)
            if existing?.kind == .directory { removeTree(target) }  // rename replaces anything else
            if rename(temp.cPath, target.cPath) != 0 { throw StrataError.system("cannot create \(target)") }
        } catch {
            removeTree(temp)
            throw error
        }
    }
}
