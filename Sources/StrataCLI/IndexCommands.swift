import ArgumentParser
import Foundation
import Strata

/// `strata find IMAGE PATTERN`: which layer put a file there, from the layer file index.
struct FindCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "find",
        abstract: "Find files in an image by glob, and the layer that added, changed or deleted each.",
        discussion: """
            Answers from the layer file index (no layer is unpacked). `*` and `?` do not cross \
            `/`; a pattern without `/` matches file names at any depth. STATUS is A (the first \
            layer with the path), C (a later layer replaced it) or D (a layer deleted it); LAYER \
            is the layer's position, its chain ID and the history step that made it.

            Examples:
              strata find app:1 'etc/*.conf'
              strata find app:1 '*.so' --format json
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The image.") var image: String
    @Argument(help: "A path or glob, e.g. 'etc/*.conf'.") var pattern: String
    @Option(help: "Output format: table or json.") var format: TableFormat = .table

    func run() async throws {
        let store = try await global.openStore()
        let files = try await store.find(pattern, in: image)
        if format == .json { print(try Output.json(files)); return }
        let rows = files.map { f -> [String] in
            let status = f.status == .added ? "A" : f.status == .changed ? "C" : "D"
            return [status, RawName.escaped(f.path), f.status == .deleted ? "-" : Units.size(f.entry.size), Self.mode(f.entry),
                    "\(f.layer) \(f.chainID.shortHex)", f.createdBy.map { Units.ellipsis($0, 60) } ?? ""]
        }
        print(Output.table(["STATUS", "PATH", "SIZE", "MODE", "LAYER", "CREATED BY"], rows), terminator: "")
    }

    static func mode(_ e: LayerEntry) -> String {
        let type: Character
        switch e.kind {
        case .directory: type = "d"
        case .symlink: type = "l"
        case .hardlink: type = "h"
        case .char: type = "c"
        case .block: type = "b"
        case .fifo: type = "p"
        case .file, .other: type = "-"
        }
        var s = String(type)
        let bits: [(UInt32, Character)] = [(0o400, "r"), (0o200, "w"), (0o100, "x"), (0o40, "r"), (0o20, "w"), (0o10, "x"),
                                           (0o4, "r"), (0o2, "w"), (0o1, "x")]
        for (b, c) in bits { s.append(e.mode & b != 0 ? c : "-") }
        return s + " \(e.uid):\(e.gid)"
    }
}

/// `strata image diff A B`: what changed between two images, from the index.
struct ImageDiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show the files that differ between two images.",
        discussion: """
            One line per path: A (only in the second image), C (content, size, type, mode, owner \
            or link target differ) or D (only in the first), with the sizes. Answers from the \
            layer file index; the same as unpacking both images and comparing the trees.

            Examples:
              strata image diff app:1 app:2
              strata image diff app:1 app:2 --format json
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The first image.") var a: String
    @Argument(help: "The second image.") var b: String
    @Option(help: "Output format: table or json.") var format: TableFormat = .table

    func run() async throws {
        let store = try await global.openStore()
        let changes = try await store.diff(a, b)
        if format == .json { print(try Output.json(changes)); return }
        for c in changes {
            switch c.kind {
            case .added: print("A \(RawName.escaped(c.path)) \(Units.size(c.after?.size ?? 0))")
            case .deleted: print("D \(RawName.escaped(c.path)) \(Units.size(c.before?.size ?? 0))")
            case .changed:
                print("C \(RawName.escaped(c.path)) \(Units.size(c.before?.size ?? 0)) -> \(Units.size(c.after?.size ?? 0)) (\(c.what.joined(separator: ", ")))")
            }
        }
    }
}

