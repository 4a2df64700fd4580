import Foundation
import Testing

/// `run -u` resolves users as dockerd does (runc's libcontainer/user), proven against
/// `podman run -u` on generated /etc/passwd and /etc/group files and specs of every form:
/// tools/user-parity compares the uid, gid and groups each run gets, and the message of
/// each refusal. `tools/user-parity --seeds N --first S` runs more seeds by hand.
@Suite struct UserParityTests {
    /// Fixed, so that a failure reproduces: `tools/user-parity --first 2026 --specs 24 -v`.
    static let seed = 2026

    @Test func runAsUserAgreesWithPodman() async throws {
        guard RemoteContextTests.available("podman", "busybox", "python3") else { return }
        guard let r = try await ToolRun.run("python3", "tools/user-parity",
                                            ["--first", "\(Self.seed)", "--specs", "24", "--strata", CLITests.binary]),
              ToolRun.ran(r, "tools/user-parity") else { return }
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("seed \(Self.seed): ok"), "\(r.output)")
    }
}
