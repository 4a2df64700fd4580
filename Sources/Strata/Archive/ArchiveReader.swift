import CArchive
import Foundation
import OCI

/// One header read from a tar stream.
struct ArchiveEntry: Sendable {
    enum Kind: Sendable { case file, directory, symlink, hardlink, other }
    /// The path as stored, cleaned (see ``ArchivePath/clean(_:)``).
    var path: String
    var kind: Kind
    var size: Int64
    /// Symlink or hardlink target, as stored.
    var linkTarget: String?
    /// Where the data starts in the input, when the input is an uncompressed file and the
    /// entry is stored contiguously (not sparse); nil otherwise.
    var dataOffset: Int64? = nil
}

/// Sequential reading of a tar stream (plain, gzip, zstd, xz, bzip2 as a whole) through libarchive.
final class ArchiveReader {
    private let a: OpaquePointer
    private let name: String
    private let locale: UnsafeMutableRawPointer?
    private let path0: String
    private var checkedFilter = false
    private var uncompressedFile = false
    /// Set when reading from a ``ByteStream``: libarchive's read callback reaches it.
    private var input: StreamInput?

    /// What libarchive's read callback reaches through its client-data pointer.
    private final class StreamInput {
        let stream: any ByteStream
        /// Why the stream failed (it ended early): reported instead of libarchive's words.
        var error: (any Error)?
        init(_ stream: any ByteStream) { self.stream = stream }
    }

    /// Opens `path`; `name` is how errors refer to it. With `emptyIsArchive`, content that
    /// is empty once decompressed (a 0-byte layer, gzip of nothing) reads as a tar with no
    /// entries, as Go's tar reader takes it (dockerd, podman); otherwise it is not a tar.
    init(path: String, name: String, emptyIsArchive: Bool = false) throws {
        guard let a = archive_read_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        self.a = a
        self.name = name
        self.path0 = path
        locale = strata_locale_enter()
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        archive_read_support_format_gnutar(a)
        if emptyIsArchive { archive_read_support_format_empty(a) }
        if archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK {
            let msg = Self.message(a)
            // deinit frees the archive and restores the locale.
            if access(path, R_OK) != 0 {
                throw StrataError.system("cannot open \(name)")
            }
            let e = archive_errno(a)
            if e == EIO || e == ENXIO { throw StrataError.system("cannot read \(path) (\(name))", errno: e) }
            if msg.lowercased().contains("unrecognized archive format") {
                throw StrataError(.unsupportedFormat, "\(name) is not a tar archive (plain, gzip or zstd)")
            }
            throw StrataError(.corruptData, "cannot read \(name): \(msg)")
        }
    }

    /// Reads a tar that arrives through `stream` (a request body), in order, without a file
    /// in between; `name` is how errors refer to it. Blocks while the stream waits.
    init(stream: any ByteStream, name: String) throws {
        guard let a = archive_read_new() else { throw StrataError(.internalError, "libarchive: out of memory") }
        self.a = a
        self.name = name
        self.path0 = ""
        locale = strata_locale_enter()
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        archive_read_support_format_gnutar(a)
        let input = StreamInput(stream)
        self.input = input
        let rc = archive_read_open(a, Unmanaged.passUnretained(input).toOpaque(), nil, { _, ctx, out in
            guard let ctx, let out else { return -1 }
            let input = Unmanaged<StreamInput>.fromOpaque(ctx).takeUnretainedValue()
            do {
                // An empty piece would read as the end: skip to the next one.
                while let piece = try input.stream.next() {
                    if piece.count > 0, let base = piece.baseAddress {
                        out.pointee = base
                        return la_ssize_t(piece.count)
                    }
                }
                return 0
            } catch {
                input.error = error
                return -1
            }
        }, nil)
        if rc != ARCHIVE_OK {
            if let e = input.error { throw e }
            if Self.message(a).lowercased().contains("unrecognized archive format") {
                throw StrataError(.unsupportedFormat, "\(name) is not a tar archive (plain, gzip or zstd)")
            }
            throw StrataError(.corruptData, "cannot read \(name): \(Self.message(a))")
        }
    }

    deinit {
        archive_read_free(a)
        strata_locale_restore(locale)
    }

