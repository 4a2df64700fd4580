import Foundation
import Testing

/// Runs a script of tools/ (the repository's, found from this file) and waits for it through
/// its termination handler, so a minutes-long run never holds one of this machine's two
/// cooperative threads and starves other suites' async work. Output (stdout and stderr
/// together) goes through a temp file: no pipe to fill.
enum ToolRun {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Exit status and output; nil when it could not start (recorded as an issue).
    static func run(_ interpreter: String, _ script: String, _ args: [String] = [], env: [String: String] = [:]) async throws -> (status: Int32, output: String)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [interpreter, repo.appendingPathComponent(script).path] + args
        if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tool-run-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let h = try FileHandle(forWritingTo: out)
        p.standardOutput = h
        p.standardError = h
        var launchError: (any Error)?
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            p.terminationHandler = { _ in done.resume() }
            do { try p.run() } catch { launchError = error; p.terminationHandler = nil; done.resume() }
        }
        if let launchError { Issue.record("cannot run \(script): \(launchError)"); return nil }
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }

    /// Exit 77 means the tool cannot run here (no FUSE, not root, a peer missing): a skip on
    /// a user's machine, a failure under CI=true. True when the result should be checked.
    static func ran(_ r: (status: Int32, output: String), _ what: String) -> Bool {
        guard r.status == 77 else { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but \(what) cannot run: \(r.output)") }
        return false
    }
}
