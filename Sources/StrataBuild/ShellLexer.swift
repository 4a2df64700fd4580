import OCI

/// Docker's word processing for Dockerfile instructions: quotes, escapes and variables.
///
/// Handles `'single'` and `"double"` quotes, the escape character (`\` or `` ` ``), and
/// `$V`, `${V}`, `${V:-default}`, `${V-default}`, `${V:+alt}`, `${V+alt}`, `${V:?message}`
/// and `${V?message}`. Unlike a shell it never splits words on the *values* of variables
/// and never globs.
///
/// ```swift
/// let lexer = ShellLexer()
/// try lexer.expand("\"$HOME\"/bin", env: ["HOME": "/root"])          // "/root/bin"
/// try lexer.expandWords("a=\"x y\" b=${B:-2}", env: [:])              // ["a=x y", "b=2"]
/// ```
public struct ShellLexer: Sendable, Equatable {
    /// The escape character, `\` or `` ` ``.
    public let escape: Character

    /// A lexer using `escape` (the Dockerfile's `# escape=` directive, `\` by default).
    public init(escape: String = "\\") {
        self.escape = escape.first ?? "\\"
    }

    /// Expands one word: quotes removed, escapes resolved, variables substituted.
    ///
    /// - Throws: ``StrataError`` `.dockerfileSyntax` for `${V?message}` with `V` unset, an
    ///   unterminated quote or `${`, or a bad substitution.
    public func expand(_ word: String, env: [String: String]) throws -> String {
        throw StrataError(.internalError, "word expansion is not implemented yet")
    }

    /// Splits `text` into words on unquoted whitespace, then expands each word; used for
    /// `ENV`, `LABEL`, `COPY` and `ADD` values.
    public func expandWords(_ text: String, env: [String: String]) throws -> [String] {
        throw StrataError(.internalError, "word expansion is not implemented yet")
    }

    /// Expands variables in a heredoc body or other text where quotes are literal
    /// (only `$` forms and escaped `$` are processed).
    public func expandHeredoc(_ text: String, env: [String: String]) throws -> String {
        throw StrataError(.internalError, "word expansion is not implemented yet")
    }
}
