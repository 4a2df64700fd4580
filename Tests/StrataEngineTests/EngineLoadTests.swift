import Foundation
import Testing

/// `docker load` of an archive far larger than what the server lets wait between the socket
/// and the loader (``BodyPipe``'s 8 MiB): the body streams through with back-pressure, the
/// layer arrives whole (its diffID is the digest Python computed), and the server's memory
/// stays far below the archive's size.
@Suite(.serialized) struct EngineLoadTests {
    @Test func aLargeLoadStreamsWithBackPressure() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.start()
        defer { h.stop() }
        try h.shell("""
            python3 - <<'PY'
            import hashlib, io, json, random, tarfile
            rnd = random.Random(20261206)
            data = rnd.randbytes(128 << 20)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as t:
                i = tarfile.TarInfo("blob"); i.size = len(data); t.addfile(i, io.BytesIO(data))
            layer = buf.getvalue(); lh = hashlib.sha256(layer).hexdigest()
            cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + lh]}}).encode()
            ch = hashlib.sha256(cfg).hexdigest()
            with tarfile.open("big.tar", "w") as t:
                def add(name, b):
                    i = tarfile.TarInfo(name); i.size = len(b); t.addfile(i, io.BytesIO(b))
                add(lh + "/layer.tar", layer); add(ch + ".json", cfg)
                add("manifest.json", json.dumps([{"Config": ch + ".json", "RepoTags": ["big:1"], "Layers": [lh + "/layer.tar"]}]).encode())
            open("big.diffid", "w").write("sha256:" + lh)
            PY
            """)
        let loaded = try h.docker(["load", "-i", h.file("big.tar")])
        #expect(loaded.status == 0 && loaded.out.contains("Loaded image: big:1"), "\(loaded)")
        let diffID = try String(contentsOfFile: h.file("big.diffid"), encoding: .utf8)
        #expect(try h.docker(["image", "inspect", "--format", "{{index .RootFS.Layers 0}}", "big:1"]).out == diffID + "\n")
        // The server's peak memory (about 60 MB here): the 128 MiB body never sat in it.
        let pid = try #require(h.serverPID)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let peakKB = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? Int.max
        #expect(peakKB < 100 << 10, "strata serve peaked at \(peakKB) kB")
    }
}