/// `strata analyze IMAGE`: wasted space, as dive reports it.
struct AnalyzeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Show per-layer sizes and changes, the image's efficiency and its wasted bytes.",
        discussion: """
            A path that several layers add, change or delete wastes the bytes each layer gave it; \
            the efficiency is the sum of each path's smallest size over the sum of all of them \
            (dive's algorithm). With --ci the rules are checked and the exit status is 1 when one \
            fails, as `dive --ci` does (defaults: --lowest-efficiency 0.9, \
            --highest-user-wasted-percent 0.1; --highest-wasted-bytes off). --dive-compatible \
            reproduces dive's numbers where dive is wrong (opaque directories, directories \
            replaced by files).

            Examples:
              strata analyze app:1
              strata analyze app:1 --format json
              strata analyze app:1 --ci --lowest-efficiency 0.95 --highest-wasted-bytes 20MB
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The image.") var image: String
    @Option(help: "Output format: text or json.") var format: TextFormat = .text
    @Flag(help: "Check the rules and exit 1 when one fails.") var ci = false
    @Option(help: "Fail when the efficiency is below this (0-1, or 'disabled'; default 0.9; --ci).") var lowestEfficiency: String?
    @Option(help: "Fail when more bytes than this are wasted, e.g. 20MB (or 'disabled', the default; --ci).") var highestWastedBytes: String?
    @Option(help: "Fail when wasted / user bytes is above this (0-1, or 'disabled'; default 0.1; --ci).") var highestUserWastedPercent: String?
    @Flag(help: "Reproduce dive's numbers exactly, its mistakes included.") var diveCompatible = false
    @Option(help: "How many inefficient files to list in text output.") var top = 20

    /// A rule's value: nil when disabled, else the ratio in 0...1.
    static func ratio(_ v: String?, default d: Double, flag: String) throws -> Double? {
        guard let v else { return d }
        if v == "disabled" { return nil }
        guard let x = Double(v), (0...1).contains(x) else { throw ValidationError("\(flag) must be between 0 and 1, or 'disabled'") }
        return x
    }

    func rules() throws -> AnalyzeRules {
        var bytes: Int64?
        if let v = highestWastedBytes, v != "disabled" {
            guard let b = AnalyzeRules.parseBytes(v) else { throw ValidationError("--highest-wasted-bytes: invalid size \"\(v)\"") }
            bytes = b
        }
        return AnalyzeRules(lowestEfficiency: try Self.ratio(lowestEfficiency, default: 0.9, flag: "--lowest-efficiency"),
                            highestWastedBytes: bytes,
                            highestUserWastedPercent: try Self.ratio(highestUserWastedPercent, default: 0.1, flag: "--highest-user-wasted-percent"))
    }

    func validate() throws { _ = try rules() }

    func run() async throws {
        let store = try await global.openStore()
        let a = try await store.analyze(image, options: AnalyzeOptions(diveCompatible: diveCompatible))
        var results: [AnalyzeRules.Result] = []
        if ci {
            results = try rules().evaluate(a)
        }
        if format == .json {
            struct Report: Encodable { var analysis: ImageAnalysis; var rules: [AnalyzeRules.Result]?; var passed: Bool? }
            print(try Output.json(Report(analysis: a, rules: ci ? results : nil, passed: ci ? results.allSatisfy(\.passed) : nil)))
        } else {
            let rows = a.layers.map { l in
                [String(l.position), l.chainID.shortHex, Units.size(l.sizeBytes), String(l.added), String(l.changed), String(l.removed),
                 Units.ellipsis(l.createdBy ?? "", 60)]
            }
            print(Output.table(["LAYER", "CHAIN ID", "SIZE", "ADDED", "CHANGED", "REMOVED", "CREATED BY"], rows), terminator: "")
            print("")
            print("Total image size: \(Units.size(a.sizeBytes))")
            print("Potential wasted space: \(Units.size(a.wastedBytes))")
            print("Image efficiency score: \(String(format: "%.4f", a.efficiency * 100)) %")
            if !a.inefficientFiles.isEmpty {
                print("")
                let rows = a.inefficientFiles.prefix(top).map { [String($0.count), Units.size($0.wastedBytes), RawName.escaped($0.path)] }
                print(Output.table(["COUNT", "WASTED", "PATH"], rows), terminator: "")
                if a.inefficientFiles.count > top { print("… \(a.inefficientFiles.count - top) more (--top N or --format json)") }
            }
            if ci {
                print("")
                for r in results { print(r.passed ? "  PASS: \(r.rule)" : "  FAIL: \(r.rule): \(r.message)") }
                print(results.allSatisfy(\.passed) ? "Result:PASS" : "Result:FAIL")
            }
        }
        if ci, !results.allSatisfy(\.passed) { throw CommandFailed(status: 1) }
    }
}

/// `strata reindex`: builds the file index of layers stored before it existed.
struct ReindexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Index the files of layers that have no file index yet (or, with --force, all).",
        discussion: """
            Layers are indexed when they are loaded, imported, committed or pulled; layers stored \
            before the index existed are indexed on first use by find, image diff and analyze, or \
            all at once by this command.

            Examples:
              strata reindex
              strata reindex --force
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Drop every index and build it again.") var force = false

    func run() async throws {
        let store = try await global.openStore()
        let n = try await store.reindex(force: force)
        print("Indexed \(n) layer\(n == 1 ? "" : "s")")
    }
}
