import Foundation
import Testing

/// `docker import` through `strata serve` with the real docker CLI: the body becomes a
/// one-layer image whose layer is the tar's (the same diffID `strata import` gives), and a
/// body that is no tar, or climbs out, is refused with the store unchanged.
@Suite(.serialized) struct EngineImportTests {
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
        let change = try h.docker(["import", "-c", "CMD [\"sh\"]", h.file("rootfs.tar"), "imp:5"])
        #expect(change.status != 0 && change.err.contains("--change"), "\(change)")
        #expect(try EngineHostileTests.snapshot(h) == before)
        #expect(!FileManager.default.fileExists(atPath: h.dir.deletingLastPathComponent().appendingPathComponent("climbed").path))
    }
}
