import OCI

/// Turns Dockerfile text into a ``Dockerfile``. Use ``Dockerfile/parse(_:)``.
struct DockerfileParser {
    let text: String

    init(_ text: String) { self.text = text }

    func parse() throws -> Dockerfile {
        throw StrataError(.internalError, "Dockerfile parsing is not implemented yet")
    }
}

/// Heredoc marker words such as `<<EOF`, `<<-"EOF"`.
enum HeredocMarker {
    static func parse(_ word: String) -> (name: String, expand: Bool, chomp: Bool)? {
        nil
    }
}
