import OCI

extension Instruction {
    /// Keywords whose arguments Docker expands (`$V`, `${V:-x}`, quotes) before it runs them.
    /// `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK`, `MAINTAINER` and `ONBUILD` are left
    /// as written: a shell (or the trigger's own build) sees them.
    public static let expandedKeywords: Set<String> = [
        "ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    ]

    /// Flags whose values Docker expands.
    static let expandedFlags: Set<String> = ["from", "chown", "chmod", "platform", "checksum", "exclude", "mount"]

    /// Whether Docker expands variables in this instruction.
    public var expandsVariables: Bool { Self.expandedKeywords.contains(keyword) }

    /// This instruction with variables expanded and quotes removed the way Docker does before
    /// running it; instructions Docker does not expand come back unchanged.
    ///
    /// - `FROM` (use the meta args as `env`), `COPY`/`ADD` sources and destination, `WORKDIR`,
    ///   `USER`, `STOPSIGNAL`, `VOLUME`: each word expanded.
    /// - `EXPOSE`: each word expanded, then split on blanks (`EXPOSE $PORTS`).
    /// - `ENV`, `LABEL`, `ARG`: keys and values expanded, all against `env` as given (so
    ///   `ENV abc=bye def=$abc` sees the old `abc`, as in Docker); an `ARG` without a default
    ///   keeps `value == nil`.
    /// - Flags `--from`, `--chown`, `--chmod`, `--platform`, `--checksum`, `--exclude`, `--mount`.
    ///
    /// Heredoc bodies are not touched here: expand a body with ``ShellLexer/expandHeredoc(_:env:)``
    /// when its ``Heredoc/expand`` is true.
    ///
    /// ```swift
    /// let copy = try Dockerfile.parse("FROM a\nCOPY --chown=$U ${SRC:-app} /opt/$U/\n").stages[0].instructions[0]
    /// let e = try copy.expanded(env: ["U": "1000"])
    /// e.arguments      // .words(["app", "/opt/1000/"])
    /// e.flag("chown")  // "1000"
    /// ```
    ///
    /// - Throws: ``StrataError`` (`.dockerfileSyntax` or, for `${V?msg}`, `.invalidArgument`)
    ///   whose message starts with `Dockerfile line N:`.
    public func expanded(env: [String: String], escape: String = "\\") throws -> Instruction {
        guard expandsVariables else { return self }
        let lexer = ShellLexer(escape: escape)
        func x(_ s: String) throws -> String {
            do {
                return try lexer.expand(s, env: env)
            } catch let e as StrataError {
                throw StrataError(e.code, "Dockerfile line \(line): \(e.message)", cause: e)
            }
        }
        var out = self
        out.flags = try flags.map { f in
            guard Self.expandedFlags.contains(f.name), let v = f.value else { return f }
            return Flag(name: f.name, value: try x(v))
        }
        switch arguments {
        case .words(let w) where keyword == "EXPOSE":
            out.arguments = .words(try w.flatMap { try x($0).split(whereSeparator: \.isWhitespace).map(String.init) })
        case .words(let w):
            // A heredoc source (`COPY <<EOF /dst`) keeps its marker.
            out.arguments = .words(try w.map { heredoc(forWord: $0) == nil ? try x($0) : $0 })
        case .exec(let v):
            out.arguments = .exec(try v.map(x))
        case .keyValues(let kvs):
            out.arguments = .keyValues(try kvs.map { KeyValue(key: try x($0.key), value: try $0.value.map(x)) })
        case .shell, .onbuild:
            break
        }
        return out
    }
}
