import OCI

/// Turns Dockerfile text into a ``Dockerfile``. Use ``Dockerfile/parse(_:)``.
///
/// It follows BuildKit's Dockerfile frontend, in three passes:
/// 1. **Lines.** Parser directives (`# escape=`, `# syntax=`, `# check=`) are read only from the
///    comment lines at the very top. Lines whose first non-blank character is `#` are
///    comments. A line ending in the escape character (then optional blanks) continues on the
///    next line; comment lines and blank lines inside a continuation are skipped. The lines of
///    an instruction are joined with the escape and newline removed.
/// 2. **Instructions.** The first word is the keyword; `--name[=value]` words after it are
///    flags; the rest is split by the keyword's form (``Arguments``). `RUN`, `COPY` and `ADD`
///    in shell/word form read heredoc bodies (`<<EOF` … `EOF`) from the following lines.
/// 3. **Stages.** `ARG`s before the first `FROM` are meta args; each `FROM` starts a stage.
///
/// Every error is a ``StrataError`` `.dockerfileSyntax` whose message starts with
/// `Dockerfile line N:`.
struct DockerfileParser {
    private let lines: [[Unicode.Scalar]]

    init(_ text: String) {
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        // Lines keep their "\n" (heredoc bodies need it); the last one may lack it.
        var lines: [[Unicode.Scalar]] = []
        var start = 0
        for (i, c) in scalars.enumerated() where c == "\n" {
            lines.append(Array(scalars[start...i]))
            start = i + 1
        }
        if start < scalars.count { lines.append(Array(scalars[start...])) }
        self.lines = lines
    }

    /// An instruction's joined text before it is split into keyword, flags and arguments.
    struct LogicalLine {
        var text: [Unicode.Scalar]
        var line: Int
    }

    func parse() throws -> Dockerfile {
        var escape: Unicode.Scalar = "\\"
        var syntax: String?
        var seen: Set<String> = []
        var directivesDone = false
        var instructions: [Instruction] = []
        var idx = 0
        while idx < lines.count {
            let lineNumber = idx + 1
            let line = Self.trimLeadingSpace(Self.trimNewline(lines[idx][...]))
            idx += 1
            if !directivesDone {
                if let (key, value) = Self.directive(line) {
                    guard seen.insert(key).inserted else {
                        throw Self.error(lineNumber, "the \(key) parser directive is given twice; keep one `# \(key)=` line")
                    }
                    switch key {
                    case "escape":
                        guard value == "\\" || value == "`" else {
                            throw Self.error(lineNumber, "invalid escape character \"\(value)\": `# escape=` takes \\ or `")
                        }
                        escape = value == "`" ? "`" : "\\"
                    case "syntax":
                        syntax = value
                    default:
                        break  // "check": lint configuration, accepted and ignored.
                    }
                    continue
                }
                directivesDone = true
            }
            if Self.isComment(line) { continue }
            var (text, ended) = Self.trimContinuation(line, escape: escape)
            if ended && text.isEmpty { continue }
            while !ended && idx < lines.count {
                let next = Self.trimNewline(lines[idx][...])
                idx += 1
                if Self.isComment(next) { continue }
                if Self.trimLeadingSpace(next).isEmpty { continue }  // empty continuation line
                let (more, end) = Self.trimContinuation(next, escape: escape)
                text += more
                ended = end
            }
            // A continuation that runs into the end of the file ends the instruction there, as
            // docker (classic and BuildKit) and buildah do.
            if Self.trim(text[...]).isEmpty { continue }
            var instruction = try InstructionParser(escape: escape, line: lineNumber).parse(Self.trim(text[...]))
            if instruction.acceptsHeredocs, instruction.original.contains("<<") {
                try readHeredocs(into: &instruction, from: &idx)
            }
            instructions.append(instruction)
        }
        return try Self.stages(instructions, escape: escape, syntax: syntax, lastLine: lines.count)
    }

