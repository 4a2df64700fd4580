import CArchive
import Foundation

/// Writes a reproducible tar stream through libarchive: PAX (restricted), fixed mtime,
/// uid/gid 0, no padding past the end-of-archive blocks.
final class ArchiveWriter {
    private let a: OpaquePointer
    private let name: String
    private let locale: UnsafeMutableRawPointer?
    private var closed = false

    /// Writes to an open file descriptor (the caller owns it).
    init(fd: Int32, name: String) throws {
        guard let a = archive_write_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        self.a = a
        self.name = name
        locale = strata_locale_enter()
        archive_write_set_format_pax_restricted(a)
        archive_write_set_bytes_per_block(a, 1 << 20)
        archive_write_set_bytes_in_last_block(a, 1)
        if archive_write_open_fd(a, fd) != ARCHIVE_OK {
            let msg = Self.message(a)
            closed = true
            throw StrataError(.io, "cannot write \(name): \(msg)")
        }
    }

    deinit {
        if !closed { archive_write_close(a) }
        archive_write_free(a)
        strata_locale_restore(locale)
    }

    private static func message(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    private func header(_ path: String, type: UInt32, perm: UInt32, size: Int64) throws {
        guard let e = archive_entry_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        defer { archive_entry_free(e) }
        archive_entry_set_pathname_utf8(e, path)
        archive_entry_set_filetype(e, type)
        archive_entry_set_perm(e, perm)
        archive_entry_set_size(e, size)
        archive_entry_set_mtime(e, 0, 0)
        archive_entry_set_uid(e, 0)
        archive_entry_set_gid(e, 0)
        if archive_write_header(a, e) != ARCHIVE_OK {
            throw StrataError(.io, "cannot write \(path) into \(name): \(Self.message(a))")
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
            if n < 0 { throw StrataError(.io, "cannot write \(path) into \(name): \(Self.message(a))") }
            off += n
        }
    }

    func close() throws {
        closed = true
        if archive_write_close(a) != ARCHIVE_OK {
            throw StrataError(.io, "cannot finish \(name): \(Self.message(a))")
        }
    }
}
