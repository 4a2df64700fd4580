import OCI

/// Docker's word processing for Dockerfile instructions: quotes, escapes and variables.
///
/// Handles `'single'` and `"double"` quotes, the escape character (`\` or `` ` ``), and
/// `$V`, `${V}`, `${V:-default}`, `${V-default}`, `${V:+alt}`, `${V+alt}`, `${V:?message}`,
/// `${V?message}`, and the prefix/suffix removals `${V#pattern}`, `${V##pattern}`,
/// `${V%pattern}`, `${V%%pattern}` (shell patterns: `*`, `?`, `[...]`). A variable is *unset* when `env` has no key for it and *empty* when
/// its value is `""`; the forms with `:` treat both alike, as `sh` does. Unlike a shell it
/// never splits words on the values of variables, never globs and runs no commands.
///
/// ```swift
/// let lexer = ShellLexer()
/// try lexer.expand("\"$HOME\"/bin", env: ["HOME": "/root"])          // "/root/bin"
/// try lexer.expand("${TAG:-latest}", env: [:])                       // "latest"
/// try lexer.expandWords("a=\"x y\" b=${B:-2}", env: [:])              // ["a=x y", "b=2"]
/// ```
public struct ShellLexer: Sendable, Equatable {
    /// The escape character, `\` or `` ` ``.
    public let escape: Character

    /// A lexer using `escape` (the Dockerfile's `# escape=` directive, `\` by default).
    public init(escape: String = "\\") {
        self.escape = escape == "`" ? "`" : "\\"
    }

    private var escapeScalar: Unicode.Scalar { escape == "`" ? "`" : "\\" }

    /// Expands one word: quotes removed, escapes resolved, variables substituted.
    ///
    /// - Throws: ``StrataError`` `.dockerfileSyntax` for an unterminated quote or `${`, or a
    ///   bad substitution; `.invalidArgument` for `${V?message}` / `${V:?message}` when `V`
    ///   is unset (or empty).
    public func expand(_ word: String, env: [String: String]) throws -> String {
        var w = WordExpander(Array(word.unicodeScalars), escape: escapeScalar, env: env, quotes: true, source: word)
        return try w.run()
    }

    /// Splits `text` into words on unquoted whitespace, then expands each word; used for
    /// `ENV`, `LABEL`, `ARG`, `COPY` and `ADD` values. A quoted empty string (`""`) is a word.
    public func expandWords(_ text: String, env: [String: String]) throws -> [String] {
        try splitWords(text).map { try expand($0, env: env) }
    }

    /// Splits `text` into raw words on whitespace outside quotes, keeping quotes and escapes
    /// as written (Docker's splitting of `ENV`/`LABEL`/`ARG` arguments).
    ///
    /// ```swift
    /// ShellLexer().splitWords(#"a="x y" b\ c"#)   // [#"a="x y""#, #"b\ c"#]
    /// ```
    public func splitWords(_ text: String) -> [String] {
        RawWords.split(Array(text.unicodeScalars), escape: escapeScalar)
    }

    /// Expands variables in a heredoc body (or other text where quotes are literal): only
    /// `$` forms are processed, and the escape character only escapes `$` and itself, as in a
    /// shell here-document.
    ///
    /// ```swift
    /// try ShellLexer().expandHeredoc("echo \"$A\" \\$B\n", env: ["A": "1"])   // "echo \"1\" $B\n"
    /// ```
    public func expandHeredoc(_ text: String, env: [String: String]) throws -> String {
        var w = WordExpander(Array(text.unicodeScalars), escape: escapeScalar, env: env, quotes: false, source: text)
        return try w.run()
    }
}

/// Splitting on unquoted whitespace with quotes and escapes kept as written.
enum RawWords {
    static func split(_ s: [Unicode.Scalar], escape: Unicode.Scalar) -> [String] {
        var words: [String] = []
        var word = String.UnicodeScalarView()
        var inWord = false
        var quote: Unicode.Scalar? = nil
        var i = 0
        func flush() {
            if inWord { words.append(String(word)) }
            word = String.UnicodeScalarView()
            inWord = false
        }
        while i < s.count {
            let ch = s[i]
            if let q = quote {
                if ch == q {
                    quote = nil
                } else if ch == escape, q != "'" {
                    if i + 1 == s.count { i += 1; continue }
                    word.append(ch)
                    i += 1
                    word.append(s[i])
                    i += 1
                    continue
                }
                word.append(ch)
                i += 1
                continue
            }
            if ch.properties.isWhitespace {
                flush()
                i += 1
                continue
            }
            inWord = true
            if ch == "'" || ch == "\"" {
                quote = ch
            } else if ch == escape {
                if i + 1 == s.count { i += 1; continue }
                word.append(ch)
                i += 1
            }
            word.append(s[i])
            i += 1
        }
        flush()
        return words
    }
}

/// One pass of expansion over a word.
private struct WordExpander {
    let s: [Unicode.Scalar]
    let escape: Unicode.Scalar
    let env: [String: String]
    /// `false` for heredoc bodies: quotes are literal.
    let quotes: Bool
    let source: String
    var i = 0
    /// Nesting of `${...}`; bounded so hostile input cannot exhaust the stack.
    var depth = 0
    static let maximumDepth = 64

    init(_ s: [Unicode.Scalar], escape: Unicode.Scalar, env: [String: String], quotes: Bool, source: String) {
        self.s = s
        self.escape = escape
        self.env = env
        self.quotes = quotes
        self.source = source
    }

