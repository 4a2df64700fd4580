import CArchive
import Foundation
import OCI

/// Writes a reproducible tar stream through libarchive: PAX (restricted), fixed mtime,
/// uid/gid 0, no padding past the end-of-archive blocks.
final class ArchiveWriter {
    private let a: OpaquePointer
    private let name: String
    private let locale: UnsafeMutableRawPointer?
    private var closed = false
    private let reproducibleTimes: Bool
    private let clampTime: Int64?
    private var disk: OpaquePointer?
    /// Set when writing through direct I/O (finished at ``close()``).
    private var direct: DirectWriter?
    /// Set when the bytes go to a sink of ours (a response body, a direct writer) rather
    /// than to a descriptor: libarchive's write callback reaches it through its client data.
    private var target: WriteTarget?

    /// Where libarchive's write callback sends the bytes, and the first error that stopped
    /// them (rethrown in place of libarchive's own message).
    private final class WriteTarget {
        let write: (UnsafeRawBufferPointer) throws -> Void
        var error: Error?
        init(_ write: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.write = write }
    }

    /// Opens the archive onto `target`; libarchive's result.
    private static func open(_ a: OpaquePointer, _ target: WriteTarget) -> Int32 {
        archive_write_open(a, Unmanaged.passUnretained(target).toOpaque(), nil, { _, ctx, buf, len in
            guard let ctx, let buf else { return 0 }
            let target = Unmanaged<WriteTarget>.fromOpaque(ctx).takeUnretainedValue()
            do {
                try target.write(UnsafeRawBufferPointer(start: buf, count: len))
                return la_ssize_t(len)
            } catch {
                target.error = error
                return -1
            }
        }, nil)
    }

    /// Writes to `sink` (a response body), unblocked: libarchive hands every write straight
    /// to the sink without copying it into blocks of its own first; the bytes are the same as
    /// a file's. `name` is how errors refer to the output; `reproducibleTimes` as for a file.
    init(sink: any ByteSink, name: String, reproducibleTimes: Bool = true) throws {
        self.reproducibleTimes = reproducibleTimes
        clampTime = nil
        guard let a = archive_write_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        self.a = a
        self.name = name
        locale = strata_locale_enter()
        archive_write_set_format_pax_restricted(a)
        archive_write_set_bytes_per_block(a, 0)
        let target = WriteTarget { try sink.write($0) }
        self.target = target
        if Self.open(a, target) != ARCHIVE_OK {
            let e = StrataError.libarchive(a, .io, "cannot write \(name)")
            closed = true
            throw e
        }
    }

    /// Writes to an open file descriptor (the caller owns it). With `reproducibleTimes`,
    /// entries get mtime 0 and owner 0 (save); without, files keep their own (commit).
    /// With `clampTime` (SOURCE_DATE_EPOCH), no entry's mtime is later than it and
    /// atime/ctime are left out, so the same files give the same bytes.
    ///
    /// With `direct`, a regular file is written with O_DIRECT through a ``DirectWriter``
    /// (when its filesystem allows): a large save then costs the device's time, not a fresh
    /// page-cache page per 4 KiB, which on a VM can be slower than the disk.
    init(fd: Int32, name: String, reproducibleTimes: Bool = true, clampTime: Int64? = nil, direct: Bool = false) throws {
        self.reproducibleTimes = reproducibleTimes
        self.clampTime = clampTime
        guard let a = archive_write_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        self.a = a
        self.name = name
        locale = strata_locale_enter()
        archive_write_set_format_pax_restricted(a)
        archive_write_set_bytes_per_block(a, 1 << 20)
        archive_write_set_bytes_in_last_block(a, 1)
        if direct, let writer = DirectWriter.make(fd: fd, path: name) {
            self.direct = writer
            let target = WriteTarget { try writer.write($0) }
            self.target = target
            if Self.open(a, target) != ARCHIVE_OK {
                let e = StrataError.libarchive(a, .io, "cannot write \(name)")
                closed = true
                throw e
            }
            return
        }
        if archive_write_open_fd(a, fd) != ARCHIVE_OK {
            let e = StrataError.libarchive(a, .io, "cannot write \(name)")
            closed = true
            throw e
        }
    }

    deinit {
        if !closed { archive_write_close(a) }
        archive_write_free(a)
        if let disk { archive_read_free(disk) }
        strata_locale_restore(locale)
    }

    private func header(_ path: String, type: UInt32, perm: UInt32, size: Int64) throws {
        guard let e = archive_entry_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        defer { archive_entry_free(e) }
        archive_entry_copy_pathname(e, path.cPath)
        archive_entry_set_filetype(e, type)
        archive_entry_set_perm(e, perm)
        archive_entry_set_size(e, size)
        archive_entry_set_mtime(e, reproducibleTimes ? 0 : clampTime.map { time_t($0) } ?? time(nil), 0)
        archive_entry_set_uid(e, 0)
        archive_entry_set_gid(e, 0)
        if archive_write_header(a, e) < ARCHIVE_WARN {  // WARN: a name that is not UTF-8 went out as hdrcharset=BINARY
            throw StrataError.libarchive(a, .io, "cannot write \(RawName.escaped(path)) into \(name)")
        }
    }

