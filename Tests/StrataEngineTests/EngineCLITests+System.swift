import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `docker search` against a loopback registry, `docker build URL`, `docker system df -v`
/// through `strata serve`, checked against the registry's catalog and strata's own commands.
extension EngineCLITests {
    @Test func searchALoopbackRegistry() throws {
        guard EngineHarness.dockerAvailable() else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but docker-registry is missing: run tools/setup") }
            return
        }
        let h = try EngineHarness()
        let host = try h.startRegistry()
        try h.importBusybox()
        for repo in ["team/app", "team/db", "tools/app-cli"] {
            #expect(try h.strata(["tag", "busybox:latest", "\(host)/\(repo):1"]).status == 0)
            let push = try h.strata(["push", "\(host)/\(repo):1"])
            #expect(push.status == 0, "\(push.err)")
        }
        try h.start()
        defer { h.stop() }
        // Ground truth: the registry's own catalog, filtered by the term.
        let catalog = try h.run("/usr/bin/curl", ["-sf", "http://\(host)/v2/_catalog"])
        let repos = ((try JSONSerialization.jsonObject(with: Data(catalog.out.utf8)) as? [String: Any])?["repositories"] as? [String]) ?? []
        #expect(repos.count == 3, "\(catalog.out)")
        let expected = repos.filter { $0.contains("app") }.map { "\(host)/\($0)" }.sorted()

