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

    /// `2 weeks`, `About an hour`, as go-units' HumanDuration.
    static func duration(_ seconds: Double) -> String { text(durationParts(seconds)) }

    /// The units of ``duration(_:)``'s texts.
    enum DurationUnit: Int { case lessThanASecond, second, seconds, aboutAMinute, minutes, aboutAnHour, hours, days, weeks, months, years }

    /// ``duration(_:)`` as a unit and a count: the text is a function of these two alone.
    static func durationParts(_ seconds: Double) -> (unit: DurationUnit, count: Int) {
        let s = Int(seconds)
        if s < 1 { return (.lessThanASecond, 0) }
        if s == 1 { return (.second, 1) }
        if s < 60 { return (.seconds, s) }
        let m = Int(seconds / 60)
        if m == 1 { return (.aboutAMinute, 1) }
        if m < 60 { return (.minutes, m) }
        let h = Int(seconds / 3600 + 0.5)
        if h == 1 { return (.aboutAnHour, 1) }
        if h < 48 { return (.hours, h) }
        if h < 24 * 7 * 2 { return (.days, h / 24) }
        if h < 24 * 30 * 2 { return (.weeks, h / 24 / 7) }
        if h < 24 * 365 * 2 { return (.months, h / 24 / 30) }
        return (.years, Int(seconds / 3600) / 24 / 365)
    }

    static func text(_ parts: (unit: DurationUnit, count: Int)) -> String {
        let n = parts.count
        switch parts.unit {
        case .lessThanASecond: return "Less than a second"
        case .second: return "1 second"
        case .seconds: return "\(n) seconds"
        case .aboutAMinute: return "About a minute"
        case .minutes: return "\(n) minutes"
        case .aboutAnHour: return "About an hour"
        case .hours: return "\(n) hours"
        case .days: return "\(n) days"
        case .weeks: return "\(n) weeks"
        case .months: return "\(n) months"
        case .years: return "\(n) years"
        }
    }

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
            let parts = durationParts(now.timeIntervalSince(date))
            let key = parts.unit.rawValue << 48 | (parts.count & 0xFFFF_FFFF_FFFF)
            if let t = texts[key] { return t }
            let t = text(parts) + " ago"
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

    /// Cuts to `width` characters with a trailing `…`.
    static func ellipsis(_ s: String, _ width: Int) -> String {
        s.count <= width ? s : String(s.prefix(width - 1)) + "…"
    }

    static func shortID(_ d: Digest, noTrunc: Bool) -> String {
        noTrunc ? d.string : d.shortHex
    }
}
