import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What `docker run -i`, `docker logs --tail/--since/--until/--timestamps`, `docker ps -f` and
/// `docker volume ls -f` expect of the server, with the real docker CLI: stdin goes through
/// the hijacked attach connection into the container and its half-close is the process's
/// end-of-file; a client that hangs up leaves no process behind.
@Suite(.serialized) struct EngineStdinTests {
    /// A bash script with `docker` pointed at the server, in the harness's directory.
    static func sh(_ h: EngineHarness, _ script: String) throws -> EngineHarness.Result {
        try h.run("/bin/bash", ["-o", "pipefail", "-c", script],
                  env: ["DOCKER_HOST": "unix://" + h.socket, "DOCKER_CONFIG": h.file("docker-config"), "DOCKER_BUILDKIT": "0"], cwd: h.path)
    }

    @Test func stdinReachesTheContainer() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        let hi = try Self.sh(h, "echo hi | docker run -i --rm busybox cat")
        #expect(hi.status == 0, "\(hi.err)")
        #expect(hi.out == "hi\n")

        // 1 MiB of random bytes arrive whole, in order.
        let big = try Self.sh(h, """
            head -c 1048576 /dev/urandom > big.bin
            sha256sum < big.bin | cut -d' ' -f1
            docker run -i --rm busybox busybox sha256sum < big.bin | cut -d' ' -f1
            docker run -i --rm busybox busybox wc -c < big.bin
            """)
        let lines = big.out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(big.status == 0, "\(big.err)")
        #expect(lines.count == 3 && lines[0] == lines[1] && lines[2] == "1048576", "\(big.out) \(big.err)")

        // The exit status of a command that reads a line.
        let three = try Self.sh(h, "echo line | docker run -i --rm busybox sh -c 'read x; echo got $x; exit 3'")
        #expect(three.status == 3, "\(three.err)")
        #expect(three.out == "got line\n")

        // Without -i, stdin is /dev/null: cat ends at once and sees nothing.
        let none = try Self.sh(h, "echo ignored | timeout 20 docker run --rm busybox cat")
        #expect(none.status == 0, "\(none.err)")
        #expect(none.out == "")

