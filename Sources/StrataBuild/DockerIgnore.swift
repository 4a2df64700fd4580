import OCI

/// The rules of a `.dockerignore` file, with Docker's semantics.
///
/// - A line starting with `#` is a comment; blank lines are skipped; surrounding whitespace
///   is trimmed.
/// - Each pattern is cleaned like Go's `filepath.Clean` (`./a/` is `a`, `a/../b` is `b`) and a
///   leading `/` is dropped, so every pattern is relative to the context root.
/// - `*` matches any run of characters except `/`, `?` one character except `/`, `[a-z]` and
///   `[^a-z]` a class, `\` escapes the next character; `**` matches any number of directories
///   (including none).
/// - A pattern matches a path when it matches the whole path or one of its parent
///   directories, so `build` excludes `build/a/b`.
/// - A line starting with `!` is an exception: it re-includes what earlier lines excluded.
///   The last line that matches decides.
///
/// ```swift
/// let rules = try DockerIgnore("*.md\n!README*.md\nREADME-secret.md\n")
/// rules.isExcluded("notes.md")          // true
/// rules.isExcluded("README.md")         // false
/// rules.isExcluded("README-secret.md")  // true
/// ```
public struct DockerIgnore: Sendable, Equatable {
    /// One cleaned pattern line.
    public struct Pattern: Sendable, Equatable {
        /// The cleaned pattern, without the leading `!`.
        public var pattern: String
        /// `true` for a `!` line (re-include).
        public var isException: Bool
        /// The 1-based line of the `.dockerignore` file.
        public var line: Int
        let glob: Glob
    }

    /// The patterns in file order.
    public private(set) var patterns: [Pattern] = []

    /// Parses `.dockerignore` text.
    ///
    /// - Throws: ``StrataError`` `.dockerfileSyntax` for a malformed pattern (an unterminated
    ///   `[`, a trailing `\`, a lone `!`), naming the line.
    public init(_ text: String) throws {
        var lineNumber = 0
        var scalars = Substring(text).unicodeScalars
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        let lines = scalars.split(separator: "\n", omittingEmptySubsequences: false)
            .map { String(String.UnicodeScalarView($0)) }
        for raw in lines {
            lineNumber += 1
            if raw.hasPrefix("#") { continue }
            var p = Self.trim(Substring(raw))
            if p.isEmpty { continue }
            let exception = p.hasPrefix("!")
            if exception { p = Self.trim(p.dropFirst()) }
            guard !p.isEmpty else {
                throw StrataError(.dockerfileSyntax,
                                  ".dockerignore line \(lineNumber): \"!\" needs a pattern after it, e.g. !README.md")
            }
            var cleaned = Self.clean(String(p))
            if cleaned.count > 1, cleaned.hasPrefix("/") { cleaned.removeFirst() }
            do {
                let glob = try Glob(cleaned)
                patterns.append(Pattern(pattern: cleaned, isException: exception, line: lineNumber, glob: glob))
            } catch let e as Glob.SyntaxError {
                throw StrataError(.dockerfileSyntax, ".dockerignore line \(lineNumber): bad pattern \"\(cleaned)\": \(e.reason)")
            }
        }
    }

    /// Whether `relativePath` (like `a/b/c`, relative to the context root; `./a` and `/a`
    /// are read as `a`) is excluded from the build context. The root itself never is.
    public func isExcluded(_ relativePath: String) -> Bool {
        var path = Self.clean(relativePath)
        while path.hasPrefix("/") { path.removeFirst() }
        if path.isEmpty || path == "." { return false }
        let file = Array(path.unicodeScalars)
        // Parent directories, shortest first: "a", "a/b" for "a/b/c".
        var parents: [ArraySlice<Unicode.Scalar>] = []
        for (i, c) in file.enumerated() where c == "/" { parents.append(file[..<i]) }
        var matched = false
        for p in patterns where p.isException == matched {
            var match = p.glob.matches(file[...])
            if !match { match = parents.contains { p.glob.matches($0) } }
            if match { matched = !p.isException }
        }
        return matched
    }

    /// `true` when some pattern starts with `!`: a context walker can then not skip an
    /// excluded directory without looking inside, because something below may be re-included.
    public var hasExceptions: Bool {
        patterns.contains { $0.isException }
    }

    /// Whether a context walker must look inside the excluded directory `dir`: docker's (and
    /// buildah's) rule is that it does only when some exception pattern starts with the
    /// directory's path (`!dir/keep` for `dir`); otherwise the whole directory stays out, even
    /// what a pattern such as `!**/keep` would match below it.
    public func mayReinclude(inside dir: String) -> Bool {
        var d = Self.clean(dir)
        while d.hasPrefix("/") { d.removeFirst() }
        let dirSlash = d + "/"
        return patterns.contains { $0.isException && ($0.pattern + "/").hasPrefix(dirSlash) }
    }