    /// Reads the bodies of the heredocs the instruction's line names, in order.
    private func readHeredocs(into instruction: inout Instruction, from idx: inout Int) throws {
        var docs: [Heredoc] = []
        for marker in HeredocMarker.markers(in: instruction.original) {
            var content = String.UnicodeScalarView()
            var terminated = false
            while idx < lines.count {
                let raw = lines[idx]
                idx += 1
                var candidate = Self.trimNewline(raw[...])
                if marker.chomp { candidate = candidate.drop { $0 == "\t" } }
                if candidate.elementsEqual(marker.name.unicodeScalars) {
                    terminated = true
                    break
                }
                if marker.chomp {
                    content.append(contentsOf: raw.drop { $0 == "\t" })
                } else {
                    content.append(contentsOf: raw)
                }
            }
            guard terminated else {
                throw Self.error(instruction.line, """
                    unterminated heredoc <<\(marker.chomp ? "-" : "")\(marker.name): \
                    end its body with a line containing only \(marker.name)
                    """)
            }
            docs.append(Heredoc(name: marker.name, content: String(content), expand: marker.expand, chomp: marker.chomp))
        }
        if case .onbuild(var inner) = instruction.arguments {
            inner.heredocs = docs
            instruction.arguments = .onbuild(inner)
        } else {
            instruction.heredocs = docs
        }
    }

    /// Groups instructions into meta args and stages.
    private static func stages(_ instructions: [Instruction], escape: Unicode.Scalar, syntax: String?,
                               lastLine: Int) throws -> Dockerfile {
        var file = Dockerfile(escape: String(Character(escape)), syntax: syntax)
        var names: [String: Int] = [:]
        for i in instructions {
            if i.keyword == "FROM" {
                guard case .words(let words) = i.arguments else { continue }
                var from = i
                from.arguments = .words(Array(words.prefix(1)))
                let name = words.count == 3 ? words[2].lowercased() : nil
                if let name {
                    if let previous = names[name] {
                        throw error(i.line, "the stage name \"\(name)\" is already used on line \(previous); choose another name after AS")
                    }
                    names[name] = i.line
                }
                file.stages.append(Stage(index: file.stages.count, name: name, from: from))
            } else if file.stages.isEmpty {
                guard i.keyword == "ARG" else {
                    throw error(i.line, """
                        \(i.keyword) comes before the first FROM; a Dockerfile must start with FROM \
                        (only ARG and parser directives may come before it)
                        """)
                }
                file.metaArgs.append(i)
            } else {
                file.stages[file.stages.count - 1].instructions.append(i)
            }
        }
        guard !file.stages.isEmpty else {
            if let last = instructions.last {
                throw error(last.line, "no FROM instruction: add FROM <image> (or FROM scratch) to start a build stage")
            }
            throw error(max(lastLine, 1), "the Dockerfile has no instructions: add FROM <image> (or FROM scratch) to start a build stage")
        }
        return file
    }

    static func error(_ line: Int, _ message: String) -> StrataError {
        StrataError(.dockerfileSyntax, "Dockerfile line \(line): \(message)")
    }

    // MARK: - Line helpers

    /// A parser directive `# key=value`, key lowercased, if the line is one of the known ones.
    static func directive(_ line: ArraySlice<Unicode.Scalar>) -> (String, String)? {
        var s = line
        guard s.first == "#" else { return nil }
        s = s.dropFirst().drop(while: isRegexSpace)
        guard let first = s.first, isASCIILetter(first) else { return nil }
        let key = s.prefix { isASCIILetter($0) || ("0"..."9").contains($0) }
        s = s.dropFirst(key.count).drop(while: isRegexSpace)
        guard s.first == "=" else { return nil }
        s = s.dropFirst().drop(while: isRegexSpace)
        while let last = s.last, isRegexSpace(last) { s = s.dropLast() }
        guard !s.isEmpty else { return nil }
        let name = String(String.UnicodeScalarView(key)).lowercased()
        guard ["syntax", "escape", "check"].contains(name) else { return nil }
        return (name, String(String.UnicodeScalarView(s)))
    }

