import Foundation
import Testing

/// Layer application is proven against `umoci unpack` on generated layer stacks (DESIGN:
/// "Exactly" is proven by differential tests): tools/fuzz-layers writes 300 random stacks
/// (whiteouts and opaque markers at every depth and at the root, implicit parents, hardlinks,
/// xattrs and file capabilities, ids above 2^21, sub-second mtimes, deep, long and non-UTF-8
/// paths, ...) into one OCI layout, unpacks each with umoci and with both snapshotters, and
/// compares the trees and the file index exactly. Its output names every differing path.
@Suite struct LayerFuzzTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Fixed, so that a failure reproduces: `tools/fuzz-layers 300 1 --stack I --keep DIR`.
    static let seed = 1
    static let stacks = 300

    /// Async, and the wait is a termination handler: a minutes-long blocking wait would hold one
    /// of the two cooperative threads of this machine and starve other suites' async work.
    @Test func layerStacksUnpackExactlyAsUmociDoes() async throws {
        guard RemoteContextTests.available("umoci", "python3") else { return }
        guard geteuid() == 0 else {
            // umoci keeps owners and xattrs only as root, and the overlay snapshotter mounts.
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but not root: tools/fuzz-layers needs root") }
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.repo.appendingPathComponent("tools/fuzz-layers").path,
                       "\(Self.stacks)", "\(Self.seed)", "--strata", CLITests.binary]
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-layers-\(UUID().uuidString).log")
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
        if let launchError { Issue.record("cannot run tools/fuzz-layers: \(launchError)"); return }
        let output = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(output)")
        #expect(output.contains("fuzz-layers: \(Self.stacks) stacks, 0 disagreements"), "\(output)")
    }
}
