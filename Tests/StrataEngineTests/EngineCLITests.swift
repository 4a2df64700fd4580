import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real docker CLI (28.x, a client only) against `strata serve` on a temporary store:
/// what docker prints and does must agree with what the store holds.
@Suite(.serialized) struct EngineCLITests {
    @Test func versionInfoAndSocket() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.start()
        defer { h.stop() }
        var st = stat()
        #expect(lstat(h.socket, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o660)

        let v = try h.docker(["version", "--format", "{{.Server.Platform.Name}} {{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"])
        #expect(v.status == 0, "\(v.err)")
        #expect(v.out == "strata 0.1.0 1.43 linux\n")
        try h.importBusybox()
        let i = try h.docker(["info", "--format", "{{.Images}} {{.OSType}} {{.ServerVersion}}"])
        #expect(i.status == 0, "\(i.err)")
        #expect(i.out == "1 linux 0.1.0\n")

        // A second server on the same socket is refused; the first keeps serving.
        let second = try h.strata(["serve", "--socket", h.socket])
        #expect(second.status == 1)
        #expect(second.err.contains("another server is listening"))
        #expect(try h.docker(["version", "--format", "{{.Server.Version}}"]).out == "0.1.0\n")

        // SIGTERM: exits 0 and removes the socket.
        #expect(h.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: h.socket))
    }

    /// The socket appears with its final mode: a client polling for it never finds it 0755
    /// (a server that binds and then chmods leaves such a window).
    @Test func theSocketAppearsWithItsFinalMode() throws {
        let h = try EngineHarness()
        for _ in 0..<12 {
            let p = try h.launch()
            var st = stat()
            let deadline = Date().addingTimeInterval(20)
            var found = false
            while !found && p.isRunning && Date() < deadline { found = lstat(h.socket, &st) == 0 }
            #expect(found, "\(h.serverLog())")
            #expect(st.st_mode & S_IFMT == S_IFSOCK)
            #expect(st.st_mode & 0o777 == 0o660)
            #expect(h.stop() == 0)
            #expect(!FileManager.default.fileExists(atPath: h.socket))
        }
        // Nothing but the socket was left in its directory.
        let dir = (h.socket as NSString).deletingLastPathComponent
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".s") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test func imagesInspectHistoryTagRmi() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let stored = try h.images()
        let id = try #require(stored.first?["id"] as? String)

        let listed = try h.docker(["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        #expect(listed.status == 0, "\(listed.err)")
        #expect(listed.out == "busybox:latest \(id)\n")

        let inspect = try h.docker(["image", "inspect", "--format", "{{.Id}} {{json .RepoTags}} {{json .RootFS.Layers}}", "busybox"])
        #expect(inspect.status == 0, "\(inspect.err)")
        let mine = try h.strata(["inspect", "busybox:latest"])
        let obj = try #require((try JSONSerialization.jsonObject(with: Data(mine.out.utf8)) as? [[String: Any]])?.first)
        let layers = ((obj["RootFS"] as? [String: Any])?["Layers"] as? [String]) ?? []
        #expect(inspect.out == "\(id) [\"busybox:latest\"] [\(layers.map { "\"\($0)\"" }.joined(separator: ","))]\n")

        let history = try h.docker(["history", "--no-trunc", "--format", "{{.ID}} {{.Comment}}", "busybox"])
        #expect(history.status == 0, "\(history.err)")
        #expect(history.out == "\(id) busybox-static\n")

        let tag = try h.docker(["tag", "busybox", "app:2"])
        #expect(tag.status == 0, "\(tag.err)")
        #expect(try h.images().first?["tags"] as? [String] == ["app:2", "busybox:latest"])

        let rmi = try h.docker(["rmi", "app:2"])
        #expect(rmi.status == 0, "\(rmi.err)")
        #expect(rmi.out == "Untagged: app:2\n")
        #expect(try h.images().first?["tags"] as? [String] == ["busybox:latest"])

        let missing = try h.docker(["image", "inspect", "nosuch:1"])
        #expect(missing.status != 0)
        #expect(missing.err.lowercased().contains("no such image"))

        let rmiAll = try h.docker(["rmi", "busybox"])
        #expect(rmiAll.status == 0, "\(rmiAll.err)")
        #expect(rmiAll.out == "Untagged: busybox:latest\nDeleted: \(id)\n")
        #expect(try h.images().isEmpty)
    }

    @Test func imageFilters() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("mkdir -p lab && printf 'FROM busybox\\nLABEL stage=build\\n' > lab/Dockerfile")
        sleep(1)  // before/since compare creation times, in seconds
        #expect(try h.strata(["build", "-q", "-t", "lab:1", h.file("lab")]).status == 0)
        try h.start()
        defer { h.stop() }
        func names(_ filter: String) throws -> String {
            let r = try h.docker(["images", "--filter", filter, "--format", "{{.Repository}}:{{.Tag}}"])
            #expect(r.status == 0, "\(filter): \(r.err)")
            return r.out
        }
        #expect(try names("label=stage=build") == "lab:1\n")
        #expect(try names("label=stage") == "lab:1\n")
        #expect(try names("label=stage=other") == "")
        #expect(try names("reference=busy*") == "busybox:latest\n")
        #expect(try names("dangling=true") == "")
        #expect(try names("dangling=false") == "lab:1\nbusybox:latest\n")
        #expect(try names("before=lab:1") == "busybox:latest\n")
        #expect(try names("since=busybox") == "lab:1\n")
        #expect(try names("reference=nosuch") == "")
        // Labels in the list, as the image configs have them (null without any).
        let list = h.raw(Array("GET /v1.43/images/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        let body = try #require(list.range(of: "\r\n\r\n").map { String(list[$0.upperBound...]) })
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]])
        func labels(_ tag: String) -> Any? { rows.first { ($0["RepoTags"] as? [String])?.contains(tag) == true }?["Labels"] }
        let inspected = try h.strata(["inspect", "lab:1"])
        let config = ((try JSONSerialization.jsonObject(with: Data(inspected.out.utf8)) as? [[String: Any]])?.first?["Config"] as? [String: Any])
        #expect(config?["Labels"] as? [String: String] == ["stage": "build"])
        #expect(labels("lab:1") as? [String: String] == config?["Labels"] as? [String: String])
        #expect(labels("busybox:latest") is NSNull)
        // A store from before the labels column (rows with NULL) gets them from the configs at open.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") {
            let db = h.root + "/strata.db"
            #expect(try h.run("/usr/bin/sqlite3", [db, "UPDATE images SET labels = NULL"]).status == 0)
            #expect(try names("label=stage=build") == "lab:1\n")  // through the server: from the blobs
            #expect(try h.strata(["images", "-q"]).status == 0)
            let filled = try h.run("/usr/bin/sqlite3", [db, "SELECT labels FROM images ORDER BY labels"]).out
            #expect(filled == "{\"stage\":\"build\"}\n{}\n", "\(filled)")
        }
        let bad = try h.docker(["images", "--filter", "bogus=1"])
        #expect(bad.status != 0)
        #expect(bad.err.contains("invalid filter"))
        #expect(try h.strata(["images", "--filter", "label=stage=build", "-q"]).out.split(separator: "\n").count == 1)
    }

    @Test func saveAndLoad() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        // docker save through the server gives the very bytes strata save writes.
        let viaDocker = h.file("docker.tar"), viaStrata = h.file("strata.tar")
        let save = try h.docker(["save", "-o", viaDocker, "busybox:latest"])
        #expect(save.status == 0, "\(save.err)")
        #expect(try h.strata(["save", "-o", viaStrata, "busybox:latest"]).status == 0)
        #expect(FileManager.default.contentsEqual(atPath: viaDocker, andPath: viaStrata))

        // docker load of an archive another store made.
        let other = h.file("other")
        #expect(try h.strata(["load", "-i", viaStrata], root: other).status == 0)
        #expect(try h.strata(["tag", "busybox:latest", "app:1"], root: other).status == 0)
        let appTar = h.file("app.tar")
        #expect(try h.strata(["save", "-o", appTar, "app:1"], root: other).status == 0)
        let load = try h.docker(["load", "-i", appTar])
        #expect(load.status == 0, "\(load.err)")
        #expect(load.out == "Loaded image: app:1\n")
        let tags = try h.images().first?["tags"] as? [String]
        #expect(tags == ["app:1", "busybox:latest"])

        // A skopeo-made docker-archive, when skopeo is here.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/skopeo") {
            let sk = h.file("sk.tar")
            let copy = try h.run("/usr/bin/skopeo", ["copy", "--quiet", "docker-archive:" + viaStrata, "docker-archive:" + sk + ":sk/app:3"])
            #expect(copy.status == 0, "\(copy.err)")
            let l = try h.docker(["load", "-i", sk])
            #expect(l.status == 0, "\(l.err)")
            #expect(l.out == "Loaded image: sk/app:3\n")
        }
    }

    @Test func classicBuildAndCache() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        try h.shell("""
            mkdir -p app/ctx && echo 'key=value' > app/ctx/container.cfg
            printf 'FROM busybox\\nADD ctx/container.cfg /\\nCMD /bin/ls\\n' > app/Dockerfile
            """)
        let first = try h.docker(["build", "-t", "app:1", "."], cwd: h.file("app"))
        #expect(first.status == 0, "\(first.err)")
        // The context upload's progress line is redrawn with \r (and "\r\n" is one Character).
        let lines = first.out.replacingOccurrences(of: "\r", with: "\n").split(separator: "\n").map(String.init)
        #expect(lines.contains("Step 1/3 : FROM busybox"))
        #expect(lines.contains("Step 2/3 : ADD ctx/container.cfg /"))
        #expect(lines.contains("Step 3/3 : CMD /bin/ls"))
        #expect(lines.contains("Successfully tagged app:1"))
        let built = try #require(lines.first { $0.hasPrefix("Successfully built ") }).dropFirst("Successfully built ".count)
        let stored = try h.images().first { ($0["tags"] as? [String])?.contains("app:1") == true }
        #expect((stored?["id"] as? String)?.dropFirst(7).prefix(12) == built)
        #expect(!first.out.contains("Using cache"))

        let second = try h.docker(["build", "-t", "app:1", "."], cwd: h.file("app"))
        #expect(second.status == 0, "\(second.err)")
        #expect(second.out.contains(" ---> Using cache"))
        #expect(second.out.contains("Successfully built \(built)"))

        // Labels (the query's labels JSON): one more LABEL step, on the image.
        let labeled = try h.docker(["build", "--label", "stage=ci", "--label", "note=a \"b\" $c", "-t", "app:lab", "."], cwd: h.file("app"))
        #expect(labeled.status == 0, "\(labeled.err)")
        #expect(labeled.out.contains("Step 4/4 : LABEL "))
        let labels = try h.docker(["image", "inspect", "--format", "{{json .Config.Labels}}", "app:lab"])
        #expect(labels.out == "{\"note\":\"a \\\"b\\\" $c\",\"stage\":\"ci\"}\n", "\(labels.out)")

        // A Dockerfile error comes back as the build's error.
        try h.shell("mkdir -p bad && printf 'FROM busybox\\nNOTANINSTRUCTION x\\n' > bad/Dockerfile")
        let bad = try h.docker(["build", "."], cwd: h.file("bad"))
        #expect(bad.status != 0)
        #expect(bad.err.lowercased().contains("notaninstruction"), "\(bad.err)")
    }

    @Test func loginPushPullAndPrune() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let peers = ["/usr/bin/docker-registry", "/usr/bin/htpasswd"]
        guard peers.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but docker-registry or htpasswd is missing: run tools/setup") }
            return
        }
        let h = try EngineHarness()
        let password = "s3cret-\(UUID().uuidString.prefix(8))"
        let host = try h.startRegistry(user: "ci", password: password)
        try h.importBusybox()
        let id = try #require(try h.images().first?["id"] as? String)
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["tag", "busybox", "\(host)/team/app:1"]).status == 0)

        let anonymous = try h.docker(["push", "\(host)/team/app:1"])
        #expect(anonymous.status != 0)
        #expect(anonymous.err.contains("401") || anonymous.err.lowercased().contains("unauthorized"), "\(anonymous.err)")
        let wrong = try h.docker(["login", host, "-u", "ci", "-p", "wrong"])
        #expect(wrong.status != 0)
        let login = try h.docker(["login", host, "-u", "ci", "-p", password])
        #expect(login.status == 0, "\(login.err)")
        #expect(login.out.contains("Login Succeeded"))

        let push = try h.docker(["push", "\(host)/team/app:1"])
        #expect(push.status == 0, "\(push.err)")
        #expect(push.out.contains("The push refers to repository [\(host)/team/app]"))
        #expect(push.out.contains("1: digest: sha256:"))

        #expect(try h.docker(["rmi", "\(host)/team/app:1", "busybox"]).status == 0)
        #expect(try h.images().isEmpty)
        let pull = try h.docker(["pull", "\(host)/team/app:1"])
        #expect(pull.status == 0, "\(pull.err)")
        #expect(pull.out.contains("Digest: sha256:"))
        let pulled = try h.images()
        #expect(pulled.first?["id"] as? String == id)
        #expect(pulled.first?["tags"] as? [String] == ["\(host)/team/app:1"])

        // The server keeps no credentials: not in the store, not in its log.
        let grep = try h.run("/bin/grep", ["-r", "-l", password, h.root, h.file("server.err"), h.file("server.out")])
        #expect(grep.out.isEmpty, "\(grep.out)")

        let prune = try h.docker(["image", "prune", "-a", "-f"])
        #expect(prune.status == 0, "\(prune.err)")
        #expect(prune.out.contains("deleted: \(id)"))
        #expect(try h.images().isEmpty)
        let cache = try h.docker(["builder", "prune", "-f"])
        #expect(cache.status == 0, "\(cache.err)")
        let df = try h.docker(["system", "df", "--format", "{{.Type}} {{.TotalCount}}"])
        #expect(df.status == 0, "\(df.err)")
        #expect(df.out.hasPrefix("Images 0\n"))
    }

    /// Containers strata made, as docker ps / inspect / rm see them; rmi of their image is a
    /// 409; volumes through docker volume.
    @Test func containersAndVolumes() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        let created = try h.strata(["create", "--snapshotter", "copy", "--name", "web", "-v", "data:/data", "busybox", "sh"])
        #expect(created.status == 0, "\(created.err)")
        let cid = created.out.trimmingCharacters(in: .whitespacesAndNewlines)
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["ps", "-q"]).out == "")
        let ps = try h.docker(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.State}}"])
        #expect(ps.out == "\(cid) web busybox created\n", "\(ps.err)")
        let inspect = try h.docker(["container", "inspect", "--format", "{{.Id}} {{.Name}} {{.State.Status}}", "web"])
        #expect(inspect.out == "\(cid) /web created\n", "\(inspect.err)")

        let conflict = h.raw(Array("DELETE /v1.43/images/busybox HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(conflict) == 409, "\(conflict.prefix(300))")
        #expect(conflict.contains("is using its referenced image"))
        // A second tag of that image goes without -f; the last one only with -f (the image stays).
        #expect(try h.docker(["tag", "busybox", "bb:x"]).status == 0)
        #expect(try h.docker(["rmi", "bb:x"]).out == "Untagged: bb:x\n")
        #expect(try h.docker(["tag", "busybox", "bb:y"]).status == 0)
        #expect(try h.docker(["rmi", "busybox"]).out == "Untagged: busybox:latest\n")
        let last = try h.docker(["rmi", "bb:y"])
        #expect(last.status != 0 && last.err.contains("must force"), "\(last.err)")
        #expect(try h.docker(["rmi", "-f", "bb:y"]).out == "Untagged: bb:y\n")
        let kept = try h.images()
        #expect(kept.count == 1 && (kept.first?["tags"] as? [String]) == [])
        #expect(try h.strata(["tag", kept.first?["id"] as? String ?? "?", "busybox:latest"]).status == 0)

        #expect(try h.docker(["volume", "ls", "-q"]).out == "data\n")
        #expect(try h.docker(["volume", "create", "v2"]).out == "v2\n")
        let vi = try h.docker(["volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Mountpoint}}", "v2"])
        #expect(vi.out == "v2 local \(h.root)/volumes/v2/data\n", "\(vi.err)")
        let busy = try h.docker(["volume", "rm", "data"])
        #expect(busy.status != 0)
        #expect(busy.err.contains("in use"))
        let noVolume = h.raw(Array("GET /v1.43/volumes/nosuch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(noVolume) == 404)

        #expect(try h.docker(["rm", "web"]).out == "web\n")
        #expect(try h.strata(["ps", "-a", "-q"]).out == "")
        #expect(try h.docker(["volume", "rm", "data", "v2"]).status == 0)
        #expect(try h.docker(["volume", "ls", "-q"]).out == "")
        let missing = try h.docker(["rm", "web"])
        #expect(missing.status != 0)
        #expect(missing.err.lowercased().contains("no such container"))
    }

    /// `POST /build?remote=URL` (docker's CLI downloads tar URLs itself; SDKs pass them on):
    /// the server fetches the context; a 404 is a 400 naming the download.
    @Test func remoteBuildContext() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("""
            mkdir -p app/ctx www && echo 'key=value' > app/ctx/container.cfg
            printf 'FROM busybox\\nADD ctx/container.cfg /\\nCMD /bin/ls\\n' > app/Dockerfile
            tar -C app -czf www/ctx.tar.gz .
            """)
        let web = try h.serveFiles(h.file("www"))
        defer { web.stop() }
        try h.start()
        defer { h.stop() }
        let url = "\(web.base)/ctx.tar.gz".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let r = h.raw(Array("POST /v1.43/build?t=remote%3A1&remote=\(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(r) == 200, "\(r.prefix(400))")
        #expect(r.contains("Step 2/3 : ADD ctx/container.cfg /"))
        #expect(r.contains("Successfully tagged remote:1"))
        #expect(try h.images().contains { ($0["tags"] as? [String])?.contains("remote:1") == true })
        let missing = "\(web.base)/nosuch.tar.gz".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let bad = h.raw(Array("POST /v1.43/build?remote=\(missing) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(bad) == 400, "\(bad.prefix(400))")
        #expect(bad.contains("unable to download the build context"))
    }
}

