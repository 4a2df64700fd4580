import Foundation
import Testing

/// Rootless (issue #19): tools/rootless-test creates an unprivileged user with subordinate
/// ranges and, as that user through runuser, loads, saves, creates, mounts, runs, builds (RUN
/// steps), copies, diffs and commits; it compares the saved archive and the image IDs with a
/// root store's, the mounted tree with a root mount and `umoci unpack --rootless`, checks that
/// root and user stores stay apart, that a user without ranges is told what to add, and that a
/// hostile layer writes nothing outside the store.
@Suite struct RootlessTests {
    @Test func anUnprivilegedUserKeepsOwnersRunsAndBuilds() async throws {
        guard let r = try await ToolRun.run("bash", "tools/rootless-test", env: ["STRATA_BIN": CLITests.binary]),
              ToolRun.ran(r, "tools/rootless-test") else { return }
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("rootless-test: all checks held"), "\(r.output)")
    }
}
