import Foundation
import Testing

/// Volumes as dockerd makes them, proven against podman on generated images and mounts:
/// tools/volume-parity compares, run by run, what each mount shows inside the container
/// (owners, modes, types, sizes, links and symlink targets of what the image put there), which
/// mounts are writable, which runs are refused, and which volumes remain after `--rm`, `rm`
/// and `rm -v`. `tools/volume-parity --seeds N --first S` runs more seeds by hand.
@Suite struct VolumeParityTests {
    /// Fixed, so that a failure reproduces: `tools/volume-parity --first 2026 --seeds 2 --cases 8 -v`.
    static let seed = 2026

    @Test func volumesAgreeWithPodman() async throws {
        guard RemoteContextTests.available("podman", "busybox", "python3") else { return }
        guard let r = try await ToolRun.run("python3", "tools/volume-parity",
                                            ["--first", "\(Self.seed)", "--seeds", "2", "--cases", "8", "--strata", CLITests.binary]),
              ToolRun.ran(r, "tools/volume-parity") else { return }
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("seed \(Self.seed): ok") && r.output.contains("seed \(Self.seed + 1): ok"), "\(r.output)")
    }
}
