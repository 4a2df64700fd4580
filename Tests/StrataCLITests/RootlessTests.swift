import Foundation
import Testing
@testable import StrataCLI

/// Rootless (issue #19): tools/rootless-test creates an unprivileged user with subordinate
/// ranges and, as that user through runuser, loads, saves, creates, mounts (overlay with
/// userxattr inside `strata unshare`, and a copy container), runs, builds (RUN steps that
/// delete and replace), copies, diffs and commits; it compares the saved archive and the image
/// IDs with a root store's, the mounted trees with a root mount and `umoci unpack --rootless`,
/// checks that root and user stores stay apart and that a user without ranges is told what to
/// add, and runs the hostile images of tools/hostile-layers through the user's store: the same
/// refusals as a root store, the directory they aim at unchanged, and no file owned by the user
/// outside the store. A process of the user's outside the namespace (an embedder that did not
/// enter it) is told what to do when it unpacks or runs, and examples/embed, when built, enters
/// the namespace through `UserNamespace.enterIfNeeded()`.
@Suite struct RootlessTests {
    @Test func anUnprivilegedUserKeepsOwnersRunsAndBuilds() async throws {
        guard let r = try await ToolRun.run("bash", "tools/rootless-test", env: ["STRATA_BIN": CLITests.binary]),
              ToolRun.ran(r, "tools/rootless-test") else { return }
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("rootless-test: all checks held"), "\(r.output)")
        #expect(r.output.contains("rootless-test: hostile images: 19 cases"), "\(r.output)")
    }

    /// `strata unshare CMD…`: CMD's own `-h` or `--help` must not keep strata out of the
    /// namespace (help needs no store, so strata skips entering for it).
    @Test func helpFlagsOfTheUnsharedCommandAreNotStrata() {
        #expect(Rootless.helpScope(["unshare", "ls", "-h"]) == ["unshare", "ls"])
        #expect(Rootless.helpScope(["--root", "/s", "unshare", "--help"]) == ["--root", "/s", "unshare", "--help"])
        #expect(Rootless.helpScope(["--root=/s", "unshare"]) == ["--root=/s", "unshare"])
        #expect(Rootless.helpScope(["images", "-h"]) == ["images", "-h"])
        #expect(Rootless.helpScope(["run", "app", "unshare", "--help"]) == ["run", "app", "unshare", "--help"])
    }
}