        let search = try h.docker(["search", "--format", "{{.Name}}", "\(host)/app"])
        #expect(search.status == 0, "\(search.err)")
        #expect(search.out.split(separator: "\n").map(String.init).sorted() == expected)
        let limited = try h.docker(["search", "--limit", "1", "--format", "{{.Name}}", "\(host)/app"])
        #expect(limited.out.split(separator: "\n").count == 1, "\(limited.out) \(limited.err)")
        #expect(try h.docker(["search", "--format", "{{.Name}}", "\(host)/nosuch"]).out == "")
        // Filters: a registry's repositories have no stars and are not official, as strata says.
        let unofficial = try h.docker(["search", "--filter", "is-official=false", "--format", "{{.Name}}", "\(host)/app"])
        #expect(unofficial.out.split(separator: "\n").map(String.init).sorted() == expected, "\(unofficial.err)")
        #expect(try h.docker(["search", "--filter", "stars=1", "--format", "{{.Name}}", "\(host)/app"]).out == "")
        let mine = try h.strata(["search", "--filter", "stars=1", "--format", "json", "\(host)/app"])
        #expect((try? JSONSerialization.jsonObject(with: Data(mine.out.utf8)) as? [Any])?.isEmpty == true, "\(mine.out) \(mine.err)")
        let bad = try h.docker(["search", "--filter", "bogus=1", "\(host)/app"])
        #expect(bad.status != 0 && bad.err.contains("invalid filter"), "\(bad.err)")
    }

    /// `docker build URL`: the CLI downloads the tar and sends it as the context; the image is
    /// the one the same context directory gives (its steps come from strata's own build's cache).
    @Test func buildFromAURL() throws {
        guard EngineHarness.dockerAvailable(), FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("""
            mkdir -p app/ctx www && echo 'key=value' > app/ctx/container.cfg
            printf 'FROM busybox\\nADD ctx/container.cfg /\\nCMD /bin/ls\\n' > app/Dockerfile
            tar -C app -czf www/ctx.tar.gz .
            """)
        let local = try h.strata(["build", "-q", "-t", "dir:1", h.file("app")])
        #expect(local.status == 0, "\(local.err)")
        let web = try h.serveFiles(h.file("www"))
        defer { web.stop() }
        try h.start()
        defer { h.stop() }
        let r = try h.docker(["build", "-t", "url:1", "\(web.base)/ctx.tar.gz"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("Step 2/3 : ADD ctx/container.cfg /"))
        #expect(r.out.contains(" ---> Using cache"))
        #expect(r.out.contains("Successfully tagged url:1"))
        let images = try h.images()
        let dir = images.first { ($0["tags"] as? [String])?.contains("dir:1") == true }?["id"] as? String
        let url = images.first { ($0["tags"] as? [String])?.contains("url:1") == true }?["id"] as? String
        #expect(dir != nil && dir == url)
        let missing = try h.docker(["build", "\(web.base)/nosuch.tar.gz"])
        #expect(missing.status != 0)
    }

    /// `docker network ls|inspect`: the `none` network containers are on unless they share the
    /// `host`'s (dockerd's fields), nothing else; `docker volume prune` keeps named volumes
    /// unless `-a`, as dockerd from API 1.42, and never one a container uses.
    @Test func networksAndVolumePrune() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]).out == "host host local\nnone null local\n")
        #expect(try h.docker(["network", "ls", "--format", "{{.Name}}", "--filter", "driver=null"]).out == "none\n")
        #expect(try h.docker(["network", "ls", "-q", "--filter", "name=bridge"]).out == "")
        #expect(try h.docker(["network", "ls", "-q", "--filter", "type=custom"]).out == "")
        let bad = try h.docker(["network", "ls", "--filter", "color=red"])
        #expect(bad.status != 0 && bad.err.contains("invalid filter"), "\(bad)")
        #expect(try h.docker(["create", "--name", "c", "-v", "used:/data", "busybox", "true"]).status == 0)
        let id = try h.docker(["inspect", "--format", "{{.Id}}", "c"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try h.docker(["inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}} {{.HostConfig.NetworkMode}}", "c"]).out == "none none\n")
        // Its Containers are the running ones, as dockerd's endpoints.
        #expect(try h.docker(["run", "-d", "--name", "r", "busybox", "busybox", "sleep", "60"]).status == 0)
        let running = try h.docker(["inspect", "--format", "{{.Id}}", "r"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let none = try JSONSerialization.jsonObject(with: Data(try h.docker(["network", "inspect", "none"]).out.utf8)) as? [[String: Any]]
        let attached = none?.first?["Containers"] as? [String: Any]
        #expect(none?.first?["Driver"] as? String == "null" && attached?[running] != nil && attached?[id] == nil, "\(String(describing: none))")
        #expect(try h.docker(["rm", "-f", "r"]).status == 0)
        let bridge = try h.docker(["network", "inspect", "bridge"])
        #expect(bridge.status != 0 && bridge.err.contains("network bridge not found"), "\(bridge)")
        let noneID = try h.docker(["network", "inspect", "--format", "{{.Id}}", "none"]).out
        #expect(try h.docker(["network", "inspect", "--format", "{{.Name}}", String(noneID.prefix(12))]).out == "none\n")
        let create = try h.docker(["network", "create", "app"])
        #expect(create.status != 0 && create.err.contains("no networks"), "\(create)")

        #expect(try h.docker(["volume", "create", "spare"]).status == 0)
        try "x".write(toFile: h.root + "/volumes/spare/data/f", atomically: true, encoding: .utf8)
        let keep = try h.docker(["volume", "prune", "-f"])
        #expect(keep.status == 0 && keep.out == "Total reclaimed space: 0B\n", "\(keep)")
        let all = try h.docker(["volume", "prune", "-a", "-f"])
        #expect(all.status == 0 && all.out.contains("spare") && !all.out.contains("used") && all.out.hasSuffix("Total reclaimed space: 1B\n"), "\(all)")
        #expect(try h.docker(["volume", "ls", "-q"]).out == "used\n")
    }

    /// `docker run --network host`: the container's ports are the host's (a server in it
    /// answers on the host's loopback), the choice is kept for every start, and inspect, `ps
    /// --filter network=` and `network inspect host` say so, as dockerd's.
    @Test func hostNetwork() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("mkdir -p www && echo 'served from a container' > www/index.html")
        try h.start()
        defer { h.stop() }
        let port = EngineHarness.freePort()
        let run = try h.docker(["run", "-d", "--name", "web", "--network", "host", "-v", "\(h.file("www")):/www",
                                "busybox", "busybox", "httpd", "-f", "-p", "127.0.0.1:\(port)", "-h", "/www"])
        #expect(run.status == 0, "\(run)")
        #expect(try h.fetch("http://127.0.0.1:\(port)/index.html") == "served from a container\n")
        #expect(try h.docker(["inspect", "--format", "{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", "web"]).out == "host host\n")
        // Inspecting a running container asks runc for its PID: the server keeps no descriptor
        // of it (each inspect used to leave two pipes open).
        let pid = try #require(h.serverPID)
        let descriptors = { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        _ = try h.docker(["inspect", "web"])
        let open = descriptors()
        for _ in 0..<30 { _ = try h.docker(["inspect", "web"]) }
        #expect(descriptors() < open + 10, "\(open) descriptors before 30 inspects, \(descriptors()) after")
        #expect(try h.docker(["ps", "--format", "{{.Names}}", "--filter", "network=host"]).out == "web\n")
        #expect(try h.docker(["ps", "-a", "--format", "{{.Names}}", "--filter", "network=none"]).out == "")
        let inspected = try JSONSerialization.jsonObject(with: Data(try h.docker(["network", "inspect", "host"]).out.utf8)) as? [[String: Any]]
        #expect((inspected?.first?["Containers"] as? [String: Any])?.count == 1 && inspected?.first?["Driver"] as? String == "host")
        // Kept for the next start: stopped, started again, it serves again.
        #expect(try h.docker(["stop", "-t", "0", "web"]).status == 0)
        #expect(try h.docker(["start", "web"]).status == 0)
        #expect(try h.fetch("http://127.0.0.1:\(port)/index.html") == "served from a container\n")
        // On the host's network, the host's resolv.conf and hosts, as dockerd gives it.
        let resolv = try h.docker(["run", "--rm", "--network", "host", "busybox", "cat", "/etc/resolv.conf", "/etc/hosts"])
        #expect(resolv.out == (try String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) + (try String(contentsOfFile: "/etc/hosts", encoding: .utf8)), "\(resolv)")
        #expect(try h.docker(["rm", "-f", "web"]).status == 0)
        // The default network is the container's own, empty but for its loopback.
        let own = try h.docker(["run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net"])
        #expect(own.status == 0 && own.out == "lo\n", "\(own)")

        let before = try EngineHostileTests.snapshot(h)
        let bridge = try h.docker(["run", "--network", "mine", "busybox", "true"])
        #expect(bridge.status != 0 && bridge.err.contains("none or host network only"), "\(bridge)")
        #expect(try EngineHostileTests.snapshot(h) == before)
        // On the host's network, published ports mean nothing: dockerd's warning, no error.
        let discarded = try h.docker(["create", "--network", "host", "-p", "8080:80", "busybox", "true"])
        #expect(discarded.status == 0 && discarded.err.contains("Published ports are discarded"), "\(discarded)")
    }

    /// `docker run -p`: a server in the container answers on the published host port (a
    /// fixed one, or one the system chose, which `docker port` and `ps` report), only while
    /// it runs, again after a restart; a port in use fails the start (and a `--rm` container
    /// goes, as with dockerd), UDP is refused, and the store is left as it was.
    @Test func publishedPorts() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("mkdir -p www && echo 'published page' > www/index.html")
        try h.start()
        defer { h.stop() }
        let fetch = { (port: String) throws -> String in try h.fetch("http://127.0.0.1:\(port)/index.html") }
        let fixed = String(EngineHarness.freePort())
        let server = ["busybox", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
        #expect(try h.docker(["run", "-d", "--name", "web", "-p", "\(fixed):80", "-v", "\(h.file("www")):/www"] + server).status == 0)
        #expect(try fetch(fixed) == "published page\n")
        #expect(try h.docker(["port", "web"]).out == "80/tcp -> 0.0.0.0:\(fixed)\n")
        #expect(try h.docker(["ps", "--format", "{{.Names}} {{.Ports}}"]).out == "web 0.0.0.0:\(fixed)->80/tcp\n")
        // A free port the system chose, on the address given.
        #expect(try h.docker(["run", "-d", "--name", "any", "-p", "127.0.0.1::80", "--expose", "443", "-v", "\(h.file("www")):/www"] + server).status == 0)
        let chosen = try h.docker(["port", "any", "80"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(chosen.hasPrefix("127.0.0.1:"), "\(chosen)")
        #expect(try fetch(String(chosen.dropFirst("127.0.0.1:".count))) == "published page\n")
        // ps --filter publish= (the host's side) and expose= (the container's), as dockerd.
        #expect(try h.docker(["ps", "--format", "{{.Names}}", "--filter", "publish=\(fixed)/tcp"]).out == "web\n")
        #expect(try h.docker(["ps", "--format", "{{.Names}}", "--filter", "expose=79-81"]).out.split(separator: "\n").sorted() == ["any", "web"])
        #expect(try h.docker(["ps", "-q", "--filter", "publish=\(fixed)/udp"]).out == "")
        // An exposed port that is not published: in the config, null in Ports, alone in ps.
        #expect(try h.docker(["inspect", "--format", "{{json .Config.ExposedPorts}} {{json (index .NetworkSettings.Ports \"443/tcp\")}}", "any"]).out
                == "{\"443/tcp\":{},\"80/tcp\":{}} null\n")
        #expect(try h.docker(["ps", "--format", "{{.Names}}", "--filter", "expose=443"]).out == "any\n")
        #expect(try h.docker(["ps", "--format", "{{.Ports}}", "--filter", "name=any"]).out == "443/tcp, \(chosen)->80/tcp\n")
        // A port in use fails the start; the --rm container goes, as dockerd's.
        let containers = try h.docker(["ps", "-a", "-q"]).out
        let taken = try h.docker(["run", "--rm", "-p", "\(fixed):80", "busybox", "true"])
        #expect(taken.status != 0 && taken.err.contains("cannot publish port 80 on 0.0.0.0:\(fixed)") && taken.err.contains("in use"), "\(taken)")
        #expect(try h.docker(["ps", "-a", "-q"]).out == containers)
        // Only while it runs: stopped, the port is closed and inspect lists none; started, both again.
        #expect(try h.docker(["stop", "-t", "0", "web"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{json .NetworkSettings.Ports}} {{json .HostConfig.PortBindings}}", "web"]).out
                == "{} {\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"\(fixed)\"}]}\n")
        #expect(try h.run("/usr/bin/curl", ["-s", "--max-time", "2", "http://127.0.0.1:\(fixed)/index.html"]).status == 7)  // refused
        #expect(try h.docker(["start", "web"]).status == 0)
        #expect(try fetch(fixed) == "published page\n")
        #expect(try h.docker(["rm", "-f", "web", "any"]).status == 0)

        // `strata run -p`, the CLI's own run in the foreground, publishes the same way.
        let cliPort = String(EngineHarness.freePort())
        let cli = try h.run("/bin/bash", ["-c", """
            "$STRATA" run --rm -p \(cliPort):80 -v "$WWW":/www busybox sh -c 'httpd -p 80 -h /www; sleep 3' >/dev/null &
            for i in $(seq 50); do page=$(curl -s --max-time 1 http://127.0.0.1:\(cliPort)/index.html) && [ -n "$page" ] && break; sleep 0.1; done
            echo "$page"; wait
            """], env: ["STRATA": EngineHarness.binary, "STRATA_ROOT": h.root, "WWW": h.file("www")])
        #expect(cli.out == "published page\n", "\(cli)")

        let before = try EngineHostileTests.snapshot(h)
        let sctp = try h.docker(["run", "-p", "53:53/sctp", "busybox", "true"])
        #expect(sctp.status != 0 && sctp.err.contains("TCP and UDP ports only"), "\(sctp)")
        for bad in [#"{"80/tcp": [{"HostPort": 8080}]}"#, #"{"80/tcp": "8080"}"#, #"{"http": []}"#, #"["80"]"#, #"{"80/tcp": [{"HostIp": "::1"}]}"#] {
            let body = #"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"PortBindings": "# + bad + "}}"
            let r = h.raw(Array("POST /v1.43/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8))
            #expect(EngineHostileTests.status(r) == 400, "\(bad): \(r.prefix(300))")
        }
        #expect(try EngineHostileTests.snapshot(h) == before)
    }

    /// `docker events`: what the store recorded (the server's changes and the CLI's beside
    /// it), with `--since`/`--until`, filters, a live follower, and a shutdown that ends the
    /// follower's stream instead of waiting for it.
    @Test func eventsAsTheStoreRecordsThem() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        // From the next whole second: the import above is not in the window.
        let since = EngineHarness.nextWholeSecond()
        // A follower, a child of this process (a shell's background job would inherit
        // Foundation's process-watch socket and hold the wait of h.run).
        let live = h.file("live.txt")
        FileManager.default.createFile(atPath: live, contents: nil)
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker") ? "/usr/local/bin/docker" : "/usr/bin/docker")
        // From `since`, so a follower that connects late (a loaded run) still sees it all.
        follower.arguments = ["events", "--since", since, "--format", "{{.Type}} {{.Action}}"]
        follower.environment = ProcessInfo.processInfo.environment.merging(["DOCKER_HOST": "unix://\(h.socket)", "DOCKER_CONFIG": h.file("docker-config")]) { $1 }
        follower.standardInput = FileHandle.nullDevice
        follower.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: live))
        follower.standardError = FileHandle.nullDevice
        try follower.run()
        defer { if follower.isRunning { follower.terminate() } }
        usleep(500_000)
        let run = try h.docker(["run", "--name", "c1", "--label", "team=x", "busybox", "sh", "-c", "exit 3"])
        #expect(run.status == 3, "\(run)")
        #expect(try h.docker(["rename", "c1", "c2"]).status == 0)
        #expect(try h.docker(["rm", "c2"]).status == 0)
        #expect(try h.docker(["tag", "busybox", "b:2"]).status == 0)
        #expect(try h.docker(["rmi", "b:2"]).status == 0)
        #expect(try h.docker(["volume", "create", "v"]).status == 0)
        // The CLI beside the server writes the same store: its changes are events too.
        #expect(try h.strata(["tag", "busybox:latest", "cli:1"]).status == 0)
        let until = String(Int(Date().timeIntervalSince1970) + 1)
        let format = #"{{.Type}} {{.Action}} {{index .Actor.Attributes "name"}} {{index .Actor.Attributes "exitCode"}}{{index .Actor.Attributes "team"}}"#
        let all = try h.docker(["events", "--since", since, "--until", until, "--format", format])
        #expect(all.status == 0, "\(all)")
        let id = try h.docker(["image", "inspect", "--format", "{{.Id}}", "busybox"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(all.out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) } == [
            "container create c1 x", "container attach c1 x", "container start c1 x", "container die c1 3x", "container rename c2 x", "container destroy c2 x",
            "image tag b:2", "image untag \(id)", "volume create", "image tag cli:1",
        ], "\(all.out)")
        // Filters, and the JSON fields docker-py reads.
        let died = try h.docker(["events", "--since", since, "--until", until, "--filter", "event=die", "--filter", "label=team=x",
                                 "--format", "{{.Actor.Attributes.exitCode}} {{.From}} {{.Status}}"])
        #expect(died.out == "3 busybox die\n", "\(died)")
        #expect(try h.docker(["events", "--since", since, "--until", until, "--filter", "image=cli", "--format", "{{.Action}}"]).out == "tag\n")
        #expect(try h.docker(["events", "--since", since, "--until", until, "--filter", "type=network"]).out == "")
        let bad = try h.docker(["events", "--since", since, "--until", until, "--filter", "color=red"])
        #expect(bad.status != 0 && bad.err.contains("invalid filter"), "\(bad)")
        // The follower saw them as they happened.
        var seen = ""
        for _ in 0..<300 {
            seen = (try? String(contentsOfFile: live, encoding: .utf8)) ?? ""
            if seen.contains("image tag\nimage untag\nvolume create\nimage tag") { break }
            usleep(100_000)
        }
        #expect(seen.hasPrefix("container create\ncontainer attach\ncontainer start\ncontainer die\n") && seen.hasSuffix("volume create\nimage tag\n"), "\(seen)")
        // A shutdown ends the follower's endless stream: the server exits with 0 (the harness
        // kills it after 15 s of waiting), and the follower's docker sees its stream end.
        #expect(h.stop() == 0)
        for _ in 0..<300 where follower.isRunning { usleep(100_000) }
        #expect(!follower.isRunning)
    }

    /// The operations that change no row record dockerd's events as well, in dockerd's order
    /// and with its attributes: exec, kill, stop, restart, commit, save.
    @Test func operationEventsAsDockerdRecordsThem() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        // From the next whole second: the import above is not in the window.
        let since = EngineHarness.nextWholeSecond()
        #expect(try h.docker(["run", "-d", "--name", "c1", "--label", "team=x", "busybox", "busybox", "sleep", "60"]).status == 0)
        let exec = try h.docker(["exec", "c1", "sh", "-c", "exit 4"])
        #expect(exec.status == 4, "\(exec)")
        #expect(try h.docker(["kill", "c1"]).status == 0)
        #expect(try h.docker(["wait", "c1"]).out == "137\n")
        #expect(try h.docker(["commit", "-m", "snap", "c1", "snap:1"]).status == 0)
        #expect(try h.docker(["save", "-o", h.file("snap.tar"), "snap:1"]).status == 0)
        #expect(try h.docker(["run", "-d", "--name", "c2", "busybox", "busybox", "sleep", "60"]).status == 0)
        #expect(try h.docker(["restart", "-t", "0", "c2"]).status == 0)
        #expect(try h.docker(["stop", "-t", "0", "c2"]).status == 0)
        let until = String(Int(Date().timeIntervalSince1970) + 1)
        let format = #"{{.Type}}|{{.Action}}|{{.Actor.Attributes.name}}|{{.Actor.Attributes.team}}|{{index .Actor.Attributes "signal"}}{{index .Actor.Attributes "exitCode"}}{{index .Actor.Attributes "comment"}}{{index .Actor.Attributes "imageRef"}}"#
        let all = try h.docker(["events", "--since", since, "--until", until, "--format", format])
        #expect(all.status == 0, "\(all)")
        let snap = try h.docker(["image", "inspect", "--format", "{{.Id}}", "snap:1"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(all.out.split(separator: "\n").map(String.init) == [
            "container|create|c1|x|", "container|start|c1|x|",
            "container|exec_create: sh -c exit 4|c1|x|", "container|exec_start: sh -c exit 4|c1|x|", "container|exec_die|c1|x|4",
            "container|kill|c1|x|9", "container|die|c1|x|137",
            "image|tag|snap:1|x|", "container|commit|c1|x|snapsnap:1",
            "image|save|\(snap)|x|",
            "container|create|c2|<no value>|", "container|start|c2|<no value>|",
            "container|kill|c2|<no value>|9", "container|die|c2|<no value>|137", "container|stop|c2|<no value>|",
            "container|start|c2|<no value>|", "container|restart|c2|<no value>|",
            "container|kill|c2|<no value>|9", "container|die|c2|<no value>|137", "container|stop|c2|<no value>|",
        ], "\(all.out)")
        // dockerd's fuzzy match for the actions that carry their command.
        let execs = try h.docker(["events", "--since", since, "--until", until, "--filter", "event=exec_start", "--format", "{{.Action}} {{.Actor.Attributes.execID}}"])
        let words = execs.out.split(separator: " ")
        #expect(execs.out.hasPrefix("exec_start: sh -c exit 4 ") && words.last?.count == 65, "\(execs)")
    }

    /// `docker system df` and `-v`: containers, volumes and build cache as strata counts them.
    @Test func systemDiskUsageVerbose() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("mkdir -p app && printf 'FROM busybox\\nRUN echo built > /built\\nCMD /bin/ls\\n' > app/Dockerfile")
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["build", "-t", "app:1", "."], cwd: h.file("app")).status == 0)
        let run = try h.docker(["run", "--name", "c1", "-v", "data:/data", "busybox", "sh", "-c", "echo hello > /data/f; echo changed > /new"])
        #expect(run.status == 0, "\(run.err)")

        let df = try h.docker(["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"])
        #expect(df.status == 0, "\(df.err)")
        let containers = try h.strata(["ps", "-a", "-q"]).out.split(separator: "\n").count
        let volumes = try h.strata(["volume", "ls", "-q"]).out.split(separator: "\n").count
        let du = try h.strata(["builder", "du", "--format", "json"])
        let cache = ((try? JSONSerialization.jsonObject(with: Data(du.out.utf8))) as? [Any])?.count ?? -1
        #expect(containers == 1 && volumes == 1 && cache >= 2, "\(du.out)")
        let rows = df.out.split(separator: "\n").map(String.init)
        #expect(rows.contains("Containers \(containers) 0"), "\(df.out)")
        #expect(rows.contains("Local Volumes \(volumes) 1"), "\(df.out)")
        #expect(rows.contains("Build Cache \(cache) 0"), "\(df.out)")

        let verbose = try h.docker(["system", "df", "-v"])
        #expect(verbose.status == 0, "\(verbose.err)")
        let lines = verbose.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        // The volume: name, one container, 6 bytes ("hello\n").
        #expect(lines.contains(["data", "1", "6B"]), "\(verbose.out)")
        // The container: its short ID, one local volume, the writable layer's size, its name.
        let cid = try h.strata(["ps", "-a", "-q"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let row = try #require(lines.first { $0.first == cid })
        #expect(row.last == "c1")
        #expect(row.contains("8B"), "\(row)")  // "changed\n"
        // One line per build-cache entry, by its ID.
        let first = try #require(((try? JSONSerialization.jsonObject(with: Data(du.out.utf8))) as? [[String: Any]])?.first?["key"] as? String)
        #expect(verbose.out.contains(String(first.dropFirst("sha256:".count).prefix(12))) || verbose.out.contains(String(first.prefix(12))), "\(first)")
        // The API's build cache: each entry's CreatedAt is when strata stored its step's image.
        let raw = h.raw(Array("GET /v1.43/system/df HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        let body = try #require(raw.range(of: "\r\n\r\n").map { String(raw[$0.upperBound...]) })
        let api = try #require((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["BuildCache"] as? [[String: Any]])
        let entries = try #require((try? JSONSerialization.jsonObject(with: Data(du.out.utf8))) as? [[String: Any]])
        #expect(api.count == entries.count)
        for e in entries {
            let row = api.first { $0["ID"] as? String == e["key"] as? String }
            #expect(row?["CreatedAt"] as? String != nil && row?["CreatedAt"] as? String == e["created"] as? String, "\(String(describing: row)) \(e)")
        }
        #expect(try h.docker(["rm", "c1"]).status == 0)
    }

    /// `docker build` with `-f`, `--build-arg`, `--target`, `--no-cache` and `-q`: what the
    /// images hold (run by strata), the IDs strata lists, the cache used or not.
    @Test func buildFlags() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("""
            mkdir -p flags && printf 'FROM busybox AS one\\nARG X=def\\nRUN echo $X > /x\\nFROM one AS two\\nRUN echo two > /y\\n' > flags/Build.alt
            """)
        try h.start()
        defer { h.stop() }
        func id(_ tag: String) throws -> String? {
            try h.images().first { ($0["tags"] as? [String])?.contains(tag) == true }?["id"] as? String
        }
        let one = try h.docker(["build", "-f", "Build.alt", "--build-arg", "X=given", "--target", "one", "-t", "t1", "."], cwd: h.file("flags"))
        #expect(one.status == 0, "\(one.err)")
        #expect(one.out.contains("Successfully tagged t1:latest"))
        #expect(try h.strata(["run", "--rm", "t1", "cat", "/x"]).out == "given\n")
        #expect(try h.strata(["run", "--rm", "t1", "cat", "/y"]).status != 0)  // stage two was not built

        let again = try h.docker(["build", "-f", "Build.alt", "--build-arg", "X=given", "--target", "one", "-t", "t1", "."], cwd: h.file("flags"))
        #expect(again.out.contains(" ---> Using cache"))
        let t1 = try #require(try id("t1:latest"))
        #expect(again.out.contains("Successfully built \(t1.dropFirst(7).prefix(12))"))

        let quiet = try h.docker(["build", "-q", "-f", "Build.alt", "--build-arg", "X=given", "-t", "t2", "."], cwd: h.file("flags"))
        #expect(quiet.status == 0, "\(quiet.err)")
        #expect(quiet.out == "\(try id("t2:latest") ?? "?")\n")
        #expect(try h.strata(["run", "--rm", "t2", "cat", "/y"]).out == "two\n")

        let fresh = try h.docker(["build", "--no-cache", "-f", "Build.alt", "--build-arg", "X=given", "--target", "one", "-t", "t3", "."], cwd: h.file("flags"))
        #expect(fresh.status == 0, "\(fresh.err)")
        #expect(!fresh.out.contains("Using cache"))
        #expect(try h.strata(["run", "--rm", "t3", "cat", "/x"]).out == "given\n")

        // docker images -a lists the intermediate images the steps made, as strata images -a does.
        let all = try h.docker(["images", "-a", "-q", "--no-trunc"]).out.split(separator: "\n").map(String.init)
        let stored = try h.images()
        let mine = stored.compactMap { $0["id"] as? String }
        // docker prints an ID once per row: once per tag (two builds of one image in the same
        // second give one image two tags), once for an untagged image.
        let rows = stored.reduce(0) { $0 + max(1, ($1["tags"] as? [String])?.count ?? 0) }
        #expect(Set(all) == Set(mine) && all.count == rows, "\(all) \(mine)")
        let tagged = try h.docker(["images", "-q", "--no-trunc"]).out.split(separator: "\n")
        #expect(tagged.count < all.count)
    }
}