    func addDirectory(_ path: String) throws {
        try header(path, type: strata_AE_IFDIR, perm: 0o755, size: 0)
    }

    func addFile(_ path: String, data: Data) throws {
        try header(path, type: strata_AE_IFREG, perm: 0o644, size: Int64(data.count))
        try data.withUnsafeBytes { try write($0, path: path) }
    }

    /// Streams a file of known size into the archive.
    func addFile(_ path: String, size: Int64, from reader: FileReader) throws {
        try header(path, type: strata_AE_IFREG, perm: 0o644, size: size)
        var written: Int64 = 0
        try reader.forEachChunk(size: 1 << 20) { chunk in
            guard written + Int64(chunk.count) <= size else {
                throw StrataError(.sizeMismatch, "\(reader.path) grew while being written into \(name)")
            }
            try write(chunk, path: path)
            written += Int64(chunk.count)
        }
        guard written == size else {
            throw StrataError(.sizeMismatch, "\(reader.path) is \(written) bytes, expected \(size)")
        }
    }

    private func write(_ buf: UnsafeRawBufferPointer, path: String) throws {
        guard let base = buf.baseAddress, buf.count > 0 else { return }
        var off = 0
        while off < buf.count {
            let n = archive_write_data(a, base + off, buf.count - off)
            if n < 0 {
                if let e = target?.error { throw e }
                throw StrataError.libarchive(a, .io, "cannot write \(RawName.escaped(path)) into \(name)")
            }
            off += n
        }
    }

    /// An empty OCI whiteout file (`.wh.NAME` or `.wh..wh..opq`).
    func addWhiteout(_ path: String) throws {
        try header(path, type: strata_AE_IFREG, perm: 0o644, size: 0)
    }

    /// Adds a file, directory, symlink, hardlink or device from disk with its metadata
    /// (owner, mode, times, xattrs except overlayfs' own), named `rel` in the archive.
    func addFromDisk(_ full: String, as rel: String, meta: FileMeta, links: inout [UInt64: String]) throws {
        if disk == nil {
            disk = archive_read_disk_new()
            if let disk { archive_read_disk_set_standard_lookup(disk) }
        }
        guard let disk, let e = archive_entry_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        defer { archive_entry_free(e) }
        archive_entry_copy_sourcepath(e, full.cPath)
        if archive_read_disk_entry_from_file(disk, e, -1, nil) != ARCHIVE_OK {
            throw StrataError.libarchive(disk, .io, "cannot read \(full)")
        }
        // Names are bytes (law 9): the multibyte form is the exact bytes; libarchive's PAX writer
        // marks a name that is not UTF-8 with hdrcharset=BINARY.
        archive_entry_copy_pathname(e, (meta.kind == .directory ? rel + "/" : rel).cPath)
        if let clampTime {
            archive_entry_set_mtime(e, time_t(min(Int64(archive_entry_mtime(e)), clampTime)), 0)
            archive_entry_unset_atime(e)
            archive_entry_unset_ctime(e)
            archive_entry_unset_birthtime(e)
        }
        // Keep user xattrs and capabilities; overlayfs' bookkeeping is not content.
        var kept: [(String, [UInt8])] = []
        archive_entry_xattr_reset(e)
        var xname: UnsafePointer<CChar>?
        var xvalue: UnsafeRawPointer?
        var xsize = 0
        while archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK {
            guard let xname else { continue }
            let n = String(cString: xname)
            if OverlayXattr.isInternal(n) { continue }
            kept.append((n, xvalue.map { Array(UnsafeRawBufferPointer(start: $0, count: xsize)) } ?? []))
        }
        archive_entry_xattr_clear(e)
        for (n, v) in kept { v.withUnsafeBytes { archive_entry_xattr_add_entry(e, n, $0.baseAddress, $0.count) } }
        var isLink = false
        if meta.kind == .file {
            if meta.nlink > 1 {
                if let first = links[meta.inode] {
                    archive_entry_copy_hardlink(e, first.cPath)
                    archive_entry_set_size(e, 0)
                    isLink = true
                } else {
                    links[meta.inode] = rel
                }
            }
        }
        if archive_write_header(a, e) < ARCHIVE_WARN {  // WARN: a name that is not UTF-8 went out as hdrcharset=BINARY
            throw StrataError.libarchive(a, .io, "cannot write \(RawName.escaped(rel)) into \(name)")
        }
        if meta.kind == .file, !isLink, meta.size > 0 {
            try FileReader(path: full, what: rel).forEachChunk { try write($0, path: rel) }
        }
    }

    func close() throws {
        closed = true
        if archive_write_close(a) != ARCHIVE_OK {
            if let e = target?.error { throw e }
            throw StrataError.libarchive(a, .io, "cannot finish \(name)")
        }
        try direct?.finish()
    }
}
