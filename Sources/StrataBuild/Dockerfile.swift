import OCI

/// A parsed Dockerfile: parser directives, the `ARG`s before the first `FROM`, and the stages.
///
/// Parsing is purely syntactic: no variable is expanded and no quote is removed, so a tool
/// can show the file as written. The builder expands words later with ``ShellLexer``.
///
/// ```swift
/// let file = try Dockerfile.parse("""
///     ARG BASE=busybox
///     FROM $BASE AS build
///     RUN echo hi > /hello
///     """)
/// file.metaArgs[0].arguments      // .keyValues([KeyValue(key: "BASE", value: "busybox")])
/// file.stages[0].name             // "build"
/// file.stages[0].instructions[0]  // RUN, .shell("echo hi > /hello"), line 3
/// ```
public struct Dockerfile: Sendable, Equatable, Codable {
    /// The escape character: `\` (default) or `` ` `` (set by `# escape=` at the top).
    public var escape: String
    /// The `# syntax=` directive, recorded only (strata never switches frontends).
    public var syntax: String?
    /// `ARG` instructions written before the first `FROM`; they may be used in `FROM` lines.
    public var metaArgs: [Instruction]
    /// The build stages in file order; there is at least one.
    public var stages: [Stage]

    /// A Dockerfile value built by hand (tools, tests); use ``parse(_:)`` for text.
    public init(escape: String = "\\", syntax: String? = nil, metaArgs: [Instruction] = [], stages: [Stage] = []) {
        self.escape = escape
        self.syntax = syntax
        self.metaArgs = metaArgs
        self.stages = stages
    }

    /// Parses Dockerfile text.
    ///
    /// - Throws: ``StrataError`` with code `.dockerfileSyntax` and a message that starts with
    ///   `Dockerfile line N:` naming what is wrong and how to fix it (unknown instruction, no
    ///   `FROM`, a flag an instruction does not take, an unterminated heredoc, ...).
    public static func parse(_ text: String) throws -> Dockerfile {
        try DockerfileParser(text).parse()
    }

    /// The stage called `name` (case-insensitive), or the stage with that index when `name`
    /// is a decimal number, as `COPY --from=` and `--target` resolve them.
    public func stage(named name: String) -> Stage? {
        let lower = name.lowercased()
        if let s = stages.first(where: { $0.name == lower }) { return s }
        if let i = Int(name), i >= 0, i < stages.count { return stages[i] }
        return nil
    }

    /// The `m` of the classic builder's `Step n/m`: the meta `ARG`s, plus every stage's `FROM`
    /// and instructions (Docker's count).
    public var stepCount: Int {
        stages.reduce(metaArgs.count) { $0 + 1 + $1.instructions.count }
    }
}

/// One build stage: a `FROM` line and the instructions up to the next `FROM`.
public struct Stage: Sendable, Equatable, Codable {
    /// 0-based position of the stage in the file.
    public var index: Int
    /// The `AS name`, lowercased, if given.
    public var name: String?
    /// The `FROM` instruction: `.words([image])` with the image as written (unexpanded),
    /// flags such as `--platform`.
    public var from: Instruction
    /// The instructions after `FROM`, in file order.
    public var instructions: [Instruction]

    /// A stage; `name` should already be lowercased.
    public init(index: Int, name: String?, from: Instruction, instructions: [Instruction] = []) {
        self.index = index
        self.name = name
        self.from = from
        self.instructions = instructions
    }
}

/// One instruction such as `RUN --mount=type=cache,target=/c make` or `COPY --from=b /a /b`.
public struct Instruction: Sendable, Equatable, Codable {
    /// The instruction keyword, uppercased: `"RUN"`, `"COPY"`, ...
    public var keyword: String
    /// The `--name[=value]` flags written before the arguments, in order.
    public var flags: [Flag]
    /// The arguments, in the form the keyword takes (see ``Arguments``).
    public var arguments: Arguments
    /// Heredocs introduced on the line (`RUN <<EOF`, `COPY <<A <<B /dest/`), in order.
    public var heredocs: [Heredoc]
    /// The instruction as written, with line continuations joined (escape and newline removed)
    /// and comment lines inside it dropped; heredoc bodies are not included.
    /// Used for `Step n/m : …` output, e.g. `RUN echo hi > /hello`.
    public var original: String
    /// The 1-based line the instruction starts on.
    public var line: Int

    /// An instruction built by hand; `keyword` should be uppercase.
    public init(keyword: String, flags: [Flag] = [], arguments: Arguments, heredocs: [Heredoc] = [],
                original: String, line: Int) {
        self.keyword = keyword
        self.flags = flags
        self.arguments = arguments
        self.heredocs = heredocs
        self.original = original
        self.line = line
    }

    /// The value of the last flag called `name` (without `--`); `""` for a flag given
    /// without a value; `nil` when absent.
    ///
    /// ```swift
    /// copy.flag("from")   // "build" for COPY --from=build a b
    /// ```
    public func flag(_ name: String) -> String? {
        guard let f = flags.last(where: { $0.name == name }) else { return nil }
        return f.value ?? ""
    }

    /// All values of a repeatable flag such as `--mount` or `--exclude`, in order.
    public func flagValues(_ name: String) -> [String] {
        flags.filter { $0.name == name }.map { $0.value ?? "" }
    }

    /// Whether a boolean flag such as `--link` is on (`--link` or `--link=true`).
    public func isFlagSet(_ name: String) -> Bool {
        guard let f = flags.last(where: { $0.name == name }) else { return false }
        return f.value == nil || f.value?.lowercased() == "true"
    }

