import Foundation
import OCI

/// A streaming tar parser fed with a layer's decompressed bytes by ``StreamDigester``, in
/// the same pass that computes the diffID. It records every entry (ustar prefix, PAX `x`/`g`
/// records for path, linkpath, size, uid and gid, GNU `L`/`K` long names, hardlinks,
/// whiteouts) and hashes each regular file's bytes (XXH3-128) as they stream by. Entries are spooled to
/// a file, so memory does not grow with the layer (law 6).
final class TarIndexer {
    private let spoolPath: String
    private var spool: SpoolWriter?
    private var header = [UInt8](repeating: 0, count: 512)
    private var headerFill = 0
    private enum State {
        case header
        case data(remaining: Int64, padding: Int)
        case meta(remaining: Int64, padding: Int, type: UInt8)
        case done
        case failed(String)
    }
    private var state: State = .header
    private var pending: LayerEntry?
    /// One XXH3-128 state, reset for each regular file.
    private let xxh = XXH3Hasher()
    /// Whether the bytes now streaming belong to a regular file being hashed.
    private var hashing = false
    private var metaBuffer: [UInt8] = []
    private var pax: [String: String] = [:]
    private var paxGlobal: [String: String] = [:]
    private var longName: String?
    private var longLink: String?
    private var entries = 0
    private var totalSize: Int64 = 0
    private var sawBytes = false
    private var zeroBlocks = 0

    /// PAX and GNU long-name records above this are refused (bounded memory).
    static let metaLimit: Int64 = 1 << 20

    init(spoolPath: String) {
        self.spoolPath = spoolPath
    }

