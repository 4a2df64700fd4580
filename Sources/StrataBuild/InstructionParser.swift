import Foundation
import OCI
import Strata

/// Parses one instruction (its continuation lines already joined) into an ``Instruction``:
/// keyword, flags, and arguments in the form the keyword takes, with BuildKit's checks.
struct InstructionParser {
    let escape: Unicode.Scalar
    let line: Int

    enum FlagKind { case string, bool, repeated }

    /// The flags each instruction accepts (BuildKit's stable set).
    static let flagSpecs: [String: [String: FlagKind]] = [
        "FROM": ["platform": .string],
        "RUN": ["mount": .repeated, "network": .string, "security": .string],
        "COPY": ["from": .string, "chown": .string, "chmod": .string, "link": .bool, "parents": .bool, "exclude": .repeated],
        "ADD": ["chown": .string, "chmod": .string, "link": .bool, "keep-git-dir": .bool, "checksum": .string,
                "exclude": .repeated, "unpack": .bool],
        "HEALTHCHECK": ["interval": .string, "timeout": .string, "start-period": .string, "start-interval": .string,
                        "retries": .string],
    ]

    /// Every instruction keyword.
    static let keywords: [String] = [
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    ]

    func error(_ message: String) -> StrataError {
        DockerfileParser.error(line, message)
    }

    func parse(_ text: [Unicode.Scalar]) throws -> Instruction {
        let original = String(String.UnicodeScalarView(text))
        let word = text.prefix { !Self.isBlank($0) }
        let keyword = String(String.UnicodeScalarView(word)).uppercased()
        guard Self.keywords.contains(keyword) else { throw unknown(String(String.UnicodeScalarView(word))) }
        let afterKeyword = text[word.count...].drop(while: Self.isBlank)
        let (flagWords, restScalars) = extractFlags(afterKeyword)
        let rest = DockerfileParser.trim(restScalars)
        let restString = String(String.UnicodeScalarView(rest))
        var flags = try parseFlags(flagWords, keyword: keyword)
        let arguments: Arguments
        switch keyword {
        case "RUN", "CMD", "ENTRYPOINT":
            arguments = try maybeJSON(rest, keyword: keyword)
            if keyword == "RUN", arguments == .shell("") {
                throw error("RUN needs a command, e.g. RUN echo hello")
            }
        case "SHELL":
            guard case .exec(let v) = try maybeJSON(rest, keyword: keyword) else {
                throw error("SHELL takes a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]")
            }
            guard !v.isEmpty else { throw error("SHELL needs at least one element, e.g. SHELL [\"/bin/sh\", \"-c\"]") }
            arguments = .exec(v)
        case "COPY", "ADD":
            arguments = try maybeJSONList(rest, keyword: keyword)
            let list = arguments.list
            guard list.count >= 2 else {
                throw error("\(keyword) needs at least one source and a destination, e.g. \(keyword) app/ /app/")
            }
            if case .words = arguments, let dest = list.last, HeredocMarker.parse(dest) != nil {
                throw error("\(keyword) cannot take a heredoc as its destination; put the destination path last")
            }
        case "VOLUME":
            arguments = try maybeJSONList(rest, keyword: keyword)
            guard !arguments.list.isEmpty else { throw error("VOLUME needs at least one path, e.g. VOLUME /data") }
            if arguments.list.contains(where: { DockerfileParser.trim(Array($0.unicodeScalars)[...]).isEmpty }) {
                throw error("VOLUME has an empty path; remove the empty \"\" entry")
            }
        case "FROM":
            let words = Self.splitBlanks(rest)
            try checkFrom(words)
            arguments = .words(words)
        case "EXPOSE":
            let words = Self.splitBlanks(rest)
            guard !words.isEmpty else { throw error("EXPOSE needs at least one port, e.g. EXPOSE 80/tcp") }
            arguments = .words(words)
        case "WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER":
            guard !rest.isEmpty else {
                let example = ["WORKDIR": "/app", "USER": "1000:1000", "STOPSIGNAL": "SIGTERM", "MAINTAINER": "name"][keyword] ?? ""
                throw error("\(keyword) needs exactly one argument, e.g. \(keyword) \(example)")
            }
            arguments = .words([restString])
        case "ENV", "LABEL":
            arguments = .keyValues(try nameValues(rest, keyword: keyword))
        case "ARG":
            arguments = .keyValues(try argNames(rest))
        case "HEALTHCHECK":
            arguments = try healthcheck(rest, flags: &flags)
        default:  // ONBUILD
            guard !rest.isEmpty else { throw error("ONBUILD needs an instruction, e.g. ONBUILD RUN make") }
            // Checked before recursing, so ONBUILD ONBUILD ... cannot nest deeply.
            if String(String.UnicodeScalarView(rest.prefix { !Self.isBlank($0) })).uppercased() == "ONBUILD" {
                throw error("ONBUILD ONBUILD is not allowed; an ONBUILD trigger cannot add another trigger")
            }
            let inner = try parse(rest)
            switch inner.keyword {
            case "ONBUILD": throw error("ONBUILD ONBUILD is not allowed; an ONBUILD trigger cannot add another trigger")
            case "FROM", "MAINTAINER": throw error("\(inner.keyword) is not allowed as an ONBUILD trigger")
            default: arguments = .onbuild(inner)
            }
        }
        return Instruction(keyword: keyword, flags: flags, arguments: arguments, original: original, line: line)
    }

