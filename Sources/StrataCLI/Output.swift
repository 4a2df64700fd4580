import ArgumentParser
import CArchive
import Foundation
import Strata

/// `--format` of listings: a Docker-style table, or JSON for scripts.
enum TableFormat: String, ExpressibleByArgument, CaseIterable { case table, json }

/// `--format` of reports: one line of text, or JSON for scripts.
enum TextFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

/// Printing helpers that match Docker's output.
enum Output {
    /// True while the CLI runs as the `strata` process (``StrataCommand/runAsProcess(arguments:)``),
    /// which ends when the command does.
    @TaskLocal static var endsProcess = false

    /// Called when a listing has written its output. In the `strata` process it exits 0 at
    /// once, keeping `results` alive: releasing 10,000 image summaries one object at a time
    /// is a tenth of `strata images`, and the process is ending anyway (the store needs no
    /// close: SQLite recovers from any exit). An in-process caller of
    /// ``StrataCommand/main(arguments:)`` gets a normal return.
    static func endListing(keeping results: some Any) {
        guard endsProcess else { return }
        withExtendedLifetime(results) {
            fflush(nil)  // every C stream: print writes through stdout
            // No exit handlers either: nothing the CLI opened needs one.
            Glibc._exit(0)
        }
    }

    /// Writes bytes to standard output after whatever `print` has buffered.
    static func writeStandardOutput(_ bytes: [UInt8]) {
        fflush(nil)
        bytes.withUnsafeBytes { b in
            var at = 0
            while at < b.count {
                let n = Glibc.write(1, b.baseAddress! + at, b.count - at)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return }  // a closed pipe: nothing more can be written
                at += n
            }
        }
    }

    static func error(_ message: String) {
        let oneLine = message.replacingOccurrences(of: "\n", with: " ")
        FileHandle.standardError.write(Data("error: \(oneLine)\n".utf8))
    }

    /// Columns as Docker's tabwriter lays them out (min width 10, padding 3). Widths count
    /// Unicode scalars, as Go's tabwriter counts runes.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var t = Table(header, rows: rows.count)
        for r in rows {
            for c in r { t.add(c) }
            t.endRow()
        }
        return t.render()
    }

    /// `repo:tag` strings as (repository, tag) pairs; an untagged image is one `<none>` row.
    static func splitTags(_ tags: [String]) -> [(String, String)] {
        var pairs: [(String, String)] = []
        forEachSplitTag(tags) { pairs.append(($0, $1)) }
        return pairs
    }

    /// ``splitTags(_:)`` without an array: `body` gets each (repository, tag) pair.
    static func forEachSplitTag(_ tags: [String], _ body: (String, String) -> Void) {
        if tags.isEmpty { return body("<none>", "<none>") }
        for t in tags {
            // On the UTF-8 view: a listing splits every tag.
            let u = t.utf8
            guard let c = u.lastIndex(of: UInt8(ascii: ":")), !u[u.index(after: c)...].contains(UInt8(ascii: "/")) else {
                body(t, "<none>")
                continue
            }
            body(String(t[..<c]), String(t[u.index(after: c)...]))
        }
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, enc in
            var c = enc.singleValueContainer()
            try c.encode(RFC3339.format(date))
        }
        // Names that are not UTF-8 travel as \udcXX escapes (RawName, law 9).
        return String(decoding: RawName.jsonSurrogateEscapes(Array(try e.encode(value))), as: UTF8.self)
    }

    static func jsonObject(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: RawName.jsonSurrogateEscapes(Array(data)), as: UTF8.self)
    }
}

