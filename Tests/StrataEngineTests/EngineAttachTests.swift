import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Attaching to a container that runs already, as dockerd serves it: a stdin kept open for
/// later attaches (`docker run -d -i`), an attach's end of input that ends the run's stdin
/// only with `StdinOnce`, and `attach?logs=1`, the log replayed before (or instead of) the
/// live output. Checked with the real docker CLI, raw requests and docker-py.
@Suite(.serialized) struct EngineAttachTests {
    /// `docker run -d -i`: the run's stdin is a pipe the server keeps; `docker attach` feeds
    /// it, and its end of input leaves it open for the next attach.
    @Test func detachedRunKeepsStdinForLaterAttaches() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        let run = try h.docker(["run", "-d", "-i", "--name", "c", "busybox", "sh", "-c", "read x; echo got $x"])
        #expect(run.status == 0, "\(run.err)")
        #expect(try h.docker(["inspect", "--format", "{{.State.Status}} {{.Config.OpenStdin}} {{.Config.StdinOnce}}", "c"]).out
                == "running true false\n")
        // The client's stdin stays open until the run ends (sleep), so the output arrives in
        // the attach; with `echo hello |` alone dockerd and strata end the attach's output
        // at the end of input, before the answer may have come.
        let attached = try EngineStdinTests.sh(h, "(echo hello; sleep 3) | timeout 30 docker attach c")
        #expect(attached.status == 0, "\(attached)")
        #expect(attached.out == "got hello\n", "\(attached)")
        #expect(try h.docker(["wait", "c"]).out == "0\n")
        #expect(try h.docker(["logs", "c"]).out == "got hello\n")

        // Two attaches, one line each: the first one's end of input does not end the stdin.
        #expect(try h.docker(["run", "-d", "-i", "--name", "k", "busybox", "sh", "-c", "read a; echo A=$a; read b; echo B=$b"]).status == 0)
        let both = try EngineStdinTests.sh(h, """
            echo one | timeout 30 docker attach k > first.out &
            first=$!
            for i in $(seq 100); do [ "$(docker logs k)" = A=one ] && break; sleep 0.1; done
            docker logs k
            echo two | timeout 30 docker attach k > /dev/null
            wait $first
            """)
        #expect(both.status == 0, "\(both)")
        #expect(both.out == "A=one\n", "\(both)")
        #expect(try h.docker(["wait", "k"]).out == "0\n")
        #expect(try h.docker(["logs", "k"]).out == "A=one\nB=two\n")

        // A raw attach: what it sends is the run's stdin, the answer the run's frames.
        #expect(try h.docker(["run", "-d", "-i", "--name", "raw", "busybox", "sh", "-c", "read x; echo got $x; echo bye >&2"]).status == 0)
        let attach = "POST /containers/raw/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        let answer = Self.hijack(h, attach, then: "hello\n")
        #expect(answer.hasPrefix("HTTP/1.1 101"), "\(answer)")
        #expect(answer.contains("\u{1}\0\0\0\0\0\0\u{a}got hello\n") && answer.contains("\u{2}\0\0\0\0\0\0\u{4}bye\n"), "\(answer)")
        #expect(try h.docker(["wait", "raw"]).out == "0\n")

        // A container created with -i (StdinOnce) and started without an attach: its stdin
        // waits for one, whose end of input ends it; the output goes on to the run's end.
        #expect(try h.docker(["create", "-i", "--name", "once", "busybox", "sh", "-c", "cat; echo done"]).status == 0)
        #expect(try h.docker(["start", "once"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.State.Status}} {{.Config.StdinOnce}}", "once"]).out == "running true\n")
        let once = try EngineStdinTests.sh(h, "printf 'a\\nb\\n' | timeout 30 docker attach once")
        #expect(once.status == 0, "\(once)")
        #expect(once.out == "a\nb\ndone\n", "\(once)")

        // A kept stdin that never gets an attach: removing the container ends it.
        #expect(try h.docker(["run", "-d", "-i", "--name", "idle", "busybox", "cat"]).status == 0)
        #expect(try h.docker(["rm", "-f", "idle"]).status == 0)
        #expect(try h.docker(["rm", "c", "k", "raw", "once"]).status == 0)
        #expect(try h.docker(["ps", "-a", "-q"]).out == "")
    }

    /// Detaching from a TTY: the docker CLI on a terminal reads ctrl-p ctrl-q itself and hangs
    /// up, and the container runs on; a raw client's keys (`detachKeys`, ctrl-p ctrl-q unless
    /// named) are read by the server as dockerd's proxy reads them: kept from the container,
    /// the attach ended, what followed them dropped, a broken sequence passed on. Without a TTY
    /// the keys are plain input. An exec's `DetachKeys` leave its command running.
    @Test func ttyDetachKeysLeaveItRunning() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        func status(_ c: String) throws -> String {
            try h.docker(["inspect", "--format", "{{.State.Status}}", c]).out
        }
        func logs(_ c: String, contain text: String) throws -> Bool {
            for _ in 0..<100 {
                if try h.docker(["logs", c]).out.contains(text) { return true }
                usleep(50_000)
            }
            return false
        }

        // The docker CLI on a terminal (script gives it one).
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/script") {
            let cli = try EngineStdinTests.sh(h, """
                (sleep 2; printf 'echo before\\r'; sleep 1; printf '\\020\\021'; sleep 1) | timeout 30 script -qec \\
                  "docker run -it --name cli busybox sh" /dev/null
                """)
            #expect(cli.status == 0, "\(cli)")
            #expect(try status("cli") == "running\n")
            #expect(try logs("cli", contain: "before"))
        } else if ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("CI=true but script (util-linux) is missing")
        }

        // A raw client: ctrl-p ctrl-q end the attach at once; the line before them reaches cat.
        #expect(try h.docker(["run", "-d", "-i", "-t", "--name", "t", "busybox", "cat"]).status == 0)
        let head = "POST /containers/t/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        let start = Date()
        let first = Self.hijack(h, head, then: "one\n\u{10}\u{11}lost\n")
        #expect(first.hasPrefix("HTTP/1.1 101"), "\(first)")
        #expect(Date().timeIntervalSince(start) < 10, "the server did not end the attach")
        #expect(try logs("t", contain: "one\n"))
        #expect(try status("t") == "running\n")

        // Named keys: ctrl-a then y is no sequence and goes on whole; ctrl-p ctrl-q are input.
        let named = head.replacingOccurrences(of: "stderr=1", with: "stderr=1&detachKeys=ctrl-a,x")
        _ = Self.hijack(h, named, then: "two\n\u{1}y\n\u{10}\n\u{1}xlost\n")
        #expect(try logs("t", contain: "two\n\u{1}y\n\u{10}\n"))
        #expect(try status("t") == "running\n")
        #expect(!(try h.docker(["logs", "t"]).out.contains("lost")))

        // Keys Docker's notation does not have: 400, nothing attached.
        let bad = h.raw(Array(head.replacingOccurrences(of: "stderr=1", with: "stderr=1&detachKeys=ctrl-1")
            .replacingOccurrences(of: "Connection: Upgrade", with: "Connection: close").utf8))
        #expect(bad.hasPrefix("HTTP/1.1 400") && bad.contains("Invalid detach keys (ctrl-1) provided"), "\(bad)")

        // An exec with DetachKeys: the key ends the stream, the command runs on and reads on.
        let body = #"{"Cmd":["sh","-c","read x; echo got $x > /tmp/x; read y"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-b"}"#
        let made = h.raw(Array("POST /containers/t/exec HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        let id = made.components(separatedBy: "\"Id\":\"").last?.prefix(64).description ?? ""
        #expect(made.hasPrefix("HTTP/1.1 201") && id.count == 64, "\(made)")
        let startBody = #"{"Tty":true}"#
        let exec = Self.hijack(h, "POST /exec/\(id)/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: \(startBody.utf8.count)\r\n\r\n\(startBody)", then: "hello\r\u{2}more")
        #expect(exec.hasPrefix("HTTP/1.1 101"), "\(exec)")
        let inspect = h.raw(Array("GET /exec/\(id)/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(inspect.contains("\"Running\":true") && inspect.contains("\"DetachKeys\":\"Ag==\""), "\(inspect)")
        var got = ""
        for _ in 0..<100 where got.isEmpty {
            got = try h.docker(["exec", "t", "cat", "/tmp/x"]).out
            if got.isEmpty { usleep(50_000) }
        }
        #expect(got == "got hello\n")
        let badExec = #"{"Cmd":["true"],"DetachKeys":"ctrl-"}"#
        let refused = h.raw(Array("POST /containers/t/exec HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(badExec.utf8.count)\r\n\r\n\(badExec)".utf8))
        #expect(refused.hasPrefix("HTTP/1.1 400"), "\(refused)")

        // Without a TTY the keys are input like any other (dockerd reads them only on a TTY).
        #expect(try h.docker(["run", "-d", "-i", "--name", "n", "busybox", "sh", "-c", "read x; echo \"[$x]\""]).status == 0)
        let plain = Self.hijack(h, head.replacingOccurrences(of: "/t/", with: "/n/"), then: "a\u{10}\u{11}b\n")
        #expect(plain.contains("[a\u{10}\u{11}b]\n"), "\(plain)")
        #expect(try h.docker(["rm", "-f", "cli", "t", "n"]).status == 0)
    }

    /// Sends an attach's head, waits for the answer's head, then sends `input` (as the docker
    /// CLI does: bytes sent with the head would be read as the next request) and returns
    /// everything that came back until the server closed (or 20 s passed).
    static func hijack(_ h: EngineHarness, _ head: String, then input: String) -> String {
        let fd = EngineHarness.connect(h.socket)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func send(_ s: String) {
            let b = Array(s.utf8)
            _ = b.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, b.count, Int32(MSG_NOSIGNAL)) }
        }
        send(head)
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        var sent = false
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
            if !sent, String(decoding: out, as: UTF8.self).contains("\r\n\r\n") {
                send(input)
                sent = true
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `attach?logs=1`: what the container logged so far, then (stream=1) the live output;
    /// with stream=0 the log alone, as docker-py's `attach(logs=True)` reads it.
    @Test func attachReplaysTheLog() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        #expect(try h.docker(["run", "--name", "l", "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2"]).status == 0)
        // A raw request without an upgrade: 200, the log's frames, the end.
        let stdoutOnly = h.raw(Array("POST /containers/l/attach?logs=1&stream=0&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".utf8))
        #expect(stdoutOnly.hasPrefix("HTTP/1.1 200"), "\(stdoutOnly)")
        #expect(stdoutOnly.contains("\u{1}\0\0\0\0\0\0\u{5}out1\n") && stdoutOnly.contains("\u{1}\0\0\0\0\0\0\u{5}out2\n")
                && !stdoutOnly.contains("err1"), "\(stdoutOnly)")
        // Without logs, a stream of a stopped container has nothing to say.
        let nothing = h.raw(Array("POST /containers/l/attach?stream=0&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".utf8))
        #expect(nothing.hasPrefix("HTTP/1.1 200") && !nothing.contains("out1"), "\(nothing)")

        // A running container: its log so far, then what comes until the run ends.
        #expect(try h.docker(["run", "-d", "--name", "r", "busybox", "sh", "-c", "echo early; busybox sleep 2; echo late"]).status == 0)
        for _ in 0..<100 {
            if try h.docker(["logs", "r"]).out == "early\n" { break }
            usleep(50_000)
        }
        let live = h.raw(Array("POST /containers/r/attach?logs=1&stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".utf8))
        #expect(live.hasPrefix("HTTP/1.1 101") && live.hasSuffix("\r\n\r\n\u{1}\0\0\0\0\0\0\u{6}early\n\u{1}\0\0\0\0\0\0\u{5}late\n"), "\(live)")
        #expect(try h.docker(["wait", "r"]).out == "0\n")
        #expect(try h.docker(["run", "--name", "t", "-t", "busybox", "sh", "-c", "echo on a terminal"]).status == 0)

        guard try h.run("/usr/bin/env", ["python3", "-c", "import docker"]).status == 0 else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but the docker SDK for Python is missing") }
            return
        }
        let script = """
            import docker, sys
            client = docker.DockerClient(base_url="unix://" + sys.argv[1])
            l = client.containers.get("l")
            print(repr(l.attach(logs=True, stdout=True, stderr=False)))
            print(repr(l.attach(logs=True, stdout=False, stderr=True)))
            print(repr(l.attach(logs=True, demux=True)))
            print(repr(client.containers.get("t").attach(logs=True)))
            """
        let r = try h.run("/usr/bin/env", ["python3", "-c", script, h.socket])
        #expect(r.status == 0, "\(r)")
        // The TTY's line ends in \n or \r\n: runc, in the foreground, clears ONLCR on the
        // container's terminal from a goroutine that races the command's first output (as
        // EngineStdinTests.ttyRunsOnATerminal).
        let expected = { (end: String) in """
            b'out1\\nout2\\n'
            b'err1\\n'
            (b'out1\\nout2\\n', b'err1\\n')
            b'on a terminal\(end)'

            """ }
        #expect(r.out == expected("\\n") || r.out == expected("\\r\\n"), "\(r)")
        #expect(try h.docker(["rm", "l", "t", "r"]).status == 0)
    }
}