    // MARK: - Keyword

    func unknown(_ word: String) -> StrataError {
        let upper = word.uppercased()
        let best = Self.keywords.map { ($0, Self.distance(upper, $0)) }.min { $0.1 < $1.1 }
        let limit = upper.count >= 6 ? 2 : 1
        let hint = best.flatMap { $0.1 <= limit ? " (did you mean \($0.0)?)" : nil } ?? ""
        let shown = word.count > 40 ? String(word.prefix(37)) + "..." : word
        return error("unknown instruction \"\(shown)\"\(hint); instructions are \(Self.keywords.joined(separator: ", "))")
    }

    /// Edit distance counting a swap of neighbours as one edit (FORM → FROM), for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars.prefix(64)), b = Array(b.unicodeScalars)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }

    // MARK: - Flags

    /// The leading `--…` words (quotes removed, escapes resolved) and the text after them.
    func extractFlags(_ s: ArraySlice<Unicode.Scalar>) -> ([String], ArraySlice<Unicode.Scalar>) {
        var words: [String] = []
        var i = s.startIndex
        while true {
            while i < s.endIndex, s[i].properties.isWhitespace { i += 1 }
            guard i + 1 < s.endIndex, s[i] == "-", s[i + 1] == "-" else { return (words, s[i...]) }
            var word = String.UnicodeScalarView()
            var quote: Unicode.Scalar?
            while i < s.endIndex {
                let c = s[i]
                if quote == nil, c.properties.isWhitespace { break }
                i += 1
                if let q = quote, c == q {
                    quote = nil
                } else if quote == nil, c == "'" || c == "\"" {
                    quote = c
                } else if c == escape {
                    if i < s.endIndex {
                        word.append(s[i])
                        i += 1
                    }
                } else {
                    word.append(c)
                }
            }
            let w = String(word)
            if w == "--" { return (words, s[i...]) }
            words.append(w)
        }
    }

    func parseFlags(_ words: [String], keyword: String) throws -> [Flag] {
        let spec = Self.flagSpecs[keyword] ?? [:]
        var flags: [Flag] = []
        for word in words {
            let body = word.dropFirst(2)
            let name: String
            let value: String?
            if let eq = body.firstIndex(of: "=") {
                name = String(body[..<eq])
                value = String(body[body.index(after: eq)...])
            } else {
                name = String(body)
                value = nil
            }
            guard let kind = spec[name] else {
                let shown = name.count > 40 ? String(name.prefix(37)) + "..." : name
                if spec.isEmpty { throw error("\(keyword) takes no flags; remove --\(shown)") }
                let known = spec.keys.sorted().map { "--" + $0 }.joined(separator: ", ")
                throw error("\(keyword) does not take the flag --\(shown); it takes \(known)")
            }
            if kind != .repeated, flags.contains(where: { $0.name == name }) {
                throw error("--\(name) is given twice; keep one")
            }
            switch kind {
            case .bool:
                if let v = value, !["true", "false"].contains(v.lowercased()) {
                    throw error("--\(name) takes true or false, not \"\(v)\"")
                }
            case .string, .repeated:
                guard value != nil else {
                    throw error("--\(name) needs a value, e.g. --\(name)=\(Self.flagExample[name] ?? "VALUE")")
                }
            }
            flags.append(Flag(name: name, value: value))
        }
        return flags
    }