        // create -i + start -ai: the attach comes first, the start after.
        let id = try h.docker(["create", "-i", "busybox", "sh", "-c", "cat; echo done"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let started = try Self.sh(h, "printf 'a\\nb\\n' | docker start -ai \(id)")
        #expect(started.status == 0, "\(started.err)")
        #expect(started.out == "a\nb\ndone\n")
        #expect(try h.docker(["rm", id]).status == 0)
        #expect(try h.docker(["ps", "-a", "-q"]).out == "")
    }

    /// A client that hangs up in the middle of stdin: the process reads end-of-file and ends;
    /// an attach that hangs up before the start leaves nothing waiting; the server goes on.
    @Test func clientHangingUpMidStdinLeavesNoProcess() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        // docker run -i, its stdin still open, killed with SIGKILL after some bytes went through.
        let killed = try Self.sh(h, """
            mkfifo in.fifo
            docker run -i --name cut busybox cat < in.fifo > cut.out &
            pid=$!
            exec 3> in.fifo
            printf 'some bytes\\n' >&3
            for i in $(seq 100); do grep -q 'some bytes' cut.out 2>/dev/null && break; sleep 0.1; done
            kill -9 $pid
            for i in $(seq 100); do
              s=$(docker inspect --format '{{.State.Status}}' cut)
              [ "$s" = exited ] && break; sleep 0.1
            done
            exec 3>&-
            echo "$s"; cat cut.out
            """)
        #expect(killed.out == "exited\nsome bytes\n", "\(killed.out) \(killed.err)")
        #expect(try h.docker(["inspect", "--format", "{{.State.ExitCode}}", "cut"]).out == "0\n")
        #expect(try h.docker(["logs", "cut"]).out == "some bytes\n")

        // An attach with stdin that hangs up before any start: its stdin ends there, so the
        // next start's cat reads (at most) what it sent and ends.
        let id = try h.docker(["create", "-i", "busybox", "cat"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let attach = "POST /containers/\(id)/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        _ = h.raw(Array(attach.utf8) + Array("never delivered\n".utf8), closeAfterSend: true)
        usleep(300_000)
        #expect(try h.docker(["start", id]).status == 0)
        #expect(try h.docker(["wait", id]).out == "0\n")
        #expect(["", "never delivered\n"].contains(try h.docker(["logs", id]).out))

        // The server still serves, and nothing is left running.
        #expect(try h.docker(["ps", "-q"]).out == "")
        let v = try h.docker(["version", "--format", "{{.Server.Version}}"])
        #expect(v.status == 0, "\(v.err)")
        #expect(try h.docker(["rm", "cut", id]).status == 0)
    }

    /// `docker run -t`: the container runs on a terminal of its own, sized as the client's,
    /// its output one raw stream (attach and logs), what the client types its input.
    @Test func ttyRunsOnATerminal() throws {
        guard EngineHarness.dockerAvailable() else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but script (util-linux) is missing") }
            return
        }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        // runc (in the foreground) clears the terminal's ONLCR from a goroutine that races the
        // process's first output: lines end in "\n", or in dockerd's "\r\n" when the process
        // wrote first (seen under CI's load). Either is taken; nothing else is.
        func lines(_ s: String) -> String { s.replacingOccurrences(of: "\r\n", with: "\n") }
        let plain = try Self.sh(h, "docker run --rm -t busybox sh -c 'tty; echo hi; exit 4'")
        #expect(plain.status == 4, "\(plain.err)")
        #expect(lines(plain.out) == "/dev/pts/0\nhi\n", "\(plain)")

        // A client on a terminal (script gives it one): the size it sends, what it types.
        let typed = try Self.sh(h, """
            (sleep 2; printf 'abc\\r'; sleep 1) | timeout 30 script -qec \
              "stty rows 33 cols 111; docker run --rm -it busybox sh -c 'busybox stty size; read x; echo got \\$x'" /dev/null
            """)
        #expect(typed.out.contains("33 111") && typed.out.contains("got abc"), "\(typed)")

        // The log is the one stream; inspect says Tty; a resize of a stopped container is a 409.
        #expect(lines(try h.docker(["run", "--name", "tt", "-t", "busybox", "sh", "-c", "echo one; echo two >&2"]).out) == "one\ntwo\n")
        #expect(lines(try h.docker(["logs", "tt"]).out) == "one\ntwo\n")
        #expect(lines(try h.docker(["logs", "--tail", "1", "tt"]).out) == "two\n")
        #expect(try h.docker(["inspect", "--format", "{{.Config.Tty}}", "tt"]).out == "true\n")
        let resize = h.raw(Array("POST /containers/tt/resize?h=10&w=20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(resize.hasPrefix("HTTP/1.1 409"), "\(resize)")
        #expect(try h.docker(["rm", "tt"]).status == 0)
    }

    @Test func logsTailSinceUntilAndTimestamps() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        let five = try h.docker(["run", "--name", "five", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done; busybox sleep 0.3; echo e1 >&2; busybox sleep 0.3; printf tail"])
        #expect(five.status == 0, "\(five.err)")
        let tail2 = try h.docker(["logs", "--tail", "2", "five"])
        // The last two lines of both streams: e1 (stderr) and the unterminated "tail" (the
        // pauses keep the order: each stream has a pipe and a reader of its own).
        #expect(tail2.out == "tail" && tail2.err == "e1\n", "\(tail2)")
        let tail3 = try h.docker(["logs", "--tail", "3", "five"])
        #expect(tail3.out == "5\ntail" && tail3.err == "e1\n", "\(tail3)")
        #expect(try h.docker(["logs", "--tail", "0", "five"]).out == "")
        #expect(try h.docker(["logs", "--tail", "all", "five"]).out == "1\n2\n3\n4\n5\ntail")

        let stamped = try h.docker(["logs", "--timestamps", "--tail", "2", "five"])
        let line = stamped.err.split(separator: "\n").first.map(String.init) ?? ""
        // 2026-12-06T14:02:43.123456789Z e1
        #expect(line.hasSuffix("Z e1") && line.count == "2026-12-06T14:02:43.123456789Z e1".count, "\(stamped)")
        #expect(stamped.out.hasSuffix(" tail"), "\(stamped)")

        // A window around the run, and one after it.
        #expect(try h.docker(["logs", "--since", "10m", "five"]).out == "1\n2\n3\n4\n5\ntail")
        #expect(try h.docker(["logs", "--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z", "five"]).out == "")
        #expect(try h.docker(["logs", "--until", "2099-01-01T00:00:00Z", "--tail", "1", "five"]).out == "tail")
        let future = try h.docker(["logs", "--since", "2099-01-01T00:00:00Z", "five"])
        #expect(future.status == 0 && future.out == "" && future.err == "", "\(future)")
        #expect(try h.docker(["rm", "five"]).status == 0)

        // --follow with --tail: the last line so far, then what comes until the run ends.
        #expect(try h.docker(["run", "-d", "--name", "slow", "busybox", "sh", "-c", "echo a; echo b; busybox sleep 2; echo c"]).status == 0)
        for _ in 0..<50 {
            if try h.docker(["logs", "slow"]).out == "a\nb\n" { break }
            usleep(100_000)
        }
        let followed = try h.docker(["logs", "--follow", "--tail", "1", "slow"])
        #expect(followed.out == "b\nc\n", "\(followed)")
        #expect(try h.docker(["rm", "slow"]).status == 0)
    }

    /// A log written before strata kept times (no `container.log.times`): lines have the zero
    /// time; a later run's lines have theirs.
    @Test func logsKeptBeforeTimesWereRecorded() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }

        #expect(try h.docker(["run", "--name", "old", "busybox", "sh", "-c", "echo one; echo two"]).out == "one\ntwo\n")
        let id = try h.docker(["inspect", "--format", "{{.Id}}", "old"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.removeItem(atPath: h.root + "/containers/\(id)/container.log.times")
        #expect(try h.docker(["logs", "--tail", "1", "old"]).out == "two\n")
        #expect(try h.docker(["logs", "--timestamps", "--tail", "1", "old"]).out == "0001-01-01T00:00:00.000000000Z two\n")
        #expect(try h.docker(["logs", "--since", "10m", "old"]).out == "")

        #expect(try h.docker(["start", "-a", "old"]).out == "one\ntwo\n")
        #expect(try h.docker(["logs", "old"]).out == "one\ntwo\none\ntwo\n")
        #expect(try h.docker(["logs", "--since", "10m", "old"]).out == "one\ntwo\n")
        let stamped = try h.docker(["logs", "--timestamps", "old"]).out.split(separator: "\n")
        #expect(stamped.count == 4 && stamped[0].hasPrefix("0001-01-01T") && stamped[1].hasPrefix("0001-01-01T")
                && stamped[2].hasPrefix("20") && stamped[3].hasPrefix("20"), "\(stamped)")
        #expect(try h.docker(["rm", "old"]).status == 0)
    }

    @Test func psAndVolumeFilters() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        func ids(_ args: [String]) throws -> Set<String> {
            let r = try h.docker(["ps", "-q", "--no-trunc"] + args)
            #expect(r.status == 0, "\(args): \(r.err)")
            return Set(r.out.split(separator: "\n").map(String.init))
        }
        func create(_ args: [String]) throws -> String {
            let r = try h.docker(args)
            #expect(r.status == 0, "\(args): \(r.err)")
            return r.out.split(separator: "\n").last.map(String.init) ?? ""
        }
        #expect(try h.docker(["volume", "create", "data1"]).status == 0)
        #expect(try h.docker(["volume", "create", "data2"]).status == 0)
        let ok = try create(["run", "-d", "--name", "ok", "-v", "data1:/d", "busybox", "busybox", "true"])
        let three = try create(["run", "-d", "--name", "three", "busybox", "sh", "-c", "exit 3"])
        let fresh = try create(["create", "--name", "fresh", "busybox", "busybox", "true"])
        #expect(try h.docker(["wait", "ok", "three"]).out == "0\n3\n")
        // A child image: `ancestor=busybox` finds its containers too.
        #expect(try h.docker(["commit", "ok", "child:1"]).status == 0)
        let kid = try create(["create", "--name", "kid", "child:1", "busybox", "true"])
        let all: Set = [ok, three, fresh, kid]

        #expect(try ids(["-a"]) == all)
        #expect(try ids([]) == [])
        // status implies -a, as with dockerd.
        #expect(try ids(["-f", "status=exited"]) == [ok, three])
        #expect(try ids(["-f", "status=created"]) == [fresh, kid])
        #expect(try ids(["-f", "status=created", "-f", "status=exited"]) == all)
        #expect(try ids(["-a", "-f", "exited=3"]) == [three])
        #expect(try ids(["-a", "-f", "name=fresh"]) == [fresh])
        #expect(try ids(["-a", "-f", "name=^/?(ok|kid)$"]) == [ok, kid])
        #expect(try ids(["-a", "-f", "id=" + String(three.prefix(10))]) == [three])
        #expect(try ids(["-a", "-f", "ancestor=busybox"]) == all)
        #expect(try ids(["-a", "-f", "ancestor=child:1"]) == [kid])
        #expect(try ids(["-a", "-f", "ancestor=nosuchimage"]) == [])
        #expect(try ids(["-a", "-f", "label=app"]) == [])
        #expect(try ids(["-a", "-f", "volume=data1"]) == [ok])
        #expect(try ids(["-a", "-f", "since=three"]) == [fresh, kid])
        #expect(try ids(["-a", "-f", "before=three"]) == [ok])
        // before and since imply -a too (moby's list.go).
        #expect(try ids(["-f", "since=three"]) == [fresh, kid])
        #expect(try ids(["-a", "-f", "status=exited", "-f", "name=ok"]) == [ok])
        // `strata ps --filter` reads them the same way (it lists stopped containers, as -a).
        func strataIDs(_ args: [String]) throws -> Set<String> {
            let r = try h.strata(["ps", "-q", "--no-trunc"] + args)
            #expect(r.status == 0, "\(args): \(r.err)")
            return Set(r.out.split(separator: "\n").map(String.init))
        }
        for filters in [["status=exited"], ["name=^/?(ok|kid)$"], ["ancestor=busybox"], ["ancestor=child:1"], ["exited=3"],
                        ["volume=data1"], ["since=three"], ["status=created", "status=exited", "name=o"]] {
            let args = filters.flatMap { ["--filter", $0] }
            #expect(try strataIDs(args) == ids(["-a"] + args), "\(filters)")
        }
        let strataBad = try h.strata(["ps", "--filter", "status=sleepy"])
        #expect(strataBad.status != 0 && strataBad.err.contains("invalid filter 'status=sleepy'"), "\(strataBad)")
        // What the store says agrees.
        let store = try h.strata(["ps", "-a", "--format", "json"])
        #expect(store.out.components(separatedBy: "\"exited\"").count - 1 == 2, "\(store.out)")

        let bad = try h.docker(["ps", "-f", "status=sleepy"])
        #expect(bad.status != 0 && bad.err.contains("invalid filter 'status=sleepy'"), "\(bad)")
        let unknown = try h.docker(["ps", "-f", "colour=red"])
        #expect(unknown.status != 0 && unknown.err.contains("invalid filter 'colour'"), "\(unknown)")

        func volumes(_ args: [String]) throws -> [String] {
            let r = try h.docker(["volume", "ls", "-q"] + args)
            #expect(r.status == 0, "\(args): \(r.err)")
            return r.out.split(separator: "\n").map(String.init).sorted()
        }
        #expect(try volumes([]) == ["data1", "data2"])
        #expect(try volumes(["-f", "dangling=true"]) == ["data2"])
        #expect(try volumes(["-f", "dangling=false"]) == ["data1"])
        #expect(try volumes(["-f", "name=data1"]) == ["data1"])
        #expect(try volumes(["-f", "name=data"]) == ["data1", "data2"])
        #expect(try volumes(["-f", "driver=local"]) == ["data1", "data2"])
        for filters in [["dangling=true"], ["dangling=false"], ["name=data"]] {
            let args = filters.flatMap { ["--filter", $0] }
            let r = try h.strata(["volume", "ls", "-q"] + args)
            #expect(r.out.split(separator: "\n").map(String.init).sorted() == (try volumes(args)), "\(filters)")
        }
        let badVolume = try h.docker(["volume", "ls", "-f", "dangling=maybe"])
        #expect(badVolume.status != 0 && badVolume.err.contains("invalid filter 'dangling=maybe'"), "\(badVolume)")
        #expect(try h.docker(["rm", "ok", "three", "fresh", "kid"]).status == 0)
    }
}
