import CArchive
import Foundation
import OCI

/// Unpacks a layer tar (plain, gzip or zstd) into a directory, refusing anything that would
/// escape it (law 5): `..`, absolute paths, and writes through symlinks or hardlinks that
/// lead out. The rules are those of docs/ARCHITECTURE.md, "Layer application":
///
/// - **Whiteouts.** With `overlayWhiteouts` (root, or uid 0 of a user namespace) OCI whiteouts
///   become overlayfs ones: `.wh.NAME` a 0/0 character device, `.wh..wh..opq` the opaque
///   xattr (`trusted.overlay.opaque`, in a user namespace `user.overlay.opaque`: ``OverlayXattr``)
///   (the root included: ``Store/snapshotDirectories(of:)`` then drops every layer below).
///   Otherwise they are kept as the empty `.wh.` files they are.
/// - **Implicit parents.** A directory the layer only implies (it holds an entry of the layer
///   but has no header of its own) is a copy-up of the directory the layers below show at that
///   path — owner, mode, xattrs and times — as overlayfs copy-up and umoci do. `lowers` are the
///   unpacked directories of the layers below, bottom first. The layer's root is treated the
///   same way unless the layer has a `./` entry.
/// - **Names are bytes** (law 9): paths go from the tar header to the system calls unchanged.
/// - **Device nodes.** Character and block devices are refused unless `allowDevices`; a 0/0
///   character device (an overlay whiteout written into a tar) is always accepted.
package struct LayerUnpacker {
    let root: String
    let overlayWhiteouts: Bool
    let lowers: [String]
    let allowDevices: Bool
    /// Whether a `./` header sets the root's metadata (a layer), or is ignored (ADD's
    /// extraction into an existing directory, a build context).
    let applyRootHeader: Bool
    let asRoot: Bool
    /// ADD's extraction (docker's chrootarchive, buildah's copier): an entry whose parent path
    /// goes through a symlink — one the archive itself created, or one already there — is
    /// written where the symlink leads, resolved inside `root` (absolute targets start at
    /// `root`, `..` stops there), instead of being refused; and a non-directory entry replaces
    /// a directory at its path, populated or not. Nothing is ever written outside `root`.
    let resolveLinksInRoot: Bool

    package init(root: String, overlayWhiteouts: Bool, lowers: [String] = [], allowDevices: Bool = false, applyRootHeader: Bool = true,
         resolveLinksInRoot: Bool = false) {
        self.root = root
        self.overlayWhiteouts = overlayWhiteouts
        self.lowers = lowers
        self.allowDevices = allowDevices
        self.applyRootHeader = applyRootHeader
        self.asRoot = geteuid() == 0
        self.resolveLinksInRoot = resolveLinksInRoot
    }

    /// `rel` with its parent directories' symlinks resolved inside the root; the last
    /// component is kept as it is.
    private func scoped(_ rel: String) throws -> String {
        let (parent, base) = splitPath(rel)
        guard !parent.isEmpty, parent != "/" else { return rel }
        let host = try ScopedPath.resolve(root: root, path: parent, followFinal: true)
        let resolved = host == root ? "" : String(host.dropFirst(root.count + 1))
        return resolved.isEmpty ? base : resolved + "/" + base
    }

    /// Unpacks `layer` (a file) into `root`; `name` is how errors refer to it.
    package func unpack(layer: String, name: String) throws {
        // A layer with no content at all is an empty layer (moby and podman unpack it).
        let reader = try ArchiveReader(path: layer, name: name, emptyIsArchive: true)
        guard let disk = archive_write_disk_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        defer { archive_write_free(disk) }
        // Symlinks on the way are checked here, not by ARCHIVE_EXTRACT_SECURE_SYMLINKS: that
        // flag walks every component of the absolute path with an openat and an fstatat per
        // entry (11 system calls a file on a node_modules layer, most of the unpack's time).
        // `ensureParents` checks each directory once per unpack instead, and a symlink at an
        // entry's own path is removed before libarchive writes (it would follow it for a
        // directory's metadata). No ARCHIVE_EXTRACT_UNLINK: it replaces symlinks silently.
        var flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR
        if asRoot { flags |= ARCHIVE_EXTRACT_OWNER }
        archive_write_disk_set_options(disk, flags)
        // No user/group name lookup: owners are the header's numbers, never the host's idea of
        // what a name like "daemon" means (as umoci, Docker and overlayfs snapshots do).
        var state = State()
        // The root is a copy-up of the lower root until the layer says otherwise.
        if let lowerRoot = visibleLower("") { try copyUp(from: lowerRoot, to: root, rel: "", state: &state, name: name) }
        try reader.forEachRawEntry { entry, path, hardlink, copyData in
            try apply(entry: entry, path: path, hardlink: hardlink, copyData: copyData, disk: disk, state: &state, name: name)
        }
        // libarchive sets the times of directories with a header when it closes; the implied
        // ones get their lower times back now that nothing more is written into them.
        if archive_write_close(disk) < ARCHIVE_WARN {
            throw StrataError.libarchive(disk, .io, "\(name): cannot finish unpacking")
        }
        for (rel, meta) in state.implied {
            var times = [timespec(tv_sec: meta.mtimeSec, tv_nsec: meta.mtimeNsec), timespec(tv_sec: meta.mtimeSec, tv_nsec: meta.mtimeNsec)]
            utimensat(AT_FDCWD, full(rel).cPath, &times, AT_SYMLINK_NOFOLLOW)
        }
        // libarchive sets an existing directory's times at once (the root, a directory first
        // implied), before the entries below it change them: every directory with a header
        // gets its header's times last.
        for (rel, t) in state.directoryTimes where FileMeta.of(full(rel))?.kind == .directory {
            var times = [t, t]
            utimensat(AT_FDCWD, full(rel).cPath, &times, AT_SYMLINK_NOFOLLOW)
        }
    }

    /// What one unpack keeps track of.
    private struct State {
        /// Paths this layer wrote: a whiteout only hides what lower layers have (OCI).
        var created = Set<String>()
        /// Directories this layer only implies, with the metadata they were given.
        var implied: [String: FileMeta] = [:]
        /// Paths known to be real directories now (not symlinks): checked once, not per entry.
        var directories = Set<String>()
        /// Directories with a header: the header's modification time.
        var directoryTimes: [String: timespec] = [:]
        /// Directories with a header: mode and group as the header gives them (libarchive
        /// applies a directory's mode only when it closes).
        var directoryModes: [String: (mode: UInt32, gid: UInt32)] = [:]
    }

    private func full(_ rel: String) -> String { rel.isEmpty ? root : root + "/" + rel }

    private func apply(entry: OpaquePointer, path: String, hardlink: String?,
                       copyData: ((UnsafeRawBufferPointer, Int64) throws -> Void) throws -> Void,
                       disk: OpaquePointer, state: inout State, name: String) throws {
        let type = archive_entry_filetype(entry)
        var path = path, hardlink = hardlink
        if resolveLinksInRoot, path != "." {
            path = try scoped(path)
            hardlink = try hardlink.map(scoped)
            if type != strata_AE_IFDIR, let m = FileMeta.of(full(path)), m.kind == .directory {
                removeTree(full(path))  // a file (or link) replaces a directory, populated or not
                state.directories.removeAll()
            }
        }
        if path == "." {
            // The layer's own root: its metadata, never its type.
            guard type == strata_AE_IFDIR, applyRootHeader else { return }
            state.implied[""] = nil
            recordDirectory("", entry, &state)
            clearXattrs(root)
            dropUnwantedXattrs(entry)
            archive_entry_copy_pathname(entry, root.cPath)
            try write(entry, disk: disk, path: path, copyData: copyData, name: name)
            return
        }
        if type == strata_AE_IFCHR || type == strata_AE_IFBLK {
            let isWhiteoutDevice = type == strata_AE_IFCHR && archive_entry_rdevmajor(entry) == 0 && archive_entry_rdevminor(entry) == 0
            if !isWhiteoutDevice && !allowDevices {
                let kind = type == strata_AE_IFCHR ? "character" : "block"
                throw StrataError(.unsafePath, "\(name): \"\(RawName.escaped(path))\" is a \(kind) device (\(archive_entry_rdevmajor(entry)), \(archive_entry_rdevminor(entry))); device nodes are refused unless the store allows them (strata config devices allow)")
            }
        }
        let (parent, base) = splitPath(path)
        if base.hasPrefix(LayerEntry.whiteoutPrefix), overlayWhiteouts {
            // A whiteout of something no layer below has (and this one did not write) deletes
            // nothing and creates nothing, not even its parent directory (umoci, Docker).
            let target = base == LayerEntry.opaqueName ? parent : (parent.isEmpty ? "" : parent + "/") + String(base.dropFirst(LayerEntry.whiteoutPrefix.count))
            if !state.created.contains(target), !(FileMeta.of(full(target))?.kind == .directory && base == LayerEntry.opaqueName),
               hiddenByThisLayer(target) || visibleLower(target) == nil {
                return
            }
            try ensureParents(parent, state: &state, name: name)
            if base == LayerEntry.opaqueName {
                try markOpaque(full(parent), name: name)
            } else {
                let targetRel = (parent.isEmpty ? "" : parent + "/") + String(base.dropFirst(LayerEntry.whiteoutPrefix.count))
                let target = root + "/" + targetRel
                if state.created.contains(targetRel) {
                    // Deleted and recreated in this layer: a directory hides the lower one.
                    if FileMeta.of(target)?.kind == .directory { try markOpaque(target, name: name) }
                    return
                }
                removeTree(target)
                state.implied[targetRel] = nil
                state.directories.removeAll()
                if mknod(target.cPath, S_IFCHR | 0o000, 0) != 0 {
                    throw StrataError.system("\(name): cannot create whiteout \(RawName.escaped(targetRel))")
                }
            }
            return
        }
        try ensureParents(parent, state: &state, name: name)
        var opaqueAfter = false
        if overlayWhiteouts, type == strata_AE_IFDIR, let m = FileMeta.of(full(path)), m.isOverlayWhiteout {
            unlink(full(path).cPath)
            opaqueAfter = true
        }
        // Never set a directory's metadata through a symlink at its path: replace the symlink
        // (as Docker does). Other types: libarchive unlinks what is there and creates anew.
        if type == strata_AE_IFDIR, let m = FileMeta.of(full(path)), m.kind == .symlink { unlink(full(path).cPath) }
        state.created.insert(path)
        if type == strata_AE_IFDIR {
            recordDirectory(path, entry, &state)
            // A header replaces the metadata of a directory this layer implied (copied up) so
            // far, xattrs too: libarchive only adds the header's.
            if state.implied[path] != nil { clearXattrs(full(path)) }
        } else {
            state.directoryTimes[path] = nil
            state.directoryModes[path] = nil
        }
        state.implied[path] = nil
        dropUnwantedXattrs(entry)
        // Whatever stood at `path` may be replaced: it is a directory again only if checked again.
        if type != strata_AE_IFDIR, state.directories.remove(path) != nil { state.directories.removeAll() }
        archive_entry_copy_pathname(entry, full(path).cPath)
        if let hardlink {
            try ensureNoSymlinkAbove(hardlink, state: &state, name: name)
            archive_entry_copy_hardlink(entry, full(hardlink).cPath)
            // A hardlink carries no data of its own (writing it would follow a linked symlink).
            archive_entry_set_size(entry, 0)
        }
        try write(entry, disk: disk, path: path, copyData: copyData, name: name)
        if opaqueAfter { try markOpaque(full(path), name: name) }
    }

    private func write(_ entry: OpaquePointer, disk: OpaquePointer, path: String,
                       copyData: ((UnsafeRawBufferPointer, Int64) throws -> Void) throws -> Void, name: String) throws {
        let shown = RawName.escaped(path)
        let rc = archive_write_header(disk, entry)
        if rc < ARCHIVE_WARN {
            let msg = archive_error_string(disk).map { String(cString: $0) } ?? "unknown error"
            let code: StrataError.Code = msg.lowercased().contains("symlink") || msg.contains("..") ? .unsafePath : .io
            if code == .io { throw StrataError.libarchive(disk, .io, "\(name): cannot unpack \"\(shown)\"") }
            throw StrataError(code, "\(name): cannot unpack \"\(shown)\": \(msg)")
        }
        if archive_entry_size(entry) > 0 {
            try copyData { buf, offset in
                let n = archive_write_data_block(disk, buf.baseAddress, buf.count, offset)
                if n < ARCHIVE_WARN {
                    throw StrataError.libarchive(disk, .io, "\(name): cannot write \"\(shown)\"")
                }
            }
        }
        if archive_write_finish_entry(disk) < ARCHIVE_WARN {
            throw StrataError.libarchive(disk, .io, "\(name): cannot finish \"\(shown)\"")
        }
    }

    /// Makes sure every directory above an entry exists. One that is missing is implied by the
    /// layer: it becomes a copy-up of what the lower layers show there, or a plain 0755 root
    /// directory when they show nothing. An overlay whiteout in the way (this layer deleted the
    /// path and now puts something below it) becomes an opaque directory.
    private func ensureParents(_ rel: String, state: inout State, name: String) throws {
        guard !rel.isEmpty else { return }
        if state.directories.contains(rel) { return }
        var prefix = ""
        for c in rel.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + c
            if state.directories.contains(prefix) { continue }
            let path = full(prefix)
            if let m = FileMeta.of(path) {
                if m.kind == .directory { state.directories.insert(prefix); continue }
                if overlayWhiteouts, m.isOverlayWhiteout {
                    unlink(path.cPath)
                    if mkdir(path.cPath, 0o755) != 0 {
                        throw StrataError.system("\(name): cannot create \(RawName.escaped(prefix))")
                    }
                    setNewDirectoryMode(prefix, state: &state)
                    try markOpaque(path, name: name)
                    state.created.insert(prefix)
                    state.directories.insert(prefix)
                    continue
                }
                if m.kind == .symlink {
                    throw StrataError(.unsafePath, "\(name): \"\(RawName.escaped(rel))\" goes through the symlink \"\(RawName.escaped(prefix))\"")
                }
                // A file of this layer in the way: libarchive reports it with the entry.
                return
            }
            if mkdir(path.cPath, 0o755) != 0 {
                throw StrataError.system("\(name): cannot create \(RawName.escaped(prefix))")
            }
            if let lower = hiddenByThisLayer(prefix) ? nil : visibleLower(prefix), let lm = FileMeta.of(lower), lm.kind == .directory {
                try copyUp(from: lower, to: path, rel: prefix, state: &state, name: name)
            } else {
                setNewDirectoryMode(prefix, state: &state)
                if let m = FileMeta.of(path) { state.implied[prefix] = m }
            }
            state.directories.insert(prefix)
        }
    }

    private func recordDirectory(_ rel: String, _ entry: OpaquePointer, _ state: inout State) {
        state.directoryTimes[rel] = timespec(tv_sec: archive_entry_mtime(entry), tv_nsec: archive_entry_mtime_nsec(entry))
        state.directoryModes[rel] = (UInt32(archive_entry_perm(entry)), UInt32(truncatingIfNeeded: archive_entry_gid(entry)))
    }

    /// Removes every xattr of `path` but overlayfs' own.
    private func clearXattrs(_ path: String) {
        var names = [CChar](repeating: 0, count: 65536)
        let c = path.cPath
        let n = llistxattr(c, &names, names.count)
        guard n > 0 else { return }
        for name in names[0..<n].split(separator: 0).map({ String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) })
        where !OverlayXattr.isInternal(name) {
            lremovexattr(c, name)
        }
    }

    /// A PAX record with an empty value deletes the key (POSIX), so an xattr cannot have an
    /// empty value in a layer: Go's archive/tar (Docker, umoci) drops it, and so does strata.
    /// overlayfs' own attributes (`trusted.overlay.*`, `user.overlay.*`, in any spelling
    /// libarchive reads: `SCHILY.xattr.` or `LIBARCHIVE.xattr.`) go too, in every store: the
    /// overlay mount would obey them (``OverlayXattr``). strata's own opaque marks are set
    /// after this, from `.wh..wh..opq`.
    private func dropUnwantedXattrs(_ entry: OpaquePointer) {
        guard archive_entry_xattr_reset(entry) > 0 else { return }
        var kept: [(String, [UInt8])] = []
        var dropped = false
        var xname: UnsafePointer<CChar>?
        var xvalue: UnsafeRawPointer?
        var xsize = 0
        while archive_entry_xattr_next(entry, &xname, &xvalue, &xsize) == ARCHIVE_OK {
            guard let xname else { continue }
            if xsize == 0 || OverlayXattr.isInternal(String(cString: xname)) { dropped = true; continue }
            kept.append((String(cString: xname), xvalue.map { Array(UnsafeRawBufferPointer(start: $0, count: xsize)) } ?? []))
        }
        guard dropped else { return }
        archive_entry_xattr_clear(entry)
        for (n, v) in kept { v.withUnsafeBytes { archive_entry_xattr_add_entry(entry, n, $0.baseAddress, $0.count) } }
    }

    /// A directory made anew: mkdir's rules (0755, root's), with the parent as it stands at this
    /// point of the tar — in a setgid directory it takes the parent's group and the setgid bit.
    /// On disk the parent may still show a setgid bit that libarchive takes away only when it
    /// closes, so the bits are set here, not left to the kernel.
    private func setNewDirectoryMode(_ rel: String, state: inout State) {
        let up = splitPath(rel).parent
        let parentRel = up == "/" ? "" : up
        let parentMode = state.directoryModes[parentRel] ?? FileMeta.of(full(parentRel)).map { ($0.mode, $0.gid) }
        let (mode, gid) = parentMode ?? (0o755, 0)
        let setgid = mode & 0o2000 != 0
        let c = full(rel).cPath
        if asRoot { lchown(c, 0, setgid ? gid : 0) }
        chmod(c, setgid ? 0o2755 : 0o755)
    }

    /// Gives `path` the owner, mode, xattrs and times of `lower` (a directory of a layer below).
    private func copyUp(from lower: String, to path: String, rel: String, state: inout State, name: String) throws {
        guard let lm = FileMeta.of(lower), lm.kind == .directory else { return }
        try TreeCopier().copyMetadata(from: lower, to: path, meta: lm)
        state.implied[rel] = lm
    }

    /// Whether this layer has already hidden the lower layers at `rel`: an ancestor it marked
    /// opaque, or (without overlay whiteouts) a `.wh.` entry of an ancestor or an opaque marker.
    private func hiddenByThisLayer(_ rel: String) -> Bool {
        var dir = ""
        for c in rel.split(separator: "/") {
            let d = full(dir)
            if overlayWhiteouts {
                if isOpaque(d) { return true }
            } else if FileMeta.of(d + "/" + LayerEntry.opaqueName) != nil || FileMeta.of(d + "/" + LayerEntry.whiteoutPrefix + c) != nil {
                return true
            }
            dir += (dir.isEmpty ? "" : "/") + c
        }
        return false
    }

    /// The directory the layers below show at `rel` (`""` is the root), or nil when none does:
    /// the topmost lower that has it, unless a layer above that one deleted it, replaced an
    /// ancestor with something else, or made an ancestor opaque.
    func visibleLower(_ rel: String) -> String? {
        let comps = rel.split(separator: "/").map(String.init)
        for layer in lowers.reversed() {
            var dir = layer
            var found = true
            // An opaque directory on the way (the root included) hides the layers below it.
            var opaque = false
            for (i, c) in comps.enumerated() {
                opaque = opaque || isOpaque(dir) || FileMeta.of(dir + "/" + LayerEntry.opaqueName) != nil
                // Deleted at this level in this layer (either whiteout form)?
                if FileMeta.of(dir + "/" + LayerEntry.whiteoutPrefix + c) != nil { return nil }
                let next = dir + "/" + c
                guard let m = FileMeta.of(next) else {
                    found = false
                    if opaque { return nil }
                    break
                }
                if m.isOverlayWhiteout { return nil }
                if m.kind != .directory { return i == comps.count - 1 ? next : nil }
                dir = next
            }
            if found { return dir }
        }
        return nil
    }

    private func markOpaque(_ dir: String, name: String) throws {
        if !OverlayXattr.markOpaque(path: dir) {
            throw StrataError.system("\(name): cannot mark \(RawName.escaped(String(dir.dropFirst(root.count)))) opaque")
        }
    }

    /// Refuses a path inside the root whose existing directories include a symlink.
    private func ensureNoSymlinkAbove(_ rel: String, state: inout State, name: String) throws {
        var prefix = ""
        for c in rel.split(separator: "/").dropLast() {
            prefix += (prefix.isEmpty ? "" : "/") + c
            if state.directories.contains(prefix) { continue }
            guard let m = FileMeta.of(full(prefix)) else { return }
            if m.kind == .symlink {
                throw StrataError(.unsafePath, "\(name): \"\(RawName.escaped(rel))\" goes through the symlink \"\(RawName.escaped(prefix))\"")
            }
            if m.kind != .directory { return }
            state.directories.insert(prefix)
        }
    }
}

/// Removes a file or a whole tree, names as bytes; no error if it is not there.
package func removeTree(_ path: String) {
    var st = stat()
    let c = path.cPath
    guard lstat(c, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for name in rawDirectoryEntries(path) { removeTree(path + "/" + name) }
        rmdir(c)
    } else {
        unlink(c)
    }
}

extension ArchiveReader {
    /// Walks entries with their raw libarchive entry (for archive_write_disk), the cleaned
    /// path, the cleaned hardlink target, and a function that streams the data blocks. Paths
    /// keep their bytes (``RawName``). The root (`.`, `./`) comes through as `"."`.
    func forEachRawEntry(_ body: (OpaquePointer, String, String?, ((UnsafeRawBufferPointer, Int64) throws -> Void) throws -> Void) throws -> Void) throws {
        while let (entry, raw) = try nextRaw() {
            let path = try ArchivePath.clean(raw.path, in: nameForErrors)
            let hard = try raw.hardlink.map { try ArchivePath.clean($0, in: nameForErrors) }
            try body(entry, path, hard) { sink in
                try self.readDataBlocks(sink)
            }
        }
    }
}