    static let flagExample: [String: String] = [
        "platform": "linux/amd64", "mount": "type=cache,target=/root/.cache", "network": "none",
        "security": "sandbox", "from": "build", "chown": "1000:1000", "chmod": "644", "exclude": "*.tmp",
        "checksum": "sha256:...", "interval": "30s", "timeout": "10s", "start-period": "5s",
        "start-interval": "5s", "retries": "3",
    ]

    // MARK: - Argument forms

    /// The exec form if `rest` starts with a JSON array of strings, else the shell form.
    func maybeJSON(_ rest: [Unicode.Scalar], keyword: String) throws -> Arguments {
        if let array = try jsonArray(rest, keyword: keyword) { return .exec(array) }
        return .shell(String(String.UnicodeScalarView(rest)))
    }

    /// The exec form if `rest` starts with a JSON array of strings, else whitespace-split words.
    func maybeJSONList(_ rest: [Unicode.Scalar], keyword: String) throws -> Arguments {
        if let array = try jsonArray(rest, keyword: keyword) { return .exec(array) }
        return .words(Self.splitBlanks(rest))
    }

    /// Decodes the JSON array `rest` starts with (text after it is ignored, as Docker's decoder
    /// does); `nil` when it is not valid JSON. A valid array with a non-string is an error.
    func jsonArray(_ rest: [Unicode.Scalar], keyword: String) throws -> [String]? {
        guard rest.first == "[", let end = Self.endOfJSONValue(rest) else { return nil }
        let json = String(String.UnicodeScalarView(rest[..<end]))
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)), let array = object as? [Any] else {
            return nil
        }
        var strings: [String] = []
        for element in array {
            guard let s = element as? String, !(element is NSNumber) else {
                throw error("\(keyword) in JSON (exec) form takes only strings, e.g. \(keyword) [\"echo\", \"1\"]")
            }
            strings.append(s)
        }
        return strings
    }

    /// The index just past the JSON array or object starting at 0, or `nil` if it never closes.
    static func endOfJSONValue(_ s: [Unicode.Scalar]) -> Int? {
        var depth = 0
        var inString = false
        var i = 0
        while i < s.count {
            let c = s[i]
            if inString {
                if c == "\\" { i += 1 } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "[" || c == "{" {
                depth += 1
                if depth > 32 { return nil }  // not an exec form anyone writes; keep the decoder shallow
            } else if c == "]" || c == "}" {
                depth -= 1
                if depth == 0 { return i + 1 }
            }
            i += 1
        }
        return nil
    }

    /// `[\t\v\f\r ]`, the blanks Docker splits words on.
    static func isBlank(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\u{0B}" || c == "\u{0C}" || c == "\r"
    }

    static func splitBlanks(_ s: [Unicode.Scalar]) -> [String] {
        s.split(whereSeparator: isBlank).map { String(String.UnicodeScalarView($0)) }
    }

    func checkFrom(_ words: [String]) throws {
        switch words.count {
        case 1:
            return
        case 3 where words[1].lowercased() == "as":
            let name = words[2].lowercased().unicodeScalars
            let valid = name.first.map { ("a"..."z").contains($0) } == true && name.allSatisfy {
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
            }
            guard valid else {
                throw error("invalid stage name \"\(words[2])\": it must start with a letter and contain only letters, digits, -, _ and .")
            }
        default:
            throw error("FROM takes an image and an optional AS name, e.g. FROM busybox AS build")
        }
    }

    /// `ENV`/`LABEL`: `KEY=value ...`, or the legacy `KEY value with spaces`.
    func nameValues(_ rest: [Unicode.Scalar], keyword: String) throws -> [KeyValue] {
        let words = RawWords.split(rest, escape: escape)
        guard let first = words.first else { throw error("\(keyword) needs at least one KEY=value") }
        if !first.contains("=") {
            let key = rest.prefix { !Self.isBlank($0) }
            let value = rest[key.count...].drop(while: Self.isBlank)
            guard !value.isEmpty else {
                throw error("\(keyword) \(first) has no value; write \(keyword) \(first)=value")
            }
            return [KeyValue(key: String(String.UnicodeScalarView(key)), value: String(String.UnicodeScalarView(value)))]
        }
        return try words.map { word in
            guard let eq = word.firstIndex(of: "=") else {
                throw error("\(keyword): \"\(word)\" has no =; write each pair as KEY=value")
            }
            let key = String(word[..<eq])
            guard !key.isEmpty else { throw error("\(keyword): \"\(word)\" has an empty name before =") }
            return KeyValue(key: key, value: String(word[word.index(after: eq)...]))
        }
    }

    /// `ARG NAME`, `ARG NAME=default`, several per line.
    func argNames(_ rest: [Unicode.Scalar]) throws -> [KeyValue] {
        let words = RawWords.split(rest, escape: escape)
        guard !words.isEmpty else { throw error("ARG needs a name, e.g. ARG VERSION or ARG VERSION=1.0") }
        return try words.map { word in
            guard let eq = word.firstIndex(of: "=") else { return KeyValue(key: word, value: nil) }
            let key = String(word[..<eq])
            guard !key.isEmpty else { throw error("ARG: \"\(word)\" has an empty name before =") }
            return KeyValue(key: key, value: String(word[word.index(after: eq)...]))
        }
    }

    /// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`.
    func healthcheck(_ rest: [Unicode.Scalar], flags: inout [Flag]) throws -> Arguments {
        let typeWord = rest.prefix { !$0.properties.isWhitespace }
        let command = Array(rest[typeWord.count...].drop { $0.properties.isWhitespace })
        let type = String(String.UnicodeScalarView(typeWord)).uppercased()
        switch type {
        case "NONE":
            guard command.isEmpty else { throw error("HEALTHCHECK NONE takes no arguments") }
            guard flags.isEmpty else { throw error("HEALTHCHECK NONE takes no flags; remove --\(flags[0].name)") }
            return .words(["NONE"])
        case "CMD":
            let args = try maybeJSON(command, keyword: "HEALTHCHECK CMD")
            if args == .shell("") || args == .exec([]) {
                throw error("HEALTHCHECK CMD needs a command, e.g. HEALTHCHECK CMD curl -f http://localhost/")
            }
            for f in flags {
                guard let v = f.value else { continue }
                if f.name == "retries" {
                    guard let n = Int32(v), n >= 1 else { throw error("--retries must be a whole number of at least 1, not \"\(v)\"") }
                } else {
                    guard let ns = GoDuration.nanoseconds(v) else {
                        throw error("--\(f.name)=\(v) is not a duration; write e.g. 30s, 1m30s or 500ms")
                    }
                    guard ns >= Healthcheck.minimumDuration else { throw error("--\(f.name) cannot be less than 1ms") }
                }
            }
            return args
        case "":
            throw error("HEALTHCHECK needs CMD <command> or NONE, e.g. HEALTHCHECK CMD curl -f http://localhost/")
        default:
            let shown = type.count > 20 ? String(type.prefix(17)) + "..." : type
            throw error("unknown HEALTHCHECK type \"\(shown)\"; use HEALTHCHECK CMD <command> or HEALTHCHECK NONE")
        }
    }
}

extension Arguments {
    /// The strings of an `.exec` or `.words` form; empty for the others.
    var list: [String] {
        switch self {
        case .exec(let v), .words(let v): return v
        default: return []
        }
    }
}
