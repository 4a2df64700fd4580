import Foundation
import Testing

/// Law 11 needs a filesystem that drops what was not synced: tools/powercut (a FUSE daemon,
/// issue #17). Its selftest proves the tool itself, a few seconds: unsynced writes, creates,
/// renames and unlinks are undone by a cut, synced ones survive, syncfs commits everything
/// through the preload, and SQLite (WAL and rollback journal) keeps its committed rows intact.
@Suite struct PowerCutToolTests {
    /// Async, and the wait is a termination handler (as in LayerFuzzTests): no cooperative
    /// thread is blocked while the FUSE daemon mounts and unmounts.
    @Test func selftestOfThePowerCutFilesystem() async throws {
        guard RemoteContextTests.available("python3", "cc", "pkg-config") else { return }
        guard let r = try await ToolRun.run("python3", "tools/powercut/selftest"), ToolRun.ran(r, "the power-cut filesystem") else { return }
        let (status, output) = r
        #expect(status == 0, "\(output)")
        #expect(output.contains("powercut selftest:") && output.contains("checks passed"), "\(output)")
    }
}
