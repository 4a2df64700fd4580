/// Go's `time.ParseDuration` syntax, used by `HEALTHCHECK --interval=30s` and friends.
public enum GoDuration {
    /// Nanoseconds for a duration like `30s`, `1m30s`, `1.5h`, `500ms`, `0`; `nil` if malformed.
    ///
    /// ```swift
    /// GoDuration.nanoseconds("1m30s")   // 90_000_000_000
    /// ```
    public static func nanoseconds(_ text: String) -> Int64? {
        var s = Substring(text)
        var sign: Double = 1
        if let f = s.first, f == "-" || f == "+" {
            sign = f == "-" ? -1 : 1
            s = s.dropFirst()
        }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9),
                                         ("m", 6e10), ("h", 3.6e12)]
        var total: Double = 0
        while !s.isEmpty {
            let number = s.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1, let value = Double(number) else {
                return nil
            }
            s = s.dropFirst(number.count)
            guard let (unit, scale) = units.filter({ s.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else {
                return nil
            }
            s = s.dropFirst(unit.count)
            total += value * scale
        }
        let ns = sign * total
        guard ns.isFinite, abs(ns) < 9.2e18 else { return nil }
        return Int64(ns)
    }
}
