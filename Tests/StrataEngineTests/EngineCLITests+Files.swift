import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `docker diff`, `docker commit` and `docker cp` (both ways) through `strata serve`, checked
/// against what `strata` itself reads from the store.
extension EngineCLITests {
    @Test func diffCommitAndCopy() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["create", "--name", "web", "busybox", "sh"]).status == 0)
        try h.shell("echo 'hello from the host' > hello.txt && mkdir -p conf/sub && echo a=1 > conf/sub/app.conf")

        // docker cp into the container: a file to a new name, a directory into an existing one.
        let into = try h.docker(["cp", h.file("hello.txt"), "web:/hello.txt"])
        #expect(into.status == 0, "\(into.err)")
        let dirInto = try h.docker(["cp", h.file("conf"), "web:/etc/"])
        #expect(dirInto.status == 0, "\(dirInto.err)")
        // Ground truth: strata's own cp reads them back from the container.
        #expect(try h.strata(["cp", "web:/hello.txt", h.file("back.txt")]).status == 0)
        #expect(try String(contentsOfFile: h.file("back.txt"), encoding: .utf8) == "hello from the host\n")
        #expect(try h.strata(["cp", "web:/etc/conf/sub/app.conf", h.file("back.conf")]).status == 0)
        #expect(try String(contentsOfFile: h.file("back.conf"), encoding: .utf8) == "a=1\n")

        // docker cp out of the container: a file into a directory, a directory to a new name.
        try FileManager.default.createDirectory(atPath: h.file("out"), withIntermediateDirectories: true)
        let out = try h.docker(["cp", "web:/etc/passwd", "."], cwd: h.file("out"))
        #expect(out.status == 0, "\(out.err)")
        #expect(FileManager.default.contentsEqual(atPath: h.file("out/passwd"), andPath: h.file("r/etc/passwd")))
        let dirOut = try h.docker(["cp", "web:/etc", h.file("out/etc-copy")])
        #expect(dirOut.status == 0, "\(dirOut.err)")
        #expect(FileManager.default.contentsEqual(atPath: h.file("out/etc-copy/passwd"), andPath: h.file("r/etc/passwd")))
        #expect(try String(contentsOfFile: h.file("out/etc-copy/conf/sub/app.conf"), encoding: .utf8) == "a=1\n")
        // DIR/. copies the directory's contents.
        let contents = try h.docker(["cp", "web:/etc/.", h.file("out/etc-contents")])
        #expect(contents.status == 0, "\(contents.err)")
        #expect(FileManager.default.contentsEqual(atPath: h.file("out/etc-contents/passwd"), andPath: h.file("r/etc/passwd")))
        let missing = try h.docker(["cp", "web:/nosuch", h.file("out")])
        #expect(missing.status != 0)
        #expect(missing.err.contains("Could not find the file /nosuch in container web"), "\(missing.err)")
        // `..` stays inside the container's root: /../../etc/passwd is the container's own.
        let climb = try h.docker(["cp", "web:/../../etc/passwd", h.file("out/climbed")])
        #expect(climb.status == 0, "\(climb.err)")
        #expect(FileManager.default.contentsEqual(atPath: h.file("out/climbed"), andPath: h.file("r/etc/passwd")))

        // docker diff is strata diff, line for line.
        let diff = try h.docker(["diff", "web"])
        #expect(diff.status == 0, "\(diff.err)")
        let mine = try h.strata(["diff", "web"])
        #expect(diff.out == mine.out, "docker: \(diff.out) strata: \(mine.out)")
        #expect(diff.out.split(separator: "\n").contains("A /hello.txt"))
        #expect(diff.out.split(separator: "\n").contains("C /etc"))

        // docker commit: the new image is in the store, with the container's file and the change.
        let commit = try h.docker(["commit", "-c", "ENV GREETING=hi", "-m", "from docker", "web", "app:2"])
        #expect(commit.status == 0, "\(commit.err)")
        let app = try #require(try h.images().first { ($0["tags"] as? [String])?.contains("app:2") == true })
        #expect(commit.out == "\(app["id"] as? String ?? "?")\n")
        let inspect = try h.strata(["inspect", "app:2"])
        #expect(inspect.out.contains("GREETING=hi"))
        let history = try h.strata(["history", "--no-trunc", "app:2"])
        #expect(history.out.contains("from docker"))
        let cat = try h.strata(["run", "--rm", "app:2", "cat", "/hello.txt"])
        #expect(cat.out == "hello from the host\n", "\(cat.err)")
        let bad = try h.docker(["commit", "-c", "FROM x", "web", "app:3"])
        #expect(bad.status != 0)
        #expect(bad.err.contains("invalid change"), "\(bad.err)")
        // strata cp with `-`: the same archives on standard output and input.
        let s = "STRATA_ROOT='\(h.root)' '\(EngineHarness.binary)'"
        try h.shell("mkdir -p piped && \(s) cp web:/etc - | tar -C piped -x && mkdir -p up/new && echo up > up/new/f && tar -C up -c new | \(s) cp - web:/etc")
        #expect(FileManager.default.contentsEqual(atPath: h.file("piped/etc/passwd"), andPath: h.file("r/etc/passwd")))
        #expect(try String(contentsOfFile: h.file("piped/etc/conf/sub/app.conf"), encoding: .utf8) == "a=1\n")
        let up = try h.docker(["cp", "web:/etc/new/f", h.file("up-back")])
        #expect(up.status == 0, "\(up.err)")
        #expect(try String(contentsOfFile: h.file("up-back"), encoding: .utf8) == "up\n")
        #expect(try h.docker(["rm", "web"]).status == 0)
    }

    /// A tar whose entries climb out (`../`), PUT into a container: refused, nothing written
    /// outside the container's root.
    @Test func copyIntoAContainerCannotEscape() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let id = try h.docker(["create", "busybox", "sh"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let marker = "strata-escape-\(UUID().uuidString.prefix(8))"
        try h.shell("mkdir -p evil/a && echo x > evil/a/f && tar -C evil/a -cf evil.tar --transform 's|^f$|../../../../../../../../tmp/\(marker)|' f")
        let tar = try Data(contentsOf: URL(fileURLWithPath: h.file("evil.tar")))
        let head = "PUT /v1.43/containers/\(id)/archive?path=/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: \(tar.count)\r\nConnection: close\r\n\r\n"
        let r = h.raw(Array(head.utf8) + [UInt8](tar))
        #expect(EngineHostileTests.status(r) == 400, "\(r.prefix(300))")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(marker)"))
        // Symlinks lead inside the container's root: an absolute one the archive makes (and
        // an entry below it), and one the PUT's path goes through.
        try h.shell("""
            mkdir -p sl && ln -s /tmp sl/hop && tar -C sl -cf link.tar hop
            mkdir -p sl2/hop && echo in > sl2/hop/\(marker)-a && tar -C sl2 -cf below.tar hop/\(marker)-a
            mkdir -p sl3 && echo in > sl3/\(marker)-b && tar -C sl3 -cf through.tar \(marker)-b
            """)
        for (tar, path) in [("link.tar", "/"), ("below.tar", "/"), ("through.tar", "/hop")] {
            let body = try Data(contentsOf: URL(fileURLWithPath: h.file(tar)))
            let put = "PUT /v1.43/containers/\(id)/archive?path=\(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            let answer = h.raw(Array(put.utf8) + [UInt8](body))
            #expect(EngineHostileTests.status(answer) == 200, "\(tar): \(answer.prefix(300))")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(marker)-a"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(marker)-b"))
        for name in ["\(marker)-a", "\(marker)-b"] {
            let back = try h.strata(["cp", "\(id):/tmp/\(name)", h.file(name)])
            #expect(back.status == 0, "\(name): \(back.err)")
        }
        // A path that climbs is resolved inside the root, not refused: / of the container.
        let stat = h.raw(Array("HEAD /v1.43/containers/\(id)/archive?path=/../../etc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(stat) == 200, "\(stat.prefix(300))")
        let none = h.raw(Array("HEAD /v1.43/containers/\(id)/archive?path=/nosuch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(none) == 404, "\(none.prefix(300))")
        #expect(try h.docker(["rm", id]).status == 0)
    }

    /// `docker cp -a` (copyUIDGID): the files belong to the container's user; without it they
    /// keep the archive's owners. Read back with strata's own archive of the container path.
    @Test func copyKeepsOrSetsOwners() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("mkdir -p own && printf 'FROM busybox\\nUSER 1234:5678\\n' > own/Dockerfile && echo data > plain.txt && mkdir -p tree/d && echo x > tree/d/f")
        #expect(try h.strata(["build", "-q", "-t", "owned", h.file("own")]).status == 0)
        try h.start()
        defer { h.stop() }
        let id = try h.docker(["create", "owned", "sh"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try h.docker(["cp", h.file("plain.txt"), "\(id):/kept.txt"]).status == 0)
        let a = try h.docker(["cp", "-a", h.file("plain.txt"), "\(id):/owned.txt"])
        #expect(a.status == 0, "\(a.err)")
        let dir = try h.docker(["cp", "-a", h.file("tree"), "\(id):/"])
        #expect(dir.status == 0, "\(dir.err)")
        func owners(_ path: String) throws -> [String] {
            try h.shell("STRATA_ROOT='\(h.root)' '\(EngineHarness.binary)' cp \(id):\(path) - > owners.tar")
            let list = try h.run("/bin/tar", ["-tv", "--numeric-owner", "-f", h.file("owners.tar")]).out
            return list.split(separator: "\n").map { String($0.split(separator: " ", omittingEmptySubsequences: true)[1]) }
        }
        let me = "\(getuid())/\(getgid())"
        #expect(try owners("/kept.txt") == [me])
        #expect(try owners("/owned.txt") == ["1234/5678"])
        #expect(try owners("/tree") == ["1234/5678", "1234/5678", "1234/5678"])
        #expect(try h.docker(["rm", id]).status == 0)
    }
}
