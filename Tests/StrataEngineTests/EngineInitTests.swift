import Foundation
import Testing

/// `docker run --init` against `strata serve`, beside `podman run --init` with the same tini:
/// the command is not PID 1, its status comes through, and a SIGTERM reaches a command that
/// would ignore it as PID 1 (`docker stop` returns at once, where without the init it waits
/// for the timeout and kills).
@Suite struct EngineInitTests {
    @Test func initRunsTheCommandAsPodmansDoes() throws {
        guard EngineHarness.dockerAvailable() else { return }
        guard let tini = ["/usr/bin/docker-init", "/usr/bin/tini-static"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but tini is missing: run tools/setup") }
            return
        }
        let h = try EngineHarness()
        try h.importBusybox()
        guard let podman = try h.podman() else { return }
        try h.start()
        defer { h.stop() }
        let theirs = podman + ["run", "--rm"] + EngineHarness.podmanRunFlags + ["--init", "--init-path", tini, "localhost/busybox:latest"]
        let pid = try h.docker(["run", "--rm", "--init", "busybox:latest", "sh", "-c", "echo $$; busybox cat /proc/1/cmdline | busybox tr '\\0' ' '"])
        let podmanPID = try h.run("/usr/bin/env", theirs + ["sh", "-c", "echo $$"])
        // Under both, the command is a child of the init (its PID number is whatever comes next).
        let lines = pid.out.split(separator: "\n")
        #expect(pid.status == 0 && podmanPID.status == 0 && lines.count == 2 && lines.first != "1" && podmanPID.out != "1\n",
                "strata \(pid) podman \(podmanPID)")
        #expect(lines.last?.hasPrefix("/sbin/docker-init -- sh -c") == true, "\(pid.out)")
        let status = try h.docker(["run", "--rm", "--init", "busybox:latest", "sh", "-c", "exit 7"])
        let podmanStatus = try h.run("/usr/bin/env", theirs + ["sh", "-c", "exit 7"])
        #expect(status.status == 7 && podmanStatus.status == 7, "strata \(status.status) podman \(podmanStatus.status)")

        // SIGTERM: passed on by the init, so `sleep` ends at once; as PID 1 it ignores it.
        #expect(try h.docker(["run", "-d", "--name", "withinit", "--init", "busybox:latest", "busybox", "sleep", "60"]).status == 0)
        #expect(try h.docker(["run", "-d", "--name", "without", "busybox:latest", "busybox", "sleep", "60"]).status == 0)
        var before = ContinuousClock.now
        #expect(try h.docker(["stop", "-t", "3", "withinit"]).status == 0)
        let fast = ContinuousClock.now - before
        before = ContinuousClock.now
        #expect(try h.docker(["stop", "-t", "3", "without"]).status == 0)
        let slow = ContinuousClock.now - before
        #expect(fast < .seconds(2) && slow >= .seconds(3), "with --init \(fast), without \(slow)")
        #expect(try h.docker(["inspect", "--format", "{{.State.ExitCode}} {{.HostConfig.Init}}", "withinit"]).out == "143 true\n")
        #expect(try h.docker(["inspect", "--format", "{{.State.ExitCode}}", "without"]).out == "137\n")
        #expect(try h.docker(["rm", "withinit", "without"]).status == 0)
    }
}
