import ArgumentParser
import Foundation
import OCI
import StrataBuild

/// `strata dockerfile …`: tools for Dockerfiles that do not build anything.
struct DockerfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dockerfile",
        abstract: "Inspect Dockerfiles without building.",
        subcommands: [DockerfileParseCommand.self])
}

/// `strata dockerfile parse [--format json] FILE`: the parsed instructions.
struct DockerfileParseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Print the instructions of a Dockerfile as strata's parser sees them.",
        discussion: """
            Parses FILE (or standard input for -) exactly as `strata build` does, without \
            expanding variables, and prints one row per instruction: the line it starts on, \
            its stage, keyword, flags and arguments. --format json prints the same for tools \
            and editors, with the argument form (exec, shell, words, keyValues, onbuild) and \
            heredoc bodies. A file that does not parse prints one `error: Dockerfile line N: …` \
            line and exits 1.

            Examples:
              strata dockerfile parse Dockerfile
              strata dockerfile parse --format json ./app/Dockerfile
              cat Dockerfile | strata dockerfile parse -
            """)

    /// Accepted like every command's, though parsing never opens the store.
    @OptionGroup var global: GlobalOptions
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table
    @Argument(help: "The Dockerfile to parse, or - for standard input.")
    var file: String

    func run() async throws {
        let text = try DockerfileParseCommand.read(file)
        let parsed = try Dockerfile.parse(text)
        let rows = DockerfileListing(parsed)
        if format == .json {
            print(try Output.json(rows))
        } else {
            print(rows.table(), terminator: "")
        }
    }

    /// Dockerfiles larger than this are refused rather than read into memory.
    static let maximumSize = 32 << 20

    /// Reads a Dockerfile (`-` for stdin), at most ``maximumSize`` bytes.
    static func read(_ path: String) throws -> String {
        var data = Data()
        var isDirectory: ObjCBool = false
        if path != "-" {
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw StrataError(.invalidArgument, "cannot read Dockerfile \(path): no such file")
            }
            guard !isDirectory.boolValue else {
                let inside = URL(fileURLWithPath: path).appendingPathComponent("Dockerfile").path
                throw StrataError(.invalidArgument, "cannot read Dockerfile \(path): it is a directory; name the file, e.g. \(inside)")
            }
        }
        do {
            let handle = path == "-" ? FileHandle.standardInput : try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { if path != "-" { try? handle.close() } }
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                data.append(chunk)
                guard data.count <= maximumSize else {
                    throw StrataError(.invalidArgument, "Dockerfile \(path) is larger than \(maximumSize >> 20) MiB; is it really a Dockerfile?")
                }
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(.io, "cannot read Dockerfile \(path): \(error.localizedDescription)", cause: error)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw StrataError(.dockerfileSyntax, "Dockerfile \(path) is not UTF-8 text")
        }
        return text
    }
}

/// The flat, stage-annotated view `dockerfile parse` prints.
struct DockerfileListing: Encodable {
    struct Row: Encodable {
        var line: Int
        /// Stage index; `nil` for an `ARG` before the first `FROM`.
        var stage: Int?
        var stageName: String?
        var keyword: String
        var flags: [StrataBuild.Flag]
        var arguments: Arguments
        var heredocs: [Heredoc]
        var original: String
    }

    var escape: String
    var syntax: String?
    var instructions: [Row]

    init(_ file: Dockerfile) {
        escape = file.escape
        syntax = file.syntax
        func row(_ i: Instruction, _ stage: Stage?) -> Row {
            Row(line: i.line, stage: stage?.index, stageName: stage?.name, keyword: i.keyword, flags: i.flags,
                arguments: i.arguments, heredocs: i.heredocs, original: i.original)
        }
        var rows = file.metaArgs.map { row($0, nil) }
        for s in file.stages {
            rows.append(row(s.from, s))
            rows += s.instructions.map { row($0, s) }
        }
        instructions = rows
    }

    func table() -> String {
        let body = instructions.map { r -> [String] in
            let stage = r.stage.map { i in r.stageName.map { "\(i) (\($0))" } ?? String(i) } ?? "-"
            let flags = r.flags.map { f in "--" + f.name + (f.value.map { "=" + $0 } ?? "") }.joined(separator: " ")
            var args = Self.render(r.arguments)
            for h in r.heredocs {
                let lines = h.content.split(separator: "\n", omittingEmptySubsequences: false).count - 1
                args += " [heredoc \(h.name): \(lines) line\(lines == 1 ? "" : "s")]"
            }
            return [String(r.line), stage, r.keyword, flags, args]
        }
        return Output.table(["LINE", "STAGE", "INSTRUCTION", "FLAGS", "ARGUMENTS"], body)
    }

    static func render(_ a: Arguments) -> String {
        switch a {
        case .exec(let v):
            let data = (try? JSONSerialization.data(withJSONObject: v, options: [.withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case .shell(let s): return s
        case .words(let w): return w.joined(separator: " ")
        case .keyValues(let kv): return kv.map { $0.key + ($0.value.map { "=" + $0 } ?? "") }.joined(separator: " ")
        case .onbuild(let i): return i.original
        }
    }
}
