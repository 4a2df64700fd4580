import Foundation
import Testing

/// Runs tools/crash-test and tools/stress-test against the built binary.
@Suite(.serialized) struct CrashAndStressTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func script(_ name: String, _ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.repo.appendingPathComponent("tools/\(name)").path] + args
        p.environment = ProcessInfo.processInfo.environment.merging(["STRATA_BIN": CLITests.binary]) { $1 }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let h = try FileHandle(forWritingTo: out)
        p.standardOutput = h
        p.standardError = h
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }

    /// 200 SIGKILLs at named crash points and random times; fsck clean after each.
    @Test func twoHundredKills() throws {
        let (status, out) = try script("crash-test", ["200"])
        #expect(status == 0, "\(out)")
        #expect(out.contains("crash-test: 200 kills"), "\(out)")
    }

    /// 4 writers and a gc loop for 60 s.
    @Test func writersAndGcForAMinute() throws {
        let (status, out) = try script("stress-test", ["60"])
        #expect(status == 0, "\(out)")
        #expect(out.contains("no errors, fsck clean"), "\(out)")
    }
}