/// Docker's human-readable units (go-units).
enum Units {
    /// Decimal sizes with three significant digits: `4.26MB`, `0B`.
    private static let sizeUnits = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]

    static func size(_ bytes: Int64) -> String {
        var v = Double(bytes)
        let units = sizeUnits
        var i = 0
        while v >= 1000, i < units.count - 1 {
            v /= 1000
            i += 1
        }
        // C's %.3g straight from libc: Foundation's String(format:) costs ~3 µs a call, which
        // a 10,000-image listing pays 10,000 times.
        let text = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buf -> String in
            let n = Int(strata_format_3g(v, buf.baseAddress!, 32))
            return String(decoding: UnsafeRawBufferPointer(start: buf.baseAddress!, count: max(0, min(n, 31))), as: UTF8.self)
        }
        return text + units[i]
    }

    /// `2 weeks`, `About an hour`, as go-units' HumanDuration (``HumanDuration``).
    static func duration(_ seconds: Double) -> String { HumanDuration.text(seconds) }

    static func ago(_ date: Date?, now: Date = Date()) -> String {
        guard let date else { return "N/A" }
        return duration(now.timeIntervalSince(date)) + " ago"
    }

    /// ``ago(_:now:)`` for a whole listing: a listing of thousands of images has a few
    /// dozen distinct texts, each made once.
    struct Ago {
        let now: Date
        private var texts: [Int: String] = [:]

        init(now: Date = Date()) { self.now = now }

        mutating func callAsFunction(_ date: Date?) -> String {
            guard let date else { return "N/A" }
            let parts = HumanDuration.parts(now.timeIntervalSince(date))
            let key = parts.unit.rawValue << 48 | (parts.count & 0xFFFF_FFFF_FFFF)
            if let t = texts[key] { return t }
            let t = HumanDuration.text(parts) + " ago"
            texts[key] = t
            return t
        }
    }

    /// A progress bar as Docker draws it: `[=====>      ]`, full when `total` is 0.
    static func bar(_ done: Int64, of total: Int64, width: Int = 30) -> String {
        let filled = total > 0 ? Int(Double(width) * Double(min(done, total)) / Double(total)) : width
        if filled >= width { return "[" + String(repeating: "=", count: width) + "]" }
        return "[" + String(repeating: "=", count: filled) + ">" + String(repeating: " ", count: width - filled - 1) + "]"
    }

    /// Cuts `s` to `width` columns with a trailing `…`, as the docker CLI's
    /// `formatter.Ellipsis`: an ASCII string by characters; any other by display width, where
    /// an East Asian wide or fullwidth scalar (CJK, most emoji) counts two columns and every
    /// other scalar one (a combining mark too), cutting between scalars.
    ///
    /// ```swift
    /// Units.ellipsis("RUN apt-get update && apt-get install -y curl git", 20)  // "RUN apt-get update …"
    /// Units.ellipsis("RUN echo 你好世界", 12)                                   // "RUN echo 你…"
    /// ```
    static func ellipsis(_ s: String, _ width: Int) -> String {
        guard width > 0 else { return "" }
        let scalars = Array(s.unicodeScalars)
        if width == 1 { return scalars.first.map { String(Character($0)) } ?? "" }
        func prefix(_ n: Int) -> String {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: scalars[..<n])
            return String(v) + "…"
        }
        if s.utf8.count == scalars.count {
            return scalars.count <= width ? s : prefix(width - 1)
        }
        // Columns up to and including each scalar; cut after the last one that leaves room for `…`.
        var ends: [Int] = []
        ends.reserveCapacity(scalars.count)
        var total = 0
        for u in scalars {
            total += isWide(u) ? 2 : 1
            ends.append(total)
        }
        guard total > width else { return s }
        for i in 0..<(ends.count - 1) where ends[i] <= width - 1 && ends[i + 1] > width - 1 {
            return prefix(i + 1)
        }
        return s
    }

    /// East Asian Wide (W) and Fullwidth (F) scalars of Unicode's EastAsianWidth.txt (as Go's
    /// `golang.org/x/text/width` classes them), as ranges; unassigned gaps inside a block
    /// count as the block does.
    private static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x23E9...0x23EC, 0x23F0...0x23F0, 0x23F3...0x23F3,
        0x25FD...0x25FE, 0x2614...0x2615, 0x2648...0x2653, 0x267F...0x267F, 0x2693...0x2693, 0x26A1...0x26A1,
        0x26AA...0x26AB, 0x26BD...0x26BE, 0x26C4...0x26C5, 0x26CE...0x26CE, 0x26D4...0x26D4, 0x26EA...0x26EA,
        0x26F2...0x26F3, 0x26F5...0x26F5, 0x26FA...0x26FA, 0x26FD...0x26FD, 0x2705...0x2705, 0x270A...0x270B,
        0x2728...0x2728, 0x274C...0x274C, 0x274E...0x274E, 0x2753...0x2755, 0x2757...0x2757, 0x2795...0x2797,
        0x27B0...0x27B0, 0x27BF...0x27BF, 0x2B1B...0x2B1C, 0x2B50...0x2B50, 0x2B55...0x2B55, 0x2E80...0x303E,
        0x3041...0x3247, 0x3250...0x4DBF, 0x4E00...0xA4C6, 0xA960...0xA97C, 0xAC00...0xD7A3, 0xF900...0xFAD9,
        0xFE10...0xFE19, 0xFE30...0xFE6B, 0xFF01...0xFF60, 0xFFE0...0xFFE6, 0x16FE0...0x1B2FB, 0x1F004...0x1F004,
        0x1F0CF...0x1F0CF, 0x1F18E...0x1F18E, 0x1F191...0x1F19A, 0x1F200...0x1F320, 0x1F32D...0x1F335,
        0x1F337...0x1F37C, 0x1F37E...0x1F393, 0x1F3A0...0x1F3CA, 0x1F3CF...0x1F3D3, 0x1F3E0...0x1F3F0,
        0x1F3F4...0x1F3F4, 0x1F3F8...0x1F43E, 0x1F440...0x1F440, 0x1F442...0x1F4FC, 0x1F4FF...0x1F53D,
        0x1F54B...0x1F54E, 0x1F550...0x1F567, 0x1F57A...0x1F57A, 0x1F595...0x1F596, 0x1F5A4...0x1F5A4,
        0x1F5FB...0x1F64F, 0x1F680...0x1F6C5, 0x1F6CC...0x1F6CC, 0x1F6D0...0x1F6D2, 0x1F6D5...0x1F6DF,
        0x1F6EB...0x1F6EC, 0x1F6F4...0x1F6FC, 0x1F7E0...0x1F7F0, 0x1F90C...0x1F93A, 0x1F93C...0x1F945,
        0x1F947...0x1F9FF, 0x1FA70...0x1FAF6, 0x20000...0x3FFFD,
    ]

    /// Whether a scalar takes two columns (binary search in ``wideRanges``).
    static func isWide(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        guard v >= 0x1100 else { return false }
        var lo = 0, hi = wideRanges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if v < wideRanges[mid].lowerBound { hi = mid - 1 } else if v > wideRanges[mid].upperBound { lo = mid + 1 } else { return true }
        }
        return false
    }

    /// `2019-10-13T22:49:15Z`, or `…+05:30` outside UTC: Go's `time.RFC3339` in the local
    /// time zone, as `docker history -H=false` prints a date.
    static func localRFC3339(_ date: Date) -> String { RFC3339.formatLocal(date) }

    static func shortID(_ d: Digest, noTrunc: Bool) -> String {
        noTrunc ? d.string : d.shortHex
    }
}
