import Foundation
import Testing

/// `docker run` through `strata serve` with the real docker CLI: create, attach (a 101 upgrade
/// and Docker's multiplexed frames), wait (headers at once, the status when the container
/// stops), start; the output, the exit status and the log agree with what the container did.
@Suite(.serialized) struct EngineRunTests {
    @Test func runPrintsOutputAndPassesTheExitCode() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        let hi = try h.docker(["run", "--rm", "busybox", "echo", "hi"])
        #expect(hi.status == 0, "\(hi.err)")
        #expect(hi.out == "hi\n")
        // --rm: nothing is left.
        #expect(try h.docker(["ps", "-a", "-q"]).out == "")

        let three = try h.docker(["run", "--name", "c3", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(three.status == 3, "\(three.err)")
        #expect(three.out == "out\n")
        #expect(three.err.contains("err"))
        let logs = try h.docker(["logs", "c3"])
        #expect(logs.out == "out\n" && logs.err == "err\n", "\(logs)")
        let code = try h.docker(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "c3"])
        #expect(code.out == "exited 3\n", "\(code)")
        #expect(try h.docker(["rm", "c3"]).status == 0)

        // create + start + wait + logs, the other way round.
        let id = try h.docker(["create", "busybox", "sh", "-c", "echo later; exit 2"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!id.isEmpty)
        #expect(try h.docker(["start", id]).status == 0)
        #expect(try h.docker(["wait", id]).out == "2\n")
        #expect(try h.docker(["logs", id]).out == "later\n")
        #expect(try h.docker(["rm", id]).status == 0)
    }
}
