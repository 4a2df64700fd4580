import CArchive
import Foundation

/// Unpacks a layer tar (plain, gzip or zstd) into a directory, refusing anything that would
/// escape it (law 5): `..`, absolute paths, and writes through symlinks or hardlinks that
/// lead out. OCI whiteouts become overlayfs whiteouts when `overlayWhiteouts` (needs root):
/// `.wh.NAME` a 0/0 character device, `.wh..wh..opq` the `trusted.overlay.opaque` xattr.
/// Otherwise they are kept as the empty `.wh.` files they are.
struct LayerUnpacker {
    let root: String
    let overlayWhiteouts: Bool
    let asRoot: Bool

    init(root: String, overlayWhiteouts: Bool) {
        self.root = root
        self.overlayWhiteouts = overlayWhiteouts
        self.asRoot = geteuid() == 0
    }

    /// Unpacks `layer` (a file) into `root`; `name` is how errors refer to it.
    func unpack(layer: String, name: String) throws {
        let reader = try ArchiveReader(path: layer, name: name)
        guard let disk = archive_write_disk_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        defer { archive_write_free(disk) }
        // No ARCHIVE_EXTRACT_UNLINK: with it libarchive silently replaces a symlink on the
        // way with a directory; without it, a path through a symlink is an error.
        var flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_PERM
            | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR
        if asRoot { flags |= ARCHIVE_EXTRACT_OWNER }
        archive_write_disk_set_options(disk, flags)
        archive_write_disk_set_standard_lookup(disk)
        // Paths this layer wrote: a whiteout only hides what lower layers have (OCI).
        var created = Set<String>()
        try reader.forEachRawEntry { entry, path, hardlink, copyData in
            // Not NSString: its deletingLastPathComponent traps on "." (Foundation on Linux).
            let (parent, base) = splitPath(path)
            if base.hasPrefix(".wh."), overlayWhiteouts {
                try ensureDirectory(parent)
                let parentFull = parent.isEmpty ? root : root + "/" + parent
                if base == ".wh..wh..opq" {
                    try markOpaque(parentFull, name: name)
                } else {
                    let targetRel = (parent.isEmpty ? "" : parent + "/") + String(base.dropFirst(4))
                    let target = root + "/" + targetRel
                    try refuseSymlinkPath(targetRel, name: name)
                    if created.contains(targetRel) {
                        // Deleted and recreated in this layer: a directory hides the lower one.
                        if FileMeta.of(target)?.kind == .directory { try markOpaque(target, name: name) }
                        return
                    }
                    removeTree(target)
                    if mknod(target, S_IFCHR | 0o000, 0) != 0 {
                        throw StrataError(.io, "\(name): cannot create whiteout \(target): \(String(cString: strerror(errno)))")
                    }
                }
                return
            }
            var opaqueAfter = false
            if overlayWhiteouts {
                // A path below a whiteout of this layer: the whiteout becomes an opaque directory.
                var prefix = ""
                for c in parent.split(separator: "/") {
                    prefix += (prefix.isEmpty ? "" : "/") + c
                    if let m = FileMeta.of(root + "/" + prefix), m.isOverlayWhiteout {
                        unlink(root + "/" + prefix)
                        if mkdir(root + "/" + prefix, 0o755) != 0 {
                            throw StrataError(.io, "\(name): cannot create \(prefix): \(String(cString: strerror(errno)))")
                        }
                        try markOpaque(root + "/" + prefix, name: name)
                        created.insert(prefix)
                    }
                }
                if archive_entry_filetype(entry) == strata_AE_IFDIR, let m = FileMeta.of(root + "/" + path), m.isOverlayWhiteout {
                    unlink(root + "/" + path)
                    opaqueAfter = true
                }
            }
            created.insert(path)
            archive_entry_set_pathname_utf8(entry, root + "/" + path)
            if let hardlink {
                try refuseSymlinkPath(hardlink, name: name)
                archive_entry_set_hardlink_utf8(entry, root + "/" + hardlink)
            }
            let rc = archive_write_header(disk, entry)
            if rc < ARCHIVE_WARN {
                let msg = archive_error_string(disk).map { String(cString: $0) } ?? "unknown error"
                let code: StrataError.Code = msg.lowercased().contains("symlink") || msg.contains("..") ? .unsafePath : .io
                throw StrataError(code, "\(name): cannot unpack \"\(path)\": \(msg)")
            }
            if archive_entry_size(entry) > 0 {
                try copyData { buf, offset in
                    let n = archive_write_data_block(disk, buf.baseAddress, buf.count, offset)
                    if n < ARCHIVE_WARN {
                        throw StrataError(.io, "\(name): cannot write \"\(path)\": \(archive_error_string(disk).map { String(cString: $0) } ?? "")")
                    }
                }
            }
            if archive_write_finish_entry(disk) < ARCHIVE_WARN {
                throw StrataError(.io, "\(name): cannot finish \"\(path)\": \(archive_error_string(disk).map { String(cString: $0) } ?? "")")
            }
            if opaqueAfter { try markOpaque(root + "/" + path, name: name) }
        }
    }

    private func markOpaque(_ dir: String, name: String) throws {
        if setxattr(dir, "trusted.overlay.opaque", "y", 1, 0) != 0 {
            throw StrataError(.io, "\(name): cannot mark \(dir.dropFirst(root.count)) opaque: \(String(cString: strerror(errno)))")
        }
    }

    /// Refuses a path inside the root whose existing components include a symlink.
    private func refuseSymlinkPath(_ rel: String, name: String) throws {
        var cur = root
        for c in rel.split(separator: "/").dropLast() {
            cur += "/" + c
            var st = stat()
            if lstat(cur, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
                throw StrataError(.unsafePath, "\(name): \"\(rel)\" goes through the symlink \"\(cur.dropFirst(root.count + 1))\"")
            }
        }
    }

    private func ensureDirectory(_ rel: String) throws {
        guard !rel.isEmpty else { return }
        try refuseSymlinkPath(rel + "/x", name: rel)
        try FileManager.default.createDirectory(atPath: root + "/" + rel, withIntermediateDirectories: true)
    }
}

/// Removes a file or a whole tree; no error if it is not there.
func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        try? FileManager.default.removeItem(atPath: path)
    } else {
        unlink(path)
    }
}

extension ArchiveReader {
    /// Walks entries with their raw libarchive entry (for archive_write_disk), the cleaned
    /// path, the cleaned hardlink target, and a function that streams the data blocks.
    func forEachRawEntry(_ body: (OpaquePointer, String, String?, ((UnsafeRawBufferPointer, Int64) throws -> Void) throws -> Void) throws -> Void) throws {
        while let (entry, raw) = try nextRaw() {
            let path = try ArchivePath.clean(raw.path, in: nameForErrors)
            if path == "." { try skipData(); continue }
            let hard = try raw.hardlink.map { try ArchivePath.clean($0, in: nameForErrors) }
            try body(entry, path, hard) { sink in
                try self.readDataBlocks(sink)
            }
        }
    }
}