    var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }

    mutating func run() throws -> String {
        try processUntil(nil)
    }

    func syntax(_ what: String) -> StrataError {
        let shown = source.count > 80 ? String(source.prefix(77)) + "..." : source
        return StrataError(.dockerfileSyntax, "cannot expand \"\(shown)\": \(what)")
    }

    /// Processes up to (and consuming) `stop`, or to the end when `stop` is nil.
    mutating func processUntil(_ stop: Unicode.Scalar?) throws -> String {
        var out = String.UnicodeScalarView()
        while let ch = peek {
            if let stop, ch == stop {
                i += 1
                return String(out)
            }
            if quotes, ch == "'" {
                out.append(contentsOf: try singleQuoted().unicodeScalars)
            } else if quotes, ch == "\"" {
                out.append(contentsOf: try doubleQuoted().unicodeScalars)
            } else if ch == "$" {
                out.append(contentsOf: try dollar().unicodeScalars)
            } else {
                i += 1
                if ch == escape {
                    guard let next = peek else {
                        if !quotes { out.append(ch) }
                        break
                    }
                    if quotes || next == "$" || next == escape {
                        out.append(next)
                        i += 1
                    } else {
                        out.append(ch)
                    }
                } else {
                    out.append(ch)
                }
            }
        }
        if stop != nil { throw syntax("missing '}'") }
        return String(out)
    }

    mutating func singleQuoted() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while let ch = peek {
            i += 1
            if ch == "'" { return String(out) }
            out.append(ch)
        }
        throw syntax("unterminated single quote; add the closing '")
    }

    mutating func doubleQuoted() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while let ch = peek {
            switch ch {
            case "\"":
                i += 1
                return String(out)
            case "$":
                out.append(contentsOf: try dollar().unicodeScalars)
            default:
                i += 1
                if ch == escape {
                    guard let next = peek else { continue }
                    if next == "\"" || next == "$" || next == escape {
                        out.append(next)
                        i += 1
                        continue
                    }
                }
                out.append(ch)
            }
        }
        throw syntax("unterminated double quote; add the closing \"")
    }

    mutating func dollar() throws -> String {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw syntax("variables are nested more than \(Self.maximumDepth) deep") }
        i += 1
        guard peek == "{" else {
            let name = readName()
            return name.isEmpty ? "$" : env[name] ?? ""
        }
        i += 1
        switch peek {
        case nil: throw syntax("missing '}'")
        case "{", "}", ":": throw syntax("bad substitution")
        default: break
        }
        let name = readName()
        guard let ch = peek else { throw syntax("missing '}'") }
        i += 1
        let value = env[name]
        switch ch {
        case "}":
            return value ?? ""
        case ":":
            guard let modifier = peek else { throw syntax("missing '}'") }
            i += 1
            let word = try processUntil("}")
            let empty = value?.isEmpty ?? true
            switch modifier {
            case "-": return empty ? word : value ?? ""
            case "+": return empty ? "" : word
            case "?":
                if empty { throw unset(name, word, orEmpty: true) }
                return value ?? ""
            default: throw syntax("unsupported modifier (\(modifier)) in ${\(name):...}; use :-, :+ or :?")
            }
        case "-", "+", "?":
            let word = try processUntil("}")
            switch ch {
            case "-": return value ?? word
            case "+": return value == nil ? "" : word
            default:
                guard let value else { throw unset(name, word, orEmpty: false) }
                return value
            }
        case "#", "%":
            let longest = peek == ch
            if longest { i += 1 }
            let pattern = try patternUntilBrace()
            return ShellPattern.remove(pattern, from: value ?? "", prefix: ch == "#", longest: longest)
        default:
            throw syntax("bad substitution in ${\(name)...}; use ${NAME}, ${NAME:-default} or ${NAME:+alternative}")
        }
    }

    /// The pattern of `${V#pattern}`/`${V%pattern}` up to (and consuming) `}`: quoted and
    /// escaped characters are literal, `*`, `?` and `[...]` are wildcards, `$` expands.
    mutating func patternUntilBrace() throws -> [ShellPattern.Token] {
        var tokens: [ShellPattern.Token] = []
        func glob(_ text: String) {
            tokens += ShellPattern.tokens(Array(text.unicodeScalars))
        }
        while let ch = peek {
            switch ch {
            case "}":
                i += 1
                return tokens
            case "$":
                glob(try dollar())
            case "'" where quotes:
                tokens += try singleQuoted().unicodeScalars.map { .literal($0) }
            case "\"" where quotes:
                tokens += try doubleQuoted().unicodeScalars.map { .literal($0) }
            default:
                i += 1
                if ch == escape {
                    guard let next = peek else { continue }
                    tokens.append(.literal(next))
                    i += 1
                } else {
                    // Gather a run of ordinary characters so "[a-z]" stays one class.
                    var run = String.UnicodeScalarView([ch])
                    while let c = peek, c != "}", c != "$", c != escape, !(quotes && (c == "'" || c == "\"")) {
                        run.append(c)
                        i += 1
                    }
                    glob(String(run))
                }
            }
        }
        throw syntax("missing '}'")
    }

    func unset(_ name: String, _ message: String, orEmpty: Bool) -> StrataError {
        let why = message.isEmpty ? "is not set\(orEmpty ? " or empty" : "")" : message
        return StrataError(.invalidArgument, "\(name): \(why) (set it with ARG, ENV or --build-arg)")
    }

    /// A variable name: letters, digits and `_`; a run of digits; or one special parameter.
    mutating func readName() -> String {
        var name = String.UnicodeScalarView()
        guard let first = peek else { return "" }
        if first.properties.numericType != nil, ("0"..."9").contains(first) {
            while let c = peek, ("0"..."9").contains(c) {
                name.append(c)
                i += 1
            }
            return String(name)
        }
        if "@*#?-$!".unicodeScalars.contains(first) {
            i += 1
            return String(first)
        }
        while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" {
            name.append(c)
            i += 1
        }
        return String(name)
    }
}
