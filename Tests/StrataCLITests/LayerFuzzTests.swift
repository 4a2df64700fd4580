import Foundation
import Testing

/// Layer application is proven against `umoci unpack` on generated layer stacks (DESIGN:
/// "Exactly" is proven by differential tests): tools/fuzz-layers writes 300 random stacks
/// (whiteouts and opaque markers at every depth and at the root, implicit parents, hardlinks,
/// xattrs and file capabilities, ids above 2^21, sub-second mtimes, deep, long and non-UTF-8
/// paths, ...) into one OCI layout, unpacks each with umoci and with both snapshotters, and
/// compares the trees and the file index exactly. Its output names every differing path.
@Suite struct LayerFuzzTests {
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
        guard let (status, output) = try await ToolRun.run("python3", "tools/fuzz-layers",
                                                           ["\(Self.stacks)", "\(Self.seed)", "--strata", CLITests.binary]) else { return }
        #expect(status == 0, "\(output)")
        #expect(output.contains("fuzz-layers: \(Self.stacks) stacks, 0 disagreements"), "\(output)")
    }
}
