import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `strata serve` under a systemd socket unit (tools/cron/strata.socket): systemd binds the
/// socket and passes it as descriptor 3 (LISTEN_PID, LISTEN_FDS). `systemd-socket-activate`
/// does exactly that; the docker CLI then talks to a server that never bound the path itself,
/// and the socket file stays when it exits (it is the unit's).
@Suite struct SocketActivationTests {
    @Test func servesTheSocketSystemdPasses() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let activate = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: activate) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but \(activate) is missing (systemd)") }
            return
        }
        let h = try EngineHarness()
        try h.importBusybox()
        // posix_spawn, not Process: the exec'd server must not be reaped or watched by
        // Foundation, which then lost track of the docker children this test runs.
        let log = h.file("activate.log")
        let argv = [activate, "-l", h.socket, EngineHarness.binary, "--root", h.root, "serve"]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        #expect(posix_spawn(&pid, activate, &actions, nil, cArgs, environ) == 0)
        var stopped = false
        func stop() -> Int32 {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            stopped = true
            return status
        }
        defer { if !stopped { _ = stop() } }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: h.socket) { usleep(50_000) }
        let v = try h.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        #expect(v.status == 0, "\(v.err)")
        #expect(v.out == "busybox:latest\n")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("Serving the Docker Engine API on the socket systemd passed"), "\(text)")
        let status = stop()
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 0, "exit status \(status)")
        #expect(FileManager.default.fileExists(atPath: h.socket), "the unit's socket file must stay")
    }
}