    private static func message(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    private func fail(_ what: String) -> any Error {
        if let e = input?.error { return e }  // the stream's own failure (it ended early)
        let msg = Self.message(a)
        let lower = msg.lowercased()
        if lower.contains("unrecognized archive format") {
            return StrataError(.unsupportedFormat, "\(name) is not a tar archive (plain, gzip or zstd)")
        }
        // A read that failed underneath (EIO from the device) is not corruption: say which file.
        let e = archive_errno(a)
        if e == EIO || e == ENXIO { return StrataError.system("cannot read \(path0) (\(name))", errno: e) }
        return StrataError(.corruptData, "\(name) is corrupt or truncated (\(what): \(msg))")
    }

    /// The next entry header, or nil at the end.
    func next() throws -> ArchiveEntry? {
        var entry: OpaquePointer?
        let rc = archive_read_next_header(a, &entry)
        if rc == ARCHIVE_EOF { return nil }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else { throw fail("reading a header") }
        // The header's own bytes (law 9): in the C.UTF-8 locale the multibyte form is what
        // the tar holds; the UTF-8 form is NULL for a name that is not UTF-8.
        guard let rawPath = archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry) else {
            throw StrataError(.corruptData, "\(name) has an entry without a readable path")
        }
        let path = try ArchivePath.clean(RawName.decode(cString: rawPath), in: name)
        let type = archive_entry_filetype(entry)
        var kind: ArchiveEntry.Kind
        var target: String?
        if let hl = archive_entry_hardlink(entry) ?? archive_entry_hardlink_utf8(entry) {
            kind = .hardlink
            target = RawName.decode(cString: hl)
        } else if type == strata_AE_IFREG {
            kind = .file
        } else if type == strata_AE_IFDIR {
            kind = .directory
        } else if type == strata_AE_IFLNK {
            kind = .symlink
            target = (archive_entry_symlink(entry) ?? archive_entry_symlink_utf8(entry)).map { RawName.decode(cString: $0) }
        } else {
            kind = .other
        }
        var e = ArchiveEntry(path: path, kind: kind, size: archive_entry_size(entry), linkTarget: target)
        if !checkedFilter {
            checkedFilter = true
            var st = stat()
            uncompressedFile = input == nil && archive_filter_count(a) == 1 && archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE
                && stat(path0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        }
        if uncompressedFile, kind == .file, archive_entry_sparse_count(entry) == 0 {
            e.dataOffset = archive_filter_bytes(a, 0)
        }
        return e
    }

    /// Streams the current entry's data to `body`, in order, filling sparse holes with zeros.
    func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var offset: Int64 = 0
        var zeros: [UInt8] = []
        try readDataBlocks { buf, blockOffset in
            if blockOffset > offset {
                if zeros.isEmpty { zeros = [UInt8](repeating: 0, count: 1 << 16) }
                var gap = blockOffset - offset
                while gap > 0 {
                    let n = Int(min(gap, Int64(zeros.count)))
                    try zeros.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    gap -= Int64(n)
                }
            }
            try body(buf)
            offset = blockOffset + Int64(buf.count)
        }
    }

    /// The next header as libarchive's entry plus its raw path and hardlink target.
    func nextRaw() throws -> (OpaquePointer, (path: String, hardlink: String?))? {
        var entry: OpaquePointer?
        let rc = archive_read_next_header(a, &entry)
        if rc == ARCHIVE_EOF { return nil }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else { throw fail("reading a header") }
        guard let p = archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry) else {
            throw StrataError(.corruptData, "\(name) has an entry without a readable path")
        }
        let hl = (archive_entry_hardlink(entry) ?? archive_entry_hardlink_utf8(entry)).map { RawName.decode(cString: $0) }
        return (entry, (RawName.decode(cString: p), hl))
    }

    /// Streams the current entry's data blocks with their offsets (sparse files keep holes).
    func readDataBlocks(_ sink: (UnsafeRawBufferPointer, Int64) throws -> Void) throws {
        while true {
            var buf: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let rc = archive_read_data_block(a, &buf, &size, &offset)
            if rc == ARCHIVE_EOF { return }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else { throw fail("reading data") }
            if size > 0, let buf { try sink(UnsafeRawBufferPointer(start: buf, count: size), offset) }
        }
    }

    var nameForErrors: String { name }

    /// Skips the current entry's data.
    func skipData() throws {
        if archive_read_data_skip(a) != ARCHIVE_OK { throw fail("skipping data") }
    }
}

/// Path hygiene for anything that comes from an archive (law 5).
enum ArchivePath {
    /// Removes `./` and duplicate slashes; refuses absolute paths and `..`.
    static func clean(_ raw: String, in name: String) throws -> String {
        if raw.hasPrefix("/") {
            throw StrataError(.unsafePath, "unsafe path \"\(Digest.clip(raw))\" in \(name): absolute paths are not allowed")
        }
        var parts: [Substring] = []
        for c in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                throw StrataError(.unsafePath, "unsafe path \"\(Digest.clip(raw))\" in \(name): \"..\" is not allowed")
            }
            parts.append(c)
        }
        if raw.utf8.contains(0) {
            throw StrataError(.unsafePath, "unsafe path in \(name): NUL byte")
        }
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// Resolves a link target relative to the directory of `from`, staying inside the archive root.
    static func resolve(_ target: String, from: String, in name: String) throws -> String {
        if target.hasPrefix("/") {
            throw StrataError(.unsafePath, "unsafe link \"\(from)\" -> \"\(Digest.clip(target))\" in \(name): absolute target")
        }
        var parts = from.split(separator: "/").dropLast().map(String.init)
        for c in target.split(separator: "/") {
            if c == "." { continue }
            if c == ".." {
                guard !parts.isEmpty else {
                    throw StrataError(.unsafePath, "unsafe link \"\(from)\" -> \"\(Digest.clip(target))\" in \(name): points outside the archive")
                }
                parts.removeLast()
                continue
            }
            parts.append(String(c))
        }
        return parts.joined(separator: "/")
    }
}
