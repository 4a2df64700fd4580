import OCI

/// The rules of a `.dockerignore` file, with Docker's semantics.
///
/// Lines starting with `#` are comments; blank lines are ignored; each pattern is cleaned
/// like Go's `filepath.Clean` (a leading `/` or `./` is dropped); `*`, `?`, `[...]` match
/// within one path component and `**` matches any number of components; a pattern starting
/// with `!` re-includes what earlier patterns excluded. The last matching pattern wins, and
/// a pattern that matches a directory also matches everything below it.
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
    }

    /// The patterns in file order.
    public private(set) var patterns: [Pattern] = []

    /// Parses `.dockerignore` text.
    ///
    /// - Throws: ``StrataError`` `.dockerfileSyntax` for a malformed pattern (e.g. an
    ///   unterminated `[`), naming the line.
    public init(_ text: String) throws {
        throw StrataError(.internalError, ".dockerignore parsing is not implemented yet")
    }

    /// Whether `relativePath` (like `a/b/c`, relative to the context root) is excluded from
    /// the build context.
    public func isExcluded(_ relativePath: String) -> Bool {
        false
    }

    /// `true` when some pattern starts with `!`: a context walker can then not skip an
    /// excluded directory without looking inside, because something below may be re-included.
    public var hasExceptions: Bool {
        patterns.contains { $0.isException }
    }
}
