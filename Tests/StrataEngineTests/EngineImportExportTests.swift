import Foundation
import Testing

/// `docker import` and `docker export` through `strata serve` with the real docker CLI: the
/// body becomes a one-layer image whose layer is the tar's (the same diffID `strata import`
/// gives), a body that is no tar, or climbs out, is refused with the store unchanged, and an
/// export is the container's root filesystem with its changes.
@Suite(.serialized) struct EngineImportExportTests {
    /// `docker import URL`: the server downloads the tar into the store's scratch space and
    /// imports it (the same layer as the file's), with dockerd's comment; the CLI does the
    /// same. A URL that serves nothing, or a tar that climbs out, leaves the store unchanged.
    @Test func importFromAURL() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("""
            mkdir -p www && cp rootfs.tar www/ && gzip -c rootfs.tar > www/rootfs.tar.gz
            python3 -c "
            import io, tarfile
            t = tarfile.open('www/climb.tar', 'w'); i = tarfile.TarInfo('../../climbed'); i.size = 1; t.addfile(i, io.BytesIO(b'x')); t.close()"
            """)
        let web = try h.serveFiles(h.file("www"))
        defer { web.stop() }
        try h.start()
        defer { h.stop() }
        let base = web.base, port = web.port
        let layers = { (ref: String) throws -> String in
            try h.docker(["image", "inspect", "--format", "{{json .RootFS.Layers}}", ref]).out
        }
        let imported = try h.docker(["import", "\(base)/rootfs.tar.gz", "url:1"])
        #expect(imported.status == 0 && imported.out.contains("sha256:"), "\(imported)")
        #expect(try layers("url:1") == layers("busybox:latest"))
        #expect(try h.docker(["history", "--format", "{{.Comment}}", "url:1"]).out == "Imported from \(base)/rootfs.tar.gz\n")
        #expect(try h.docker(["run", "--rm", "url:1", "echo", "runs"]).out == "runs\n")
        // No scheme is http, as dockerd (the docker CLI sends only URLs with one; a raw request).
        let raw = h.raw(Array("POST /v1.43/images/create?fromSrc=127.0.0.1%3A\(port)%2Frootfs.tar&repo=url&tag=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(raw) == 200 && raw.contains("Downloading from http://127.0.0.1:\(port)/rootfs.tar"), "\(raw.prefix(400))")
        #expect(try layers("url:2") == layers("busybox:latest"))
        // The CLI of the store, the same way.
        #expect(try h.strata(["import", "\(base)/rootfs.tar", "url:3"]).status == 0)
        #expect(try layers("url:3") == layers("busybox:latest"))

        let before = try EngineHostileTests.snapshot(h)
        let missing = try h.docker(["import", "\(base)/nosuch.tar", "url:4"])
        #expect(missing.status != 0 && missing.err.contains("\(base)/nosuch.tar") && missing.err.contains("404"), "\(missing)")
        let climb = try h.docker(["import", "\(base)/climb.tar", "url:5"])
        #expect(climb.status != 0 && climb.err.contains("unsafe path"), "\(climb)")
        let scheme = h.raw(Array("POST /v1.43/images/create?fromSrc=ftp%3A%2F%2F127.0.0.1%2Fx.tar HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        #expect(EngineHostileTests.status(scheme) == 400 && scheme.contains("is not an http:// or https:// URL"), "\(scheme.prefix(400))")
        let cli = try h.strata(["import", "\(base)/nosuch.tar", "url:6"])
        #expect(cli.status != 0 && cli.err.contains("nosuch.tar"), "\(cli)")
        #expect(try EngineHostileTests.snapshot(h) == before)
        #expect(!FileManager.default.fileExists(atPath: h.dir.deletingLastPathComponent().appendingPathComponent("climbed").path))
        // Nothing of the downloads is left in the store's scratch space.
        #expect(try FileManager.default.contentsOfDirectory(atPath: h.root + "/ingest").isEmpty)
    }

    @Test func importFromTheRequestBody() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()  // also writes rootfs.tar, imported by strata itself as busybox:latest
        try h.start()
        defer { h.stop() }
        let layers = { (ref: String) throws -> String in
            try h.docker(["image", "inspect", "--format", "{{json .RootFS.Layers}}", ref]).out
        }
        let imported = try h.docker(["import", "-m", "via docker", h.file("rootfs.tar"), "imp:1"])
        #expect(imported.status == 0 && imported.out.hasPrefix("sha256:"), "\(imported)")
        #expect(try layers("imp:1") == layers("busybox:latest"))
        #expect(try h.docker(["history", "--format", "{{.Comment}}", "imp:1"]).out == "via docker\n")
        // From stdin, without a message: dockerd's "Imported from -".
        try h.shell("docker -H unix://\(h.socket) import - imp:2 < rootfs.tar")
        #expect(try h.docker(["history", "--format", "{{.Comment}}", "imp:2"]).out == "Imported from -\n")
        #expect(try h.docker(["run", "--rm", "imp:2", "echo", "runs"]).out == "runs\n")

        // --change: Dockerfile instructions on an empty config, as moby's BuildFromConfig reads
        // them (words expand against the ENV before them; shell-form CMD is not expanded).
        let changed = try h.docker(["import", "-c", "ENV A=1 B=\"x y\"", "-c", "CMD echo $A", "-c", "LABEL k=$B", "-c", "EXPOSE 80",
                                    "-c", "EXPOSE 53/udp", "-c", "WORKDIR /w", "-c", "USER nobody", "-c", "VOLUME /data",
                                    "-c", "ENTRYPOINT [\"/bin/sh\", \"-c\"]", "-c", "STOPSIGNAL SIGINT", h.file("rootfs.tar"), "imp:6"])
        #expect(changed.status == 0, "\(changed)")
        let config = try JSONSerialization.jsonObject(with: Data(try h.docker(["image", "inspect", "--format", "{{json .Config}}", "imp:6"]).out.utf8)) as? [String: Any]
        #expect(config?["Env"] as? [String] == ["A=1", "B=x y"])
        #expect(config?["Cmd"] as? [String] == ["/bin/sh", "-c", "echo $A"])
        #expect(config?["Entrypoint"] as? [String] == ["/bin/sh", "-c"])
        #expect(config?["Labels"] as? [String: String] == ["k": "x y"])
        #expect((config?["ExposedPorts"] as? [String: Any]).map { Set($0.keys) } == ["80/tcp", "53/udp"])
        #expect((config?["Volumes"] as? [String: Any]).map { Set($0.keys) } == ["/data"])
        #expect(config?["WorkingDir"] as? String == "/w" && config?["User"] as? String == "nobody" && config?["StopSignal"] as? String == "SIGINT")
        #expect(try h.strata(["import", "-c", "CMD [\"/bin/echo\", \"from-cli\"]", h.file("rootfs.tar"), "imp:7"]).status == 0)
        #expect(try h.docker(["run", "--rm", "imp:7"]).out == "from-cli\n")

        let before = try EngineHostileTests.snapshot(h)
        try "not a tar\n".write(toFile: h.file("junk.tar"), atomically: true, encoding: .utf8)
        let junk = try h.docker(["import", h.file("junk.tar"), "imp:3"])
        #expect(junk.status != 0 && junk.err.contains("the request body is not a tar archive"), "\(junk)")
        try h.shell("""
            python3 -c "
            import io, tarfile
            t = tarfile.open('climb.tar', 'w'); i = tarfile.TarInfo('../../climbed'); i.size = 1; t.addfile(i, io.BytesIO(b'x')); t.close()"
            """)
        let climb = try h.docker(["import", h.file("climb.tar"), "imp:4"])
        #expect(climb.status != 0 && climb.err.contains("unsafe path"), "\(climb)")
        let bad = try h.docker(["import", "-c", "RUN true", h.file("rootfs.tar"), "imp:5"])
        #expect(bad.status != 0 && bad.err.contains("invalid change \"RUN true\""), "\(bad)")
        #expect(try EngineHostileTests.snapshot(h) == before)
        #expect(!FileManager.default.fileExists(atPath: h.dir.deletingLastPathComponent().appendingPathComponent("climbed").path))
    }

    @Test func exportIsTheContainersRootFilesystem() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["run", "--name", "ex", "busybox", "sh", "-c", "echo changed > /etc/motd; echo gone > /etc/passwd"]).status == 0)
        #expect(try h.docker(["export", "-o", h.file("ex.tar"), "ex"]).status == 0)
        // The same bytes as strata's own export, and the files the container left.
        #expect(try h.strata(["export", "-o", h.file("ex2.tar"), "ex"]).status == 0)
        #expect(FileManager.default.contentsEqual(atPath: h.file("ex.tar"), andPath: h.file("ex2.tar")))
        try h.shell("mkdir -p x && tar -C x -xf ex.tar && test \"$(cat x/etc/motd)\" = changed && test \"$(cat x/etc/passwd)\" = gone && cmp x/bin/busybox r/bin/busybox")
        // Through import again, it runs.
        try h.shell("docker -H unix://\(h.socket) import ex.tar flat:1 >/dev/null")
        #expect(try h.docker(["run", "--rm", "flat:1", "cat", "/etc/motd"]).out == "changed\n")
        let missing = try h.docker(["export", "no-such-container"])
        #expect(missing.status != 0 && missing.err.contains("no such container"), "\(missing)")
    }
}
