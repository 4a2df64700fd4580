import Foundation
import Testing
@testable import StrataEngine
@testable import Strata

/// `docker exec` through `strata serve` with the real docker CLI: the command runs in the
/// running container (its files, its namespaces), its output comes back on the right streams,
/// stdin reaches it, and the CLI exits with the command's status (127 for no such program).
@Suite(.serialized) struct EngineExecTests {
    @Test func execRunsInTheRunningContainer() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["run", "-d", "--name", "box", "-e", "FROM_RUN=r", "busybox", "sh", "-c",
                              "echo made-by-run > /tmp/mark; while true; do busybox sleep 0.1; done"]).status == 0)
        #expect(try EngineContainerStateTests.eventually { try h.docker(["exec", "box", "cat", "/tmp/mark"]).out == "made-by-run\n" })

        // Streams and status.
        let r = try h.docker(["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5"])
        #expect(r.status == 5 && r.out == "out\n" && r.err == "err\n", "\(r)")
        // The container's environment, with the exec's own on top, its directory, its user.
        let env = try h.docker(["exec", "-e", "EXTRA=x", "-w", "/etc", "-u", "1000:1000", "box", "sh", "-c",
                                "echo $FROM_RUN $EXTRA $(pwd) $(busybox id -u):$(busybox id -g)"])
        #expect(env.status == 0 && env.out == "r x /etc 1000:1000\n", "\(env)")
        // Same PID namespace as the container's command: its PID 1 is the run's shell.
        let pid1 = try h.docker(["exec", "box", "cat", "/proc/1/cmdline"])
        #expect(pid1.out.hasPrefix("sh\0-c\0echo made-by-run"), "\(pid1)")
        // stdin, 256 KiB of it, back byte for byte.
        let input = h.file("in.bin")
        try Data((0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }).write(to: URL(fileURLWithPath: input))
        try h.shell("docker -H unix://\(h.socket) exec -i box cat < in.bin > out.bin")
        #expect(FileManager.default.contentsEqual(atPath: input, andPath: h.file("out.bin")))
        // Detached: it runs on after the answer.
        #expect(try h.docker(["exec", "-d", "box", "sh", "-c", "echo later > /tmp/later"]).status == 0)
        #expect(try EngineContainerStateTests.eventually { try h.docker(["exec", "box", "cat", "/tmp/later"]).out == "later\n" })
        // No such program: docker's 127 and the reason.
        let missing = try h.docker(["exec", "box", "no-such-program"])
        #expect(missing.status == 127 && missing.err.contains("executable file not found"), "\(missing)")
        // A TTY: one stream, on a terminal.
        let tty = try h.run("/usr/bin/script", ["-qec", "docker -H unix://\(h.socket) exec -t box sh -c 'tty; echo $TERM'", "/dev/null"])
        #expect(tty.out.contains("/dev/pts/") && tty.out.contains("xterm"), "\(tty)")
        // The exec's output is not the container's log.
        #expect(!(try h.docker(["logs", "box"]).out.contains("out")))
        // A container that does not run: refused.
        #expect(try h.docker(["stop", "-t", "0", "box"]).status == 0)
        let stopped = try h.docker(["exec", "box", "true"])
        #expect(stopped.status != 0 && stopped.err.contains("is not running"), "\(stopped)")
    }

    /// The end of an exec's output reaches a client that half-closed its stdin and reads
    /// slowly: the server's close waits for the bytes it still holds (NIO's close after the
    /// peer's half-close dropped them: `docker exec -i … cat` lost its last pieces under load).
    @Test func outputAfterTheClientsHalfCloseIsNotDropped() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["run", "-d", "--name", "box", "busybox", "sh", "-c", "while true; do busybox sleep 0.1; done"]).status == 0)
        let size = 2 << 20
        let body = #"{"Cmd":["sh","-c","cat; busybox head -c \#(size) /dev/zero"],"AttachStdin":true,"AttachStdout":true,"AttachStderr":true}"#
        let created = h.raw(Array("POST /containers/box/exec HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        let id = try #require(created.range(of: #""Id":"[0-9a-f]+""#, options: .regularExpression).map { String(created[$0].dropFirst(6).dropLast()) })
        // The start; after its 101, stdin (6 bytes) and the half-close; then a slow reader, so
        // the server's writes wait for room until its last.
        let start = "POST /exec/\(id)/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        let reply = h.rawHalfClosed(Array(start.utf8), stdin: Array("hello\n".utf8), pause: 2_000)
        let head = try #require(reply.firstRange(of: Array("\r\n\r\n".utf8)))
        #expect(String(decoding: reply[..<head.lowerBound], as: UTF8.self).hasPrefix("HTTP/1.1 101"))
        // The frames: 8-byte headers (stream, 0, 0, 0, big-endian length), then the bytes.
        var stdout = [UInt8](), at = head.upperBound, whole = true
        while at < reply.count {
            guard at + 8 <= reply.count else { whole = false; break }
            let n = reply[(at + 4)..<(at + 8)].reduce(0) { $0 << 8 | Int($1) }
            guard at + 8 + n <= reply.count else { whole = false; break }
            if reply[at] == 1 { stdout += reply[(at + 8)..<(at + 8 + n)] }
            at += 8 + n
        }
        #expect(whole && stdout.count == 6 + size, "\(stdout.count) bytes of \(6 + size), frames whole: \(whole)")
        #expect(stdout.prefix(6) == ArraySlice("hello\n".utf8) && !stdout.dropFirst(6).contains { $0 != 0 })
        #expect(try h.docker(["rm", "-f", "box"]).status == 0)
    }
}

/// The server's exec instances stay bounded: running ones are kept, of the others the
/// newest ``ExecInstances/keptFinished``.
struct ExecInstancesTests {
    @Test func oldIdleInstancesAreForgotten() async throws {
        let execs = ExecInstances()
        func make(_ i: Int) -> ExecInstances.Instance {
            ExecInstances.Instance(id: "e\(i)", containerID: "c", options: ExecOptions(command: ["true"]),
                                   attachStdin: false, attachStdout: true, attachStderr: true)
        }
        await execs.add(make(0))
        _ = try await execs.begin("e0", terminal: nil)  // runs on: kept however many come
        for i in 1...400 {
            await execs.add(make(i))
            _ = try await execs.begin("e\(i)", terminal: nil)
            await execs.end("e\(i)", status: 0)
        }
        await execs.add(make(401))  // the next add forgets the oldest idle ones
        #expect(try await execs.get("e0").running)
        #expect(try await execs.get("e401").started == false)
        #expect((try? await execs.get("e1")) == nil)
        #expect(try await execs.get("e400").exitCode == 0)
        var kept = 0
        for i in 1...401 where (try? await execs.get("e\(i)")) != nil { kept += 1 }
        #expect(kept == ExecInstances.keptFinished)
    }
}