    /// The heredoc a `COPY`/`ADD` source word (`<<EOF`, `<<-"EOF"`) refers to, or `nil` when
    /// the word is an ordinary path.
    public func heredoc(forWord word: String) -> Heredoc? {
        guard let marker = Heredoc.marker(word) else { return nil }
        return heredocs.first { $0.name == marker.name }
    }
}

/// An instruction flag: `--from=build` is `Flag(name: "from", value: "build")`,
/// `--link` is `Flag(name: "link", value: nil)`.
public struct Flag: Sendable, Equatable, Codable {
    /// The flag name without the leading `--`.
    public var name: String
    /// The text after `=`, as written (unexpanded); `nil` when there was no `=`.
    public var value: String?

    /// A flag named without its leading `--`.
    public init(name: String, value: String? = nil) {
        self.name = name
        self.value = value
    }
}

/// A `KEY=value` pair of `ENV`, `LABEL` or `ARG`, raw: quotes and `$` are kept as written,
/// to be expanded with ``ShellLexer/expand(_:env:)``. `value` is `nil` for `ARG NAME`
/// without a default.
public struct KeyValue: Sendable, Equatable, Codable {
    /// The name, as written (quotes kept).
    public var key: String
    /// The value after `=`, as written; `nil` for `ARG NAME` without a default.
    public var value: String?

    /// A pair as written in the Dockerfile.
    public init(key: String, value: String?) {
        self.key = key
        self.value = value
    }
}

/// A here-document: `RUN <<EOF` ... `EOF`.
///
/// `content` is the body with every line's newline kept (so `"echo hi\n"`) and, for `<<-`,
/// leading tabs already removed from each line.
public struct Heredoc: Sendable, Equatable, Codable {
    /// The delimiter word without quotes, e.g. `EOF`.
    public var name: String
    /// The body (see the type's documentation).
    public var content: String
    /// `false` when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): the body is then taken
    /// literally; otherwise variables in it are expanded at build time.
    public var expand: Bool
    /// `true` for `<<-`: leading tabs were stripped from the body lines.
    public var chomp: Bool

    /// A heredoc; `content` is the body as the parser stores it (tabs already removed for `<<-`).
    public init(name: String, content: String, expand: Bool = true, chomp: Bool = false) {
        self.name = name
        self.content = content
        self.expand = expand
        self.chomp = chomp
    }

    /// Parses a heredoc marker word (`<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'E F'`), returning the
    /// delimiter name and whether the body is expanded and chomped; `nil` for other words.
    public static func marker(_ word: String) -> (name: String, expand: Bool, chomp: Bool)? {
        HeredocMarker.parse(word)
    }
}

/// The arguments of an instruction, in the form its keyword takes.
///
/// | keyword | form |
/// |---|---|
/// | RUN, CMD, ENTRYPOINT | `.exec` if a valid JSON string array, else `.shell` |
/// | SHELL | `.exec` (required) |
/// | HEALTHCHECK | `.exec`/`.shell` of the command after `CMD`, or `.words(["NONE"])` |
/// | COPY, ADD, VOLUME | `.exec` if a valid JSON string array, else `.words` |
/// | FROM, EXPOSE | `.words` (whitespace-split) |
/// | WORKDIR, USER, STOPSIGNAL, MAINTAINER | `.words([rest of line])` |
/// | ENV, LABEL, ARG | `.keyValues` |
/// | ONBUILD | `.onbuild(instruction)` |
public indirect enum Arguments: Sendable, Equatable, Codable {
    /// A JSON (exec) form array, strings decoded.
    case exec([String])
    /// The shell form: the rest of the line as written (flags removed).
    case shell(String)
    /// Whitespace-separated words, raw: quotes kept, nothing expanded.
    case words([String])
    /// `KEY=value` pairs (legacy `ENV k v w` gives one pair `k` = `v w`).
    case keyValues([KeyValue])
    /// The instruction after `ONBUILD`.
    case onbuild(Instruction)

    private enum CodingKeys: String, CodingKey { case form, values, pairs, instruction, command }

    /// Decodes the JSON `dockerfile parse --format json` prints: `{"form": "exec", "values": [...]}`,
    /// `{"form": "shell", "command": "..."}`, `{"form": "keyValues", "pairs": [...]}`,
    /// `{"form": "onbuild", "instruction": {...}}`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .form) {
        case "exec": self = .exec(try c.decode([String].self, forKey: .values))
        case "shell": self = .shell(try c.decode(String.self, forKey: .command))
        case "words": self = .words(try c.decode([String].self, forKey: .values))
        case "keyValues": self = .keyValues(try c.decode([KeyValue].self, forKey: .pairs))
        case "onbuild": self = .onbuild(try c.decode(Instruction.self, forKey: .instruction))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .form, in: c, debugDescription: "unknown arguments form \(other)")
        }
    }

    /// Encodes in the form ``init(from:)`` reads.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .exec(let v): try c.encode("exec", forKey: .form); try c.encode(v, forKey: .values)
        case .shell(let s): try c.encode("shell", forKey: .form); try c.encode(s, forKey: .command)
        case .words(let v): try c.encode("words", forKey: .form); try c.encode(v, forKey: .values)
        case .keyValues(let p): try c.encode("keyValues", forKey: .form); try c.encode(p, forKey: .pairs)
        case .onbuild(let i): try c.encode("onbuild", forKey: .form); try c.encode(i, forKey: .instruction)
        }
    }
}
