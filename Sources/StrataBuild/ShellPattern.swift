/// Shell patterns for `${V#pattern}` and `${V%pattern}`: `*` matches any string (`/` too),
/// `?` one character, `[...]`/`[!...]` a class.
enum ShellPattern {
    enum Token: Equatable {
        case literal(Unicode.Scalar)
        case one
        case star
        case set([ClosedRange<UInt32>], negated: Bool)
    }

    /// Tokens of unquoted pattern text; a `[` without a closing `]` is literal.
    static func tokens(_ s: [Unicode.Scalar]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            i += 1
            switch c {
            case "*": out.append(.star)
            case "?": out.append(.one)
            case "[":
                var j = i
                var negated = false
                if j < s.count, s[j] == "!" || s[j] == "^" { negated = true; j += 1 }
                var ranges: [ClosedRange<UInt32>] = []
                var first = true
                var closed = false
                while j < s.count {
                    let lo = s[j]
                    if lo == "]", !first { closed = true; j += 1; break }
                    first = false
                    if j + 2 < s.count, s[j + 1] == "-", s[j + 2] != "]", lo.value <= s[j + 2].value {
                        ranges.append(lo.value...s[j + 2].value)
                        j += 3
                    } else {
                        ranges.append(lo.value...lo.value)
                        j += 1
                    }
                }
                if closed {
                    out.append(.set(ranges, negated: negated))
                    i = j
                } else {
                    out.append(.literal("["))
                }
            default: out.append(.literal(c))
            }
        }
        return out
    }

    /// Whether `tokens` match all of `s` (dynamic programme, no backtracking).
    static func matches(_ tokens: [Token], _ s: ArraySlice<Unicode.Scalar>) -> Bool {
        let s = Array(s)
        let n = s.count
        var next = [Bool](repeating: false, count: n + 1)
        next[n] = true
        var cur = next
        for t in tokens.indices.reversed() {
            switch tokens[t] {
            case .literal(let c):
                for k in 0...n { cur[k] = k < n && s[k] == c && next[k + 1] }
            case .one:
                for k in 0...n { cur[k] = k < n && next[k + 1] }
            case .set(let ranges, let negated):
                for k in 0...n {
                    cur[k] = k < n && ranges.contains { $0.contains(s[k].value) } != negated && next[k + 1]
                }
            case .star:
                cur[n] = next[n]
                for k in stride(from: n - 1, through: 0, by: -1) { cur[k] = next[k] || cur[k + 1] }
            }
            swap(&cur, &next)
        }
        return next[0]
    }

    /// `${V#p}` (prefix, shortest), `${V##p}`, `${V%p}` (suffix, shortest), `${V%%p}`.
    static func remove(_ tokens: [Token], from value: String, prefix: Bool, longest: Bool) -> String {
        let v = Array(value.unicodeScalars)
        let n = v.count
        let cuts: [Int] = prefix ? (longest ? Array((0...n).reversed()) : Array(0...n))
                                 : (longest ? Array(0...n) : Array((0...n).reversed()))
        for cut in cuts {
            if prefix, matches(tokens, v[..<cut]) { return String(String.UnicodeScalarView(v[cut...])) }
            if !prefix, matches(tokens, v[cut...]) { return String(String.UnicodeScalarView(v[..<cut])) }
        }
        return value
    }
}
