import Foundation
import Testing

/// Running peer tools from the parser tests (named apart from other suites' helpers).
enum ParserPeer {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    static func available(_ tool: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
    }

    /// True when the tools are there; records an issue under CI=true when they are not
    /// (a developer's machine may skip).
    static func require(_ tools: String...) -> Bool {
        let missing = tools.filter { !available($0) }
        if missing.isEmpty { return true }
        if isCI { Issue.record("CI=true and peer tool(s) missing: \(missing.joined(separator: ", ")); run tools/setup") }
        return false
    }

    /// Runs a program to completion; output goes through temp files (no pipe deadlock).
    static func run(_ args: [String], env: [String: String] = [:], cwd: URL? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        if let cwd { p.currentDirectoryURL = cwd }
        let dir = FileManager.default.temporaryDirectory
        let out = dir.appendingPathComponent("parser-out-\(UUID().uuidString)")
        let err = dir.appendingPathComponent("parser-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Output(status: p.terminationStatus,
                      stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

/// A temporary directory owned by one test, removed when released.
final class ParserTempDir: @unchecked Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("strata-parser-\(UUID().uuidString.prefix(12))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `text` to `name` (creating parent directories) and returns its URL.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> URL {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
        return file
    }
}
