/// Go's `time.ParseDuration` syntax, used by `HEALTHCHECK --interval=30s` and friends.
public enum GoDuration {
    /// Nanoseconds for a duration like `30s`, `1m30s`, `1.5h`, `500ms`, `0`; `nil` if malformed.
    ///
    /// ```swift
    /// GoDuration.nanoseconds("1m30s")   // 90_000_000_000
    /// ```
    public static func nanoseconds(_ text: String) -> Int64? {
        var s = Substring(text)
        var negative = false
        if let f = s.first, f == "-" || f == "+" {
            negative = f == "-"
            s = s.dropFirst()
        }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        let units: [(String, Int64)] = [("ns", 1), ("us", 1_000), ("µs", 1_000), ("μs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
                                        ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        // Exact, as Go: whole units, then the fraction's digits, in integers (a fraction of a
        // nanosecond is dropped).
        var total: Int64 = 0
        while !s.isEmpty {
            let whole = s.prefix { $0.isASCII && $0.isNumber }
            s = s.dropFirst(whole.count)
            var fraction = Substring("")
            if s.first == "." {
                s = s.dropFirst()
                fraction = s.prefix { $0.isASCII && $0.isNumber }
                s = s.dropFirst(fraction.count)
            }
            guard !whole.isEmpty || !fraction.isEmpty else { return nil }
            guard let (unit, scale) = units.filter({ s.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else {
                return nil
            }
            s = s.dropFirst(unit.count)
            guard let w = whole.isEmpty ? 0 : Int64(whole) else { return nil }
            var (value, overflow) = w.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            var place = scale
            for digit in fraction {
                place /= 10
                if place == 0 { break }
                value += Int64(digit.wholeNumberValue ?? 0) * place
            }
            (total, overflow) = total.addingReportingOverflow(value)
            guard !overflow else { return nil }
        }
        return negative ? -total : total
    }

    /// A duration as Go's `Duration.String` prints it: `0s`, `1.5s`, `500ms`, `2µs`, `1m30s`,
    /// `1h0m0s` (dockerd's words for a health check's timeout, the classic builder's
    /// HEALTHCHECK history).
    public static func format(nanoseconds ns: Int64) -> String {
        if ns == 0 { return "0s" }
        if ns < 0 { return "-" + format(nanoseconds: ns == Int64.min ? Int64.max : -ns) }
        // value / scale with its fraction, trailing zeros dropped: 1500, 1000 → "1.5".
        func decimal(_ value: Int64, _ scale: Int64) -> String {
            let whole = String(value / scale)
            guard value % scale != 0 else { return whole }
            var f = String(value % scale)
            f = String(repeating: "0", count: String(scale).count - 1 - f.count) + f
            while f.hasSuffix("0") { f.removeLast() }
            return whole + "." + f
        }
        if ns < 1_000 { return "\(ns)ns" }
        if ns < 1_000_000 { return decimal(ns, 1_000) + "µs" }
        if ns < 1_000_000_000 { return decimal(ns, 1_000_000) + "ms" }
        let hours = ns / 3_600_000_000_000
        let minutes = ns / 60_000_000_000 % 60
        return (hours > 0 ? "\(hours)h" : "") + (hours > 0 || minutes > 0 ? "\(minutes)m" : "")
            + decimal(ns % 60_000_000_000, 1_000_000_000) + "s"
    }
}
