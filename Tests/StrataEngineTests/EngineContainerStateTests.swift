import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `docker stop`, `docker kill`, `docker restart`, `docker rename` and `docker rm -f` through `strata serve`
/// with the real docker CLI: the signal reaches the container's process, the exit status is
/// the one that process gives (or 137 after SIGKILL), and `strata stop` in another process
/// reaches a run the server started.
@Suite(.serialized) struct EngineContainerStateTests {
    /// Polls `check` for up to 10 s.
    static func eventually(_ check: () throws -> Bool) rethrows -> Bool {
        try EngineHarness.eventually(within: 10, check)
    }

    @Test func stopKillRestartAndForcedRemove() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        func state(_ name: String) throws -> String {
            try h.docker(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func logs(_ name: String) throws -> String { try h.docker(["logs", name]).out }
        let loop = "while true; do busybox sleep 0.1; done"

        // A process that handles SIGTERM: `stop` sends it and the status is the process's own.
        #expect(try h.docker(["run", "-d", "--name", "trap", "busybox", "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; \(loop)"]).status == 0)
        #expect(try Self.eventually { try logs("trap").contains("ready") })
        var t0 = Date()
        let stop = try h.docker(["stop", "trap"])
        #expect(stop.status == 0 && stop.out == "trap\n", "\(stop)")
        #expect(Date().timeIntervalSince(t0) < 5, "stop waited for its timeout although the process exited")
        #expect(try state("trap") == "exited 3")
        #expect(try logs("trap").contains("got TERM"))

        // PID 1 without a handler ignores SIGTERM: SIGKILL after `-t 1`, status 137.
        let seconds = String(Int.random(in: 10000..<20000))
        #expect(try h.docker(["run", "-d", "--name", "deaf", "busybox", "busybox", "sleep", seconds]).status == 0)
        #expect(try Self.eventually { try state("deaf") == "running 0" })
        #expect(EngineRunTests.waitForProcesses(sleeping: seconds, count: 1))
        t0 = Date()
        #expect(try h.docker(["stop", "-t", "1", "deaf"]).status == 0)
        let took = Date().timeIntervalSince(t0)
        #expect(took >= 0.9 && took < 8, "\(took) s")
        #expect(try state("deaf") == "exited 137")
        #expect(EngineRunTests.waitForProcesses(sleeping: seconds, count: 0))

        // `kill -s HUP` reaches the handler and the container goes on; plain `kill` is SIGKILL.
        #expect(try h.docker(["run", "-d", "--name", "hup", "busybox", "sh", "-c", "trap 'echo hup' HUP; echo ready; \(loop)"]).status == 0)
        #expect(try Self.eventually { try logs("hup").contains("ready") })
        #expect(try h.docker(["kill", "-s", "HUP", "hup"]).status == 0)
        #expect(try Self.eventually { try logs("hup").contains("hup\n") })
        #expect(try state("hup") == "running 0")
        #expect(try h.docker(["kill", "hup"]).status == 0)
        #expect(try Self.eventually { try state("hup") == "exited 137" })

        // Not running: stop is a no-op that succeeds (304), kill an error; a bad signal is refused.
        #expect(try h.docker(["stop", "hup"]).status == 0)
        let dead = try h.docker(["kill", "hup"])
        #expect(dead.status != 0 && dead.err.contains("is not running"), "\(dead)")
        let bogus = try h.docker(["kill", "-s", "NOPE", "trap"])
        #expect(bogus.status != 0 && bogus.err.contains("invalid signal"), "\(bogus)")

        // restart runs it again; `strata stop` in another process stops the server's run.
        #expect(try h.docker(["restart", "trap"]).status == 0)
        #expect(try Self.eventually { try state("trap") == "running 0" })
        #expect(try Self.eventually { try logs("trap").components(separatedBy: "ready").count == 3 })
        let cli = try h.strata(["stop", "trap"])
        #expect(cli.status == 0 && cli.out == "trap\n", "\(cli)")
        #expect(try state("trap") == "exited 3")

        // STATUS as dockerd words it.
        let ps = try h.docker(["ps", "-a", "--format", "{{.Names}}: {{.Status}}"]).out
        #expect(ps.contains("trap: Exited (3) "), "\(ps)")
        #expect(ps.contains("deaf: Exited (137) "), "\(ps)")
        #expect(try h.docker(["run", "-d", "--name", "up", "busybox", "sh", "-c", loop]).status == 0)
        #expect(try Self.eventually { try h.docker(["ps", "--format", "{{.Names}}: {{.Status}}"]).out.contains("up: Up ") })

        // rm -f kills a running container first: no process is left behind.
        let other = String(Int.random(in: 20000..<30000))
        #expect(try h.docker(["run", "-d", "--name", "gone", "busybox", "busybox", "sleep", other]).status == 0)
        #expect(EngineRunTests.waitForProcesses(sleeping: other, count: 1))
        #expect(try h.docker(["rm", "-f", "gone", "up"]).status == 0)
        #expect(EngineRunTests.waitForProcesses(sleeping: other, count: 0))
        #expect(!(try h.docker(["ps", "-a", "--format", "{{.Names}}"]).out.contains("gone")))
    }

    /// SIGTERM to the server while `docker run` is attached: the container is killed, its
    /// row says exited 137, and the client gets that status (not "did not start").
    @Test func sigtermKillsRunsAndRecordsTheirExit() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        let seconds = String(Int.random(in: 40000..<50000))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker") ? "/usr/local/bin/docker" : "/usr/bin/docker")
        p.arguments = ["run", "--name", "cut", "busybox", "busybox", "sleep", seconds]
        p.environment = ["DOCKER_HOST": "unix://" + h.socket, "DOCKER_CONFIG": h.file("docker-config")]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        #expect(EngineRunTests.waitForProcesses(sleeping: seconds, count: 1))
        #expect(h.stop() == 0)
        p.waitUntilExit()
        #expect(p.terminationStatus == 137)
        #expect(EngineRunTests.waitForProcesses(sleeping: seconds, count: 0))
        let rows = try h.strata(["ps", "-a", "--format", "json"]).out
        let list = (try JSONSerialization.jsonObject(with: Data(rows.utf8)) as? [[String: Any]]) ?? []
        let cut = list.first { $0["name"] as? String == "cut" }
        #expect(cut?["state"] as? String == "exited" && (cut?["exitCode"] as? NSNumber)?.intValue == 137, "\(rows)")
    }