    /// Whether `relativePath` is out of the context: excluded itself, or below an excluded
    /// directory that the context walk skips whole (``mayReinclude(inside:)``).
    public func isOutOfContext(_ relativePath: String) -> Bool {
        if isExcluded(relativePath) { return true }
        guard hasExceptions else { return false }  // without exceptions, a parent's exclusion is the path's
        var path = Self.clean(relativePath)
        while path.hasPrefix("/") { path.removeFirst() }
        var prefix = ""
        for c in path.split(separator: "/").dropLast() {
            prefix += (prefix.isEmpty ? "" : "/") + c
            if isExcluded(prefix) && !mayReinclude(inside: prefix) { return true }
        }
        return false
    }

    static func trim(_ s: Substring) -> Substring {
        let ws: (Character) -> Bool = { $0.isWhitespace }
        guard let start = s.firstIndex(where: { !ws($0) }), let end = s.lastIndex(where: { !ws($0) }) else { return "" }
        return s[start...end]
    }

    /// Go's `filepath.Clean` for `/`-separated paths.
    static func clean(_ path: String) -> String {
        if path.isEmpty { return "." }
        let rooted = path.hasPrefix("/")
        var out: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                if let last = out.last, last != ".." {
                    out.removeLast()
                } else if !rooted {
                    out.append(part)
                }
            default: out.append(part)
            }
        }
        let joined = out.joined(separator: "/")
        if rooted { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }
}

/// A compiled `.dockerignore` pattern, matched in linear-times-pattern time (no backtracking).
struct Glob: Sendable, Equatable {
    struct SyntaxError: Error { let reason: String }

    enum Token: Sendable, Equatable {
        case literal(Unicode.Scalar)
        /// `?`: one character except `/`.
        case one
        /// `*`: any run without `/`.
        case star
        /// `**` at the end: anything.
        case anything
        /// `**` (or `**/`) before more pattern: zero or more whole directories.
        case directories
        /// `[...]`: a class of ranges, maybe negated.
        case set([ClosedRange<UInt32>], negated: Bool)
    }

    let tokens: [Token]

    init(_ pattern: String) throws {
        let s = Array(pattern.unicodeScalars)
        var tokens: [Token] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            i += 1
            switch c {
            case "*":
                if i < s.count, s[i] == "*" {
                    i += 1
                    if i < s.count, s[i] == "/" { i += 1 }
                    tokens.append(i == s.count ? .anything : .directories)
                } else {
                    tokens.append(.star)
                }
            case "?":
                tokens.append(.one)
            case "\\":
                guard i < s.count else { throw SyntaxError(reason: "it ends with a \\; escape it as \\\\ or remove it") }
                tokens.append(.literal(s[i]))
                i += 1
            case "[":
                var negated = false
                if i < s.count, s[i] == "^" { negated = true; i += 1 }
                var ranges: [ClosedRange<UInt32>] = []
                var closed = false
                var first = true
                while i < s.count {
                    var lo = s[i]
                    if lo == "]", !first { closed = true; i += 1; break }
                    first = false
                    i += 1
                    if lo == "\\" {
                        guard i < s.count else { break }
                        lo = s[i]
                        i += 1
                    }
                    var hi = lo
                    if i + 1 < s.count, s[i] == "-", s[i + 1] != "]" {
                        hi = s[i + 1]
                        i += 2
                        if hi == "\\" {
                            guard i < s.count else { break }
                            hi = s[i]
                            i += 1
                        }
                    }
                    guard lo.value <= hi.value else {
                        throw SyntaxError(reason: "the range \(lo)-\(hi) is reversed")
                    }
                    ranges.append(lo.value...hi.value)
                }
                guard closed else { throw SyntaxError(reason: "a [ has no closing ]") }
                tokens.append(.set(ranges, negated: negated))
            default:
                tokens.append(.literal(c))
            }
        }
        self.tokens = tokens
    }

    /// Whether the pattern matches the whole of `path`.
    func matches(_ path: ArraySlice<Unicode.Scalar>) -> Bool {
        let s = Array(path)
        let n = s.count
        // next[i]: tokens[t+1...] match s[i...]; computed from the last token backwards.
        var next = [Bool](repeating: false, count: n + 1)
        next[n] = true
        var cur = [Bool](repeating: false, count: n + 1)
        for t in tokens.indices.reversed() {
            switch tokens[t] {
            case .literal(let c):
                for i in 0...n { cur[i] = i < n && s[i] == c && next[i + 1] }
            case .one:
                for i in 0...n { cur[i] = i < n && s[i] != "/" && next[i + 1] }
            case .set(let ranges, let negated):
                for i in 0...n {
                    guard i < n else { cur[i] = false; continue }
                    let inSet = ranges.contains { $0.contains(s[i].value) }
                    cur[i] = inSet != negated && next[i + 1]
                }
            case .star:
                cur[n] = next[n]
                for i in stride(from: n - 1, through: 0, by: -1) { cur[i] = next[i] || (s[i] != "/" && cur[i + 1]) }
            case .anything:
                cur[n] = next[n]
                for i in stride(from: n - 1, through: 0, by: -1) { cur[i] = next[i] || cur[i + 1] }
            case .directories:
                // (.*/)?: nothing, or anything that ends with a "/".
                var later = false
                cur[n] = next[n]
                for i in stride(from: n - 1, through: 0, by: -1) {
                    later = later || (s[i] == "/" && next[i + 1])
                    cur[i] = next[i] || later
                }
            }
            swap(&cur, &next)
        }
        return next[0]
    }
}