    /// Feeds the next decompressed bytes.
    func consume(_ buf: UnsafeRawBufferPointer) {
        guard buf.count > 0 else { return }
        sawBytes = true
        var offset = 0
        while offset < buf.count {
            switch state {
            case .done, .failed:
                return
            case .header:
                let n = min(512 - headerFill, buf.count - offset)
                header.withUnsafeMutableBytes { h in
                    h.baseAddress!.advanced(by: headerFill).copyMemory(from: buf.baseAddress!.advanced(by: offset), byteCount: n)
                }
                headerFill += n
                offset += n
                if headerFill == 512 {
                    headerFill = 0
                    parseHeader()
                }
            case .data(let remaining, let padding):
                if remaining > 0 {
                    let n = Int(min(Int64(buf.count - offset), remaining))
                    if hashing { xxh.update(UnsafeRawBufferPointer(rebasing: buf[offset..<(offset + n)])) }
                    offset += n
                    state = .data(remaining: remaining - Int64(n), padding: padding)
                    if remaining - Int64(n) == 0 { finishEntry() }
                } else {
                    let n = min(buf.count - offset, padding)
                    offset += n
                    state = padding - n == 0 ? .header : .data(remaining: 0, padding: padding - n)
                }
            case .meta(let remaining, let padding, let type):
                if remaining > 0 {
                    let n = Int(min(Int64(buf.count - offset), remaining))
                    metaBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[offset..<(offset + n)]))
                    offset += n
                    state = .meta(remaining: remaining - Int64(n), padding: padding, type: type)
                    if remaining - Int64(n) == 0 { finishMeta(type) }
                } else {
                    let n = min(buf.count - offset, padding)
                    offset += n
                    if padding - n == 0 {
                        if case .meta = state { state = .header }
                    } else {
                        state = .meta(remaining: 0, padding: padding - n, type: type)
                    }
                }
            }
        }
    }

    /// Ends the stream; returns what was indexed.
    func finish() -> LayerIndexSpool {
        var failure: String?
        switch state {
        case .failed(let e): failure = e
        case .done: break
        case .header:
            if headerFill != 0 { failure = "the tar ends inside a header" }
            if !sawBytes { failure = nil }
        case .data(let remaining, _):
            if remaining > 0 { failure = "the tar ends inside an entry" }
            else { finishEntry() }
        case .meta: failure = "the tar ends inside an extended header"
        }
        var path: String?
        var inline: [UInt8]?
        if let s = spool {
            do {
                inline = try s.close()
                if inline == nil { path = spoolPath }
            } catch {
                if failure == nil { failure = "cannot write the index spool" }
            }
        }
        if failure != nil {
            if pathExists(spoolPath) { unlink(spoolPath) }
            path = nil
            inline = nil
        }
        return LayerIndexSpool(path: path, inline: inline, entries: failure == nil ? entries : 0, size: failure == nil ? totalSize : 0,
                               error: failure)
    }

    // MARK: - Headers

    private func fail(_ message: String) {
        state = .failed(message)
        pending = nil
        hashing = false
    }

    private func parseHeader() {
        if header.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            if zeroBlocks >= 2 { state = .done }
            return
        }
        zeroBlocks = 0
        guard checksumOK() else {
            fail(entries == 0 && pax.isEmpty ? "not a tar archive" : "a tar header has a bad checksum")
            return
        }
        let type = header[156]
        guard let size = number(124, 12), size >= 0 else { fail("a tar header has an invalid size"); return }
        let padding = Int((512 - size % 512) % 512)
        switch type {
        case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            guard size <= Self.metaLimit else { fail("a tar extended header is larger than \(Self.metaLimit) bytes"); return }
            metaBuffer.removeAll(keepingCapacity: true)
            if size == 0 { finishMeta(type); state = padding == 0 ? .header : .meta(remaining: 0, padding: padding, type: type) }
            else { state = .meta(remaining: size, padding: padding, type: type) }
            return
        default:
            break
        }
        let ustar = header[257..<262].elementsEqual("ustar".utf8)
        let gnu = header[257..<265].elementsEqual("ustar  \0".utf8)
        var name = longName ?? pax["path"] ?? paxGlobal["path"] ?? {
            let n = field(0, 100)
            if ustar && !gnu {
                let prefix = field(345, 155)
                if !prefix.isEmpty { return prefix + "/" + n }
            }
            return n
        }()
        if let p = pax["path"] { name = p }
        let link = longLink ?? pax["linkpath"] ?? paxGlobal["linkpath"] ?? field(157, 100)
        var entrySize = size
        if let s = pax["size"] ?? paxGlobal["size"], let v = Int64(s), v >= 0 { entrySize = v }
        let mode = UInt32(truncatingIfNeeded: number(100, 8) ?? 0) & 0o7777
        let uid = pax["uid"].flatMap { Int64($0) } ?? number(108, 8) ?? 0
        let gid = pax["gid"].flatMap { Int64($0) } ?? number(116, 8) ?? 0
        pax.removeAll()
        longName = nil
        longLink = nil

        var kind: LayerEntry.Kind
        switch type {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = name.hasSuffix("/") && type == 0 ? .directory : .file
        case UInt8(ascii: "1"): kind = .hardlink
        case UInt8(ascii: "2"): kind = .symlink
        case UInt8(ascii: "3"): kind = .char
        case UInt8(ascii: "4"): kind = .block
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        case UInt8(ascii: "S"): kind = .file
        default: kind = .other
        }
        // Header-only types carry no data whatever their size field says (as Go's archive/tar reads them).
        let headerOnly = [UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "4"),
                          UInt8(ascii: "5"), UInt8(ascii: "6")].contains(type)
        let follows = headerOnly ? 0 : entrySize
        let pad = Int((512 - follows % 512) % 512)
        guard let clean = LayerEntry.clean(name) else {
            // The root itself ("./"): recorded as the path "" when it is a directory (its mode
            // decides how directories it implies are made); never listed as a file.
            if kind == .directory {
                emit(LayerEntry(path: "", kind: .directory, mode: mode, uid: uid, gid: gid, size: 0))
            }
            state = follows == 0 ? .header : .data(remaining: follows, padding: pad)
            hashing = false
            pending = nil
            return
        }
        let linkTarget: String? = kind == .hardlink ? (LayerEntry.clean(link) ?? link) : (kind == .symlink ? link : nil)
        let marker = LayerEntry.marker(for: clean)
        let entry = LayerEntry(path: clean, kind: kind, marker: marker, mode: mode, uid: uid, gid: gid,
                               size: entrySize, linkTarget: linkTarget)
        totalSize += entrySize
        if kind == .file {
            pending = entry
            xxh.reset()
            hashing = true
            if follows == 0 { finishEntry(); state = .header } else { state = .data(remaining: follows, padding: pad) }
        } else {
            pending = nil
            hashing = false
            emit(entry)
            state = follows == 0 ? .header : .data(remaining: follows, padding: pad)
        }
    }

    private func finishEntry() {
        guard var e = pending, hashing else { return }
        e.digest = xxh.digest()
        pending = nil
        hashing = false
        emit(e)
    }

    private func finishMeta(_ type: UInt8) {
        switch type {
        case UInt8(ascii: "L"): longName = cString(metaBuffer)
        case UInt8(ascii: "K"): longLink = cString(metaBuffer)
        case UInt8(ascii: "x"): parsePAX(into: &pax)
        case UInt8(ascii: "g"): parsePAX(into: &paxGlobal)
        default: break
        }
    }

    /// PAX records: "LEN key=value\n", LEN counting the whole record.
    private func parsePAX(into dict: inout [String: String]) {
        var i = 0
        let b = metaBuffer
        while i < b.count {
            var j = i
            var len = 0
            while j < b.count, b[j] >= 48, b[j] <= 57 { len = len * 10 + Int(b[j] - 48); j += 1; if len > b.count { break } }
            guard j < b.count, b[j] == 32, len > 0, i + len <= b.count, len > j - i + 1 else { return }
            let rec = b[(j + 1)..<(i + len)]
            if let eq = rec.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: rec[rec.startIndex..<eq], as: UTF8.self)
                var valueEnd = rec.endIndex
                if valueEnd > eq + 1, b[valueEnd - 1] == 10 { valueEnd -= 1 }
                let value = RawName.decode(b[(eq + 1)..<valueEnd])
                dict[key] = value
            }
            i += len
        }
    }

    private func emit(_ e: LayerEntry) {
        if spool == nil { spool = SpoolWriter(path: spoolPath) }
        do {
            try spool?.append(e)
            entries += 1
        } catch {
            fail("cannot write the index spool: \(error)")
        }
    }

    private func checksumOK() -> Bool {
        guard let want = number(148, 8) else { return false }
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (i, b) in header.enumerated() {
            let v: UInt8 = (i >= 148 && i < 156) ? 32 : b
            unsigned += Int64(v)
            signed += Int64(Int8(bitPattern: v))
        }
        return want == unsigned || want == signed
    }

    private func field(_ at: Int, _ len: Int) -> String {
        let slice = header[at..<(at + len)]
        let end = slice.firstIndex(of: 0) ?? slice.endIndex
        return RawName.decode(header[at..<end])
    }

    private func cString(_ b: [UInt8]) -> String {
        let end = b.firstIndex(of: 0) ?? b.endIndex
        return RawName.decode(b[..<end])
    }

    /// An octal field (spaces/NULs around it), or GNU base-256 when the high bit is set.
    private func number(_ at: Int, _ len: Int) -> Int64? {
        let f = header[at..<(at + len)]
        if let first = f.first, first & 0x80 != 0 {
            var v: Int64 = Int64(first & 0x7f)
            for b in f.dropFirst() {
                guard v <= (Int64.max >> 8) else { return nil }
                v = (v << 8) | Int64(b)
            }
            return v
        }
        var v: Int64 = 0
        var seen = false
        for b in f {
            if b == 0 || b == 32 { if seen { break } else { continue } }
            guard b >= 48, b <= 55 else { return nil }
            guard v <= (Int64.max >> 3) else { return nil }
            v = v * 8 + Int64(b - 48)
            seen = true
        }
        return v
    }
}

/// Whether something exists at `path`.
func pathExists(_ path: String) -> Bool { access(path, F_OK) == 0 }