    /// `docker rename` of a running container: the run goes on under the new name, the old
    /// name is free, a taken or invalid name is refused; `strata rename` likewise.
    @Test func renameKeepsTheRun() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["run", "-d", "--name", "old", "busybox", "sh", "-c", "while true; do busybox sleep 0.1; done"]).status == 0)
        #expect(try h.docker(["create", "--name", "taken", "busybox", "true"]).status == 0)
        #expect(try h.docker(["rename", "old", "new"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.Name}} {{.State.Status}}", "new"]).out == "/new running\n")
        #expect(try h.docker(["inspect", "old"]).status != 0)
        let taken = try h.docker(["rename", "new", "taken"])
        #expect(taken.status != 0 && taken.err.contains("already in use"), "\(taken)")
        let bad = try h.docker(["rename", "new", "no spaces"])
        #expect(bad.status != 0 && bad.err.contains("invalid container name"), "\(bad)")
        #expect(try h.strata(["rename", "new", "old"]).status == 0)
        #expect(try h.docker(["ps", "--format", "{{.Names}}"]).out == "old\n")
        #expect(try h.docker(["exec", "old", "sh", "-c", "exit 0"]).status == 0)
        #expect(try h.docker(["rm", "-f", "old", "taken"]).status == 0)
    }

    /// `docker pause`: the processes stop (a counter the container writes stands still), the
    /// status says so (`Up … (Paused)`, State.Paused, `ps -f status=paused`), exec is refused;
    /// `unpause` lets it go on; `stop` of a paused container thaws and stops it.
    @Test func pauseFreezesAndUnpauseThaws() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["run", "-d", "--name", "ticker", "busybox", "sh", "-c",
                              "trap 'exit 4' TERM; i=0; while true; do i=$((i+1)); echo $i > /n; busybox sleep 0.05; done"]).status == 0)
        func count() throws -> Int { Int(try h.docker(["exec", "ticker", "cat", "/n"]).out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
        #expect(try Self.eventually { try count() > 2 })
        #expect(try h.docker(["pause", "ticker"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "ticker"]).out == "paused true true\n")
        #expect(try h.docker(["ps", "--format", "{{.Status}}"]).out.hasSuffix(" (Paused)\n"))
        #expect(try h.docker(["ps", "-q", "-f", "status=paused"]).out.split(separator: "\n").count == 1)
        #expect(try h.docker(["ps", "-q", "-f", "status=running"]).out.isEmpty)
        let frozen = try h.docker(["exec", "ticker", "cat", "/n"])
        #expect(frozen.status != 0 && frozen.err.contains("paused"), "\(frozen)")
        let again = try h.docker(["pause", "ticker"])
        #expect(again.status != 0 && again.err.contains("already paused"), "\(again)")
        // Frozen: the counter stands still while paused (read in the merged root, not by exec).
        let merged = try h.strata(["mount", "ticker"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try String(contentsOfFile: merged + "/n", encoding: .utf8)
        usleep(400_000)
        #expect(try String(contentsOfFile: merged + "/n", encoding: .utf8) == before)
        #expect(try h.strata(["unpause", "ticker"]).status == 0)
        // commit of a running container pauses it for the read (and thaws it after).
        #expect(try h.docker(["commit", "ticker", "ticked:1"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.State.Status}}", "ticker"]).out == "running\n")
        #expect(try h.docker(["commit", "--pause=false", "ticker", "ticked:2"]).status == 0)
        #expect(try h.docker(["run", "--rm", "ticked:1", "cat", "/n"]).status == 0)
        let thawed = try count()
        #expect(try Self.eventually { try count() > thawed })
        #expect(try h.docker(["pause", "ticker"]).status == 0)
        #expect(try h.docker(["stop", "ticker"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}", "ticker"]).out == "exited 4 false\n")
    }

    /// `docker top` lists the container's processes and only them, with `ps`'s columns;
    /// `strata top` the same; bad options and a stopped container are errors.
    @Test func topListsTheContainersProcesses() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let seconds = String(Int.random(in: 50000..<60000))
        #expect(try h.docker(["run", "-d", "--name", "tp", "busybox", "sh", "-c", "busybox sleep \(seconds); echo"]).status == 0)
        #expect(EngineRunTests.waitForProcesses(sleeping: seconds, count: 1))
        let top = try h.docker(["top", "tp"])
        let lines = top.out.split(separator: "\n")
        #expect(top.status == 0 && lines.first?.split(separator: " ").map(String.init) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "\(top)")
        #expect(lines.count == 3 && lines.contains { $0.hasSuffix("busybox sleep \(seconds)") }, "\(top.out)")
        // Only the container's: the server and the test are not in it.
        let pids = lines.dropFirst().compactMap { Int32($0.split(separator: " ")[1]) }
        let server = try #require(h.serverPID)
        #expect(!pids.contains(getpid()) && !pids.contains(server))
        let custom = try h.docker(["top", "tp", "-o", "pid,comm"])
        #expect(custom.out.split(separator: "\n").first?.split(separator: " ").map(String.init) == ["PID", "COMMAND"], "\(custom)")
        let cli = try h.strata(["top", "tp"])
        #expect(cli.status == 0 && cli.out.contains("busybox sleep \(seconds)"), "\(cli)")
        let bad = try h.docker(["top", "tp", "--no-such-option"])
        #expect(bad.status != 0 && bad.err.contains("ps --no-such-option failed"), "\(bad)")
        #expect(try h.docker(["kill", "tp"]).status == 0)
        #expect(try Self.eventually { try h.docker(["top", "tp"]).err.contains("is not running") })
    }

    /// `docker stats --no-stream`: a container that spins uses about a CPU, one that sleeps
    /// next to none; PIDs count its processes; memory has the host's as its limit.
    @Test func statsMeasureTheContainers() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["run", "-d", "--name", "burn", "busybox", "sh", "-c", "while true; do :; done"]).status == 0)
        #expect(try h.docker(["run", "-d", "--name", "idle", "busybox", "sh", "-c", "while true; do busybox sleep 1; done"]).status == 0)
        #expect(try Self.eventually { try h.docker(["top", "idle"]).out.contains("busybox sleep 1") })
        let r = try h.docker(["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.PIDs}} {{.MemUsage}}", "burn", "idle"])
        #expect(r.status == 0, "\(r)")
        var seen: [String: (cpu: Double, pids: Int, limit: String)] = [:]
        for line in r.out.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)  // name, cpu%, pids, usage, "/", limit
            guard f.count == 6, let cpu = Double(f[1].dropLast()), let pids = Int(f[2]) else { continue }
            seen[f[0]] = (cpu, pids, f[5])
        }
        let burn = try #require(seen["burn"]), idle = try #require(seen["idle"])
        #expect(burn.cpu > 40 && burn.cpu < 110, "\(r.out)")
        #expect(idle.cpu < 20, "\(r.out)")
        #expect(burn.pids == 1 && idle.pids == 2, "\(r.out)")
        #expect(burn.limit.hasSuffix("GiB") || burn.limit.hasSuffix("MiB"), "\(r.out)")
        #expect(try h.docker(["rm", "-f", "burn", "idle"]).status == 0)
    }
}
