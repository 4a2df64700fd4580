import Foundation

/// What indexing one layer produced: a spool file of entries, read back when the rows are
/// inserted.
struct LayerIndexSpool: Sendable {
    /// The spool file (``LayerIndexSpoolReader`` reads it); absent when there were no entries
    /// or when they fit in ``inline``.
    var path: String?
    /// The spooled records of a small layer (under 64 KiB of them), kept in memory: most
    /// layers never touch the disk for their index.
    var inline: [UInt8]? = nil
    var entries: Int
    /// Sum of the header sizes of every entry (dive's layer size).
    var size: Int64
    /// Why the bytes are not a readable tar; `nil` when they are.
    var error: String?
}

/// Appends entries in a compact binary form: in memory up to 64 KiB, then to a spool file,
/// 64 KiB at a time (law 6). A file's XXH3-128 digest is stored as its 16 raw bytes.
final class SpoolWriter {
    private var fd: Int32 = -1
    private let path: String
    private var buffer: [UInt8] = []

    init(path: String) {
        self.path = path
        buffer.reserveCapacity(1 << 12)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func append(_ e: LayerEntry) throws {
        putString(e.path)
        buffer.append(e.kind.rawValue.utf8.first ?? UInt8(ascii: "o"))
        buffer.append(UInt8(e.marker.rawValue))
        put(UInt64(e.mode))
        put(UInt64(bitPattern: e.uid))
        put(UInt64(bitPattern: e.gid))
        put(UInt64(bitPattern: e.size))
        if let l = e.linkTarget { buffer.append(1); putString(l) } else { buffer.append(0) }
        if let d = e.digest { buffer.append(1); buffer.append(contentsOf: Data(hex: d.encoded)) } else { buffer.append(0) }
        if buffer.count >= 1 << 16 { try flush() }
    }

    /// Ends the spool: the bytes when they never left memory, else nil (they are in the file).
    func close() throws -> [UInt8]? {
        if fd < 0 { return buffer }
        try flush()
        Glibc.close(fd)
        fd = -1
        return nil
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        if fd < 0 {
            fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw StrataError.system("cannot create \(path)") }
        }
        try buffer.withUnsafeBytes { try writeAll(fd: fd, $0, path: path) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func put(_ v: UInt64) {
        var x = v.littleEndian
        withUnsafeBytes(of: &x) { buffer.append(contentsOf: $0) }
    }

    private func putString(_ s: String) {
        let u = Array(s.utf8)
        put(UInt64(u.count))
        buffer.append(contentsOf: u)
    }
}

/// Reads back what ``SpoolWriter`` wrote, entry by entry.
final class LayerIndexSpoolReader {
    /// One record as the insert binds it.
    struct Row {
        var path: String
        var kind: String
        var marker: Int
        var mode: Int64
        var uid: Int64
        var gid: Int64
        var size: Int64
        var link: String?
        var digest: Data?
    }

    private let reader: FileReader?
    private var buf: [UInt8] = []
    private var pos = 0
    private var eof = false

    init(_ spool: LayerIndexSpool) throws {
        if let inline = spool.inline {
            reader = nil
            buf = inline
            eof = true
        } else if let path = spool.path {
            reader = try FileReader(path: path, what: "the index spool")
        } else {
            reader = nil
            eof = true
        }
    }

    func forEach(_ body: (LayerEntry) throws -> Void) throws {
        while let r = try nextRow() {
            let digest = r.digest.flatMap { OCI.Digest.xxh128(raw: $0) }
            try body(LayerEntry(path: r.path, kind: LayerEntry.Kind(rawValue: r.kind) ?? .other,
                                marker: LayerEntry.Marker(rawValue: r.marker) ?? .none, mode: UInt32(truncatingIfNeeded: r.mode),
                                uid: r.uid, gid: r.gid, size: r.size, linkTarget: r.link, digest: digest))
        }
    }

    func forEachRow(_ body: (Row) throws -> Void) throws {
        while let r = try nextRow() { try body(r) }
    }

    private func ensure(_ n: Int) throws -> Bool {
        while buf.count - pos < n {
            guard !eof, let reader else { return false }
            if pos > 0 { buf.removeFirst(pos); pos = 0 }
            var chunk = [UInt8](repeating: 0, count: max(1 << 16, n))
            let got = try chunk.withUnsafeMutableBytes { try reader.read(into: $0) }
            if got == 0 { eof = true } else { buf.append(contentsOf: chunk[0..<got]) }
        }
        return true
    }

    private func u64() throws -> UInt64 {
        guard try ensure(8) else { throw StrataError(.corruptData, "the index spool is truncated") }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(buf[pos + i]) << (8 * UInt64(i)) }
        pos += 8
        return v
    }

    private func byte() throws -> UInt8 {
        guard try ensure(1) else { throw StrataError(.corruptData, "the index spool is truncated") }
        defer { pos += 1 }
        return buf[pos]
    }

    private func bytes(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n < 1 << 24, try ensure(n) else { throw StrataError(.corruptData, "the index spool is truncated") }
        defer { pos += n }
        return buf[pos..<(pos + n)]
    }

    private func string() throws -> String {
        let n = try u64()
        return String(decoding: try bytes(Int(clamping: n)), as: UTF8.self)
    }

    func nextRow() throws -> Row? {
        guard try ensure(1) else { return nil }
        let path = try string()
        let kind = String(UnicodeScalar(try byte()))
        let marker = Int(try byte())
        let mode = Int64(bitPattern: try u64())
        let uid = Int64(bitPattern: try u64())
        let gid = Int64(bitPattern: try u64())
        let size = Int64(bitPattern: try u64())
        let link: String? = try byte() == 1 ? try string() : nil
        let digest: Data? = try byte() == 1 ? Data(try bytes(16)) : nil
        return Row(path: path, kind: kind, marker: marker, mode: mode, uid: uid, gid: gid, size: size, link: link, digest: digest)
    }
}
