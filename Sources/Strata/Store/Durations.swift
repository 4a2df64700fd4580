import Foundation

/// Go-style durations: `1h`, `30m`, `1h30m`, `45s`, `0s`, `1.5h`, or plain seconds.
public enum Durations {
    public static func parse(_ s: String) throws -> TimeInterval {
        if let n = Double(s), n >= 0 { return n }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for c in s {
            if c.isNumber || c == "." { number.append(c); continue }
            let unit: Double
            switch c {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            default: throw StrataError(.invalidArgument, "invalid duration \"\(s)\": use e.g. 30s, 15m, 1h, 7d")
            }
            guard let n = Double(number) else { throw StrataError(.invalidArgument, "invalid duration \"\(s)\": use e.g. 30s, 15m, 1h, 7d") }
            total += n * unit
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit else { throw StrataError(.invalidArgument, "invalid duration \"\(s)\": use e.g. 30s, 15m, 1h, 7d") }
        return total
    }
}