    static func isASCIILetter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c)
    }

    /// `\s` of Go regular expressions.
    static func isRegexSpace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}"
    }

    static func isComment(_ line: ArraySlice<Unicode.Scalar>) -> Bool {
        trimLeadingSpace(line).first == "#"
    }

    static func trimNewline(_ line: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
        var s = line
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return s
    }

    static func trimLeadingSpace(_ line: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
        line.drop { $0.properties.isWhitespace }
    }

    static func trim(_ line: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var s = trimLeadingSpace(line)
        while let last = s.last, last.properties.isWhitespace { s = s.dropLast() }
        return Array(s)
    }

    /// Removes a trailing line continuation (the escape character, then optional blanks, not
    /// itself escaped); returns the text and whether the instruction ends on this line.
    static func trimContinuation(_ line: ArraySlice<Unicode.Scalar>, escape: Unicode.Scalar) -> ([Unicode.Scalar], Bool) {
        var end = line.endIndex
        while end > line.startIndex, line[end - 1] == " " || line[end - 1] == "\t" { end -= 1 }
        guard end > line.startIndex, line[end - 1] == escape else { return (Array(line), true) }
        let k = end - 1
        if k > line.startIndex, line[k - 1] == escape { return (Array(line), true) }
        return (Array(line[..<k]), false)
    }
}

extension Instruction {
    /// `RUN`, `COPY` and `ADD` (also under `ONBUILD`) in shell/word form may carry heredocs.
    var acceptsHeredocs: Bool {
        switch arguments {
        case .onbuild(let inner): return inner.acceptsHeredocs
        case .exec: return false
        default: return ["RUN", "COPY", "ADD"].contains(keyword)
        }
    }
}

/// Heredoc marker words such as `<<EOF`, `<<-"EOF"`, `2<<EOF`.
enum HeredocMarker {
    /// The markers on an instruction line, in order.
    static func markers(in line: String) -> [(name: String, expand: Bool, chomp: Bool)] {
        RawWords.split(Array(line.unicodeScalars), escape: "\\").compactMap { parse($0) }
    }

    static func parse(_ word: String) -> (name: String, expand: Bool, chomp: Bool)? {
        var s = Substring(word).unicodeScalars[...]
        s = s.drop { ("0"..."9").contains($0) }
        guard s.starts(with: "<<".unicodeScalars) else { return nil }
        s = s.dropFirst(2)
        let chomp = s.first == "-"
        if chomp { s = s.dropFirst() }
        guard !s.isEmpty, !s.contains("<") else { return nil }
        let rest = String(String.UnicodeScalarView(s))
        guard RawWords.split(Array(s), escape: "\\").count == 1,
              let name = unquote(rest, keepQuotes: false), let raw = unquote(rest, keepQuotes: true),
              !name.isEmpty
        else { return nil }
        func quotes(_ x: String) -> Int { x.unicodeScalars.filter { $0 == "'" || $0 == "\"" }.count }
        return (name, quotes(name) == quotes(raw), chomp)
    }

    /// Removes shell quoting from a heredoc delimiter (escapes are always resolved); `nil`
    /// when a quote is not closed.
    static func unquote(_ s: String, keepQuotes: Bool) -> String? {
        var out = String.UnicodeScalarView()
        var quote: Unicode.Scalar?
        var it = Array(s.unicodeScalars)[...]
        while let c = it.popFirst() {
            if let q = quote {
                if c == q {
                    quote = nil
                    if keepQuotes { out.append(c) }
                } else if c == "\\", q == "\"", let n = it.first, n == "\"" || n == "\\" || n == "$" {
                    out.append(n)
                    it = it.dropFirst()
                } else {
                    out.append(c)
                }
            } else if c == "'" || c == "\"" {
                quote = c
                if keepQuotes { out.append(c) }
            } else if c == "\\" {
                if let n = it.popFirst() { out.append(n) }
            } else {
                out.append(c)
            }
        }
        return quote == nil ? String(out) : nil
    }
}
