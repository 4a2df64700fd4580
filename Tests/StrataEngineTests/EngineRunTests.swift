import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

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

    /// A container's labels are its image's with `--label` over them (as dockerd merges the
    /// image's config into the container's); `docker ps --filter label=` and `strata ps
    /// --filter label=` find them; `docker inspect` gives a running container's host PID.
    @Test func labelsAndThePidOfARun() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("mkdir -p lab && printf 'FROM busybox\\nLABEL stage=build tier=base\\n' > lab/Dockerfile")
        #expect(try h.strata(["build", "-q", "-t", "lab:1", h.file("lab")]).status == 0)
        try h.start()
        defer { h.stop() }
        let made = try h.docker(["create", "--name", "labelled", "--label", "tier=web", "--label", "team", "lab:1", "true"])
        #expect(made.status == 0, "\(made.err)")
        let labels = try h.docker(["inspect", "--format", "{{json .Config.Labels}}", "labelled"]).out
        #expect(labels == #"{"stage":"build","team":"","tier":"web"}"# + "\n", "\(labels)")
        #expect(try h.docker(["create", "--name", "plain", "busybox", "true"]).status == 0)
        func ps(_ filter: String) throws -> String { try h.docker(["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]).out }
        #expect(try ps("label=tier=web") == "labelled\n")
        #expect(try ps("label=stage") == "labelled\n")
        #expect(try ps("label=tier=base") == "")
        let labelled = try h.docker(["inspect", "--format", "{{.Id}}", "labelled"]).out
        #expect(try h.strata(["ps", "-a", "-q", "--no-trunc", "--filter", "label=team"]).out == labelled)
        #expect(try h.strata(["create", "--name", "cli", "--label", "x=1", "busybox", "true"]).status == 0)
        #expect(try ps("label=x=1") == "cli\n")
        // docker commit keeps the container's labels in the image.
        #expect(try h.docker(["commit", "labelled", "lab:2"]).status == 0)
        #expect(try h.docker(["image", "inspect", "--format", "{{json .Config.Labels}}", "lab:2"]).out
                == #"{"stage":"build","team":"","tier":"web"}"# + "\n")

        // The PID of a running container is its command's, on the host.
        #expect(try h.docker(["run", "-d", "--name", "live", "busybox", "sh", "-c", "exec busybox sleep 60"]).status == 0)
        let pid = try h.docker(["inspect", "--format", "{{.State.Pid}}", "live"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
        #expect(Int(pid) ?? 0 > 0 && comm == "busybox\n", "pid \(pid): \(comm)")
        #expect(try h.docker(["rm", "-f", "live"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.State.Pid}}", "labelled"]).out == "0\n")
    }

    /// A server (or a `strata run`) killed with SIGKILL while containers run leaves their rows
    /// saying running. The next `strata ps`, `docker ps` or `docker inspect`, or the next start
    /// of the server, records them as exited (255, as dockerd after a crash) and kills what the
    /// runs left behind; a row a live run holds (in any process) is never touched.
    @Test func runsOfAKilledServerReadAsExited() throws {
        guard EngineHarness.dockerAvailable(), FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but docker or sqlite3 is missing: run tools/setup") }
            return
        }
        let h = try EngineHarness()
        try h.importBusybox()
        let seconds = (1...3).map { _ in String(Int.random(in: 4000..<9000)) }
        func state(_ name: String) throws -> String {
            try h.run("/usr/bin/sqlite3", [h.root + "/strata.db", "SELECT state FROM containers WHERE name = '\(name)'"]).out
        }
        func killServer() throws {
            let pid = try #require(h.serverPID)
            kill(pid, SIGKILL)
            h.stop()
        }

        // 1. The next `strata ps` (no server running).
        try h.start()
        #expect(try h.docker(["run", "-d", "--name", "long1", "busybox", "busybox", "sleep", seconds[0]]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.State.Status}}", "long1"]).out == "running\n")
        // A live run is left alone by another process's ps.
        #expect(try h.strata(["ps", "-a", "--format", "json"]).out.contains("\"running\""))
        #expect(Self.waitForProcesses(sleeping: seconds[0], count: 1))
        try killServer()
        #expect(try state("long1") == "running\n")
        #expect(Self.waitForProcesses(sleeping: seconds[0], count: 1))  // the run outlived its server
        let ps = try h.strata(["ps", "-a"])
        #expect(ps.out.contains("Exited"), "\(ps.out)")
        #expect(try state("long1") == "exited\n")
        #expect(Self.waitForProcesses(sleeping: seconds[0], count: 0))

        // 2. The next start of the server.
        try h.start()
        #expect(try h.docker(["run", "-d", "--name", "long2", "busybox", "busybox", "sleep", seconds[1]]).status == 0)
        #expect(Self.waitForProcesses(sleeping: seconds[1], count: 1))
        try killServer()
        #expect(try state("long2") == "running\n")
        try h.start()
        defer { h.stop() }
        #expect(try state("long2") == "exited\n")
        #expect(Self.waitForProcesses(sleeping: seconds[1], count: 0))
        let inspect = try h.docker(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "long1", "long2"])
        #expect(inspect.out == "exited 255\nexited 255\n", "\(inspect.err)")
        #expect(try h.docker(["rm", "long1", "long2"]).status == 0)

        // 3. A `strata run` in another process: alive, its row is left alone by ps; killed, its
        // row reads as exited at the next ps.
        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: EngineHarness.binary)
        cli.arguments = ["run", "--name", "cli", "busybox", "busybox", "sleep", seconds[2]]
        cli.environment = ["STRATA_ROOT": h.root, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        cli.standardOutput = FileHandle.nullDevice
        cli.standardError = FileHandle.nullDevice
        try cli.run()
        #expect(Self.waitForProcesses(sleeping: seconds[2], count: 1))
        #expect(try h.docker(["ps", "--format", "{{.Names}} {{.State}}"]).out == "cli running\n")
        #expect(try state("cli") == "running\n")
        #expect(Self.waitForProcesses(sleeping: seconds[2], count: 1))
        kill(cli.processIdentifier, SIGKILL)
        cli.waitUntilExit()
        let after = try h.docker(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "cli"])
        #expect(after.out == "exited 255\n", "\(after.err)")
        #expect(try state("cli") == "exited\n")
        #expect(try h.docker(["ps", "-q"]).out == "")
        #expect(Self.waitForProcesses(sleeping: seconds[2], count: 0))
        #expect(try h.docker(["rm", "cli"]).status == 0)
    }

    /// Waits up to 10 s until exactly `count` processes run `busybox sleep SECONDS`.
    static func waitForProcesses(sleeping seconds: String, count: Int) -> Bool {
        let wanted = Array("busybox\0sleep\0\(seconds)".utf8)
        for _ in 0..<100 {
            var n = 0
            for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(pid) != nil {
                guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
                if Array(cmd.prefix(wanted.count)) == wanted, cmd.count == wanted.count || cmd.count == wanted.count + 1 { n += 1 }
            }
            if n == count { return true }
            usleep(100_000)
        }
        return false
    }
}
