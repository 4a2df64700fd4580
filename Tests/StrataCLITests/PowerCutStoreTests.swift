import Foundation
import Testing

/// Law 11 (issue #17): tools/powercut-test runs every mutating command on a store that lives on
/// the power-cut filesystem (tools/powercut), cuts the power right after it returns or at a
/// random moment while it runs, and checks the store after a remount without a gc first: no
/// corruption, nothing half-visible, every reported success kept; then gc and a clean fsck.
/// 100 rounds spread over load, import, pull, save, commit, build, create, rm, volume create/rm,
/// tag, rmi, image prune, builder prune, gc, reindex, fsck --repair and migrations, plus a
/// brand-new store and two two-process scenarios: 103 cuts.
@Suite struct PowerCutStoreTests {
    /// Fixed, so that a failure reproduces: `tools/powercut-test 100 17` (timing still varies).
    static let seed = 17
    static let rounds = 100

    /// Async, and the wait is a termination handler (as in LayerFuzzTests): two minutes of
    /// cuts must not hold one of this machine's two cooperative threads.
    @Test func powerCutsDuringEveryMutatingCommand() async throws {
        guard RemoteContextTests.available("python3", "cc", "pkg-config", "runc", "docker-registry", "busybox", "curl") else { return }
        guard let r = try await ToolRun.run("bash", "tools/powercut-test", ["\(Self.rounds)", "\(Self.seed)"], env: ["STRATA_BIN": CLITests.binary]),
              ToolRun.ran(r, "tools/powercut-test") else { return }
        let (status, output) = r
        #expect(status == 0, "\(output)")
        #expect(output.contains("powercut-test: \(Self.rounds) random rounds (seed \(Self.seed)"), "\(output)")
        #expect(output.contains("powercut-test: the two scenarios held too"), "\(output)")
    }
}
