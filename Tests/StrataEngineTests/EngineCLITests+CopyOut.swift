import Foundation
import Testing

/// `docker cp` out of a container, streamed as the archive is made: a directory of a few MB
/// comes out byte for byte as it went in, the tar is the one `strata cp` writes, and the
/// answer carries the path's stat with no length (a chunked body).
extension EngineCLITests {
    @Test func copyOutStreamsADirectory() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["create", "--name", "box", "busybox", "sh"]).status == 0)
        // About 6 MB: random files of several sizes (one over the pipe's 1 MiB pieces), an
        // empty file, nested directories and a symlink.
        try h.shell("""
            mkdir -p data/a/b data/empty
            head -c 3000000 /dev/urandom > data/big.bin
            head -c 1048577 /dev/urandom > data/a/edge.bin
            for i in 1 2 3 4 5 6 7 8; do head -c $((i * 150001)) /dev/urandom > data/a/b/f$i; done
            : > data/a/zero
            ln -s a/edge.bin data/link
            """)
        let into = try h.docker(["cp", h.file("data"), "box:/data"])
        #expect(into.status == 0, "\(into.err)")

        // To a directory on the host, and as a tar on stdout: both as the files went in.
        let out = try h.docker(["cp", "box:/data", h.file("back")])
        #expect(out.status == 0, "\(out.err)")
        let same = try h.run("/usr/bin/diff", ["-r", "--no-dereference", h.file("data"), h.file("back")])
        #expect(same.status == 0, "\(same.out) \(same.err)")
        let tar = try EngineStdinTests.sh(h, "docker cp box:/data - > docker.tar && mkdir fromtar && tar -C fromtar -xf docker.tar")
        #expect(tar.status == 0, "\(tar.err)")
        let sameTar = try h.run("/usr/bin/diff", ["-r", "--no-dereference", h.file("data"), h.file("fromtar/data")])
        #expect(sameTar.status == 0, "\(sameTar.out) \(sameTar.err)")
        // The same bytes as strata's own archive of the path.
        let mine = try EngineStdinTests.sh(h, "STRATA_ROOT=\(h.root) \(EngineHarness.binary) cp box:/data - > strata.tar && cmp docker.tar strata.tar")
        #expect(mine.status == 0, "\(mine.out) \(mine.err)")

        // The head: the path's stat, a chunked body (no length); a missing path is a 404.
        let head = h.raw(Array("GET /containers/box/archive?path=/data/a/zero HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head.prefix(300))")
        let lower = head.lowercased()
        #expect(lower.contains("x-docker-container-path-stat:") && lower.contains("transfer-encoding: chunked")
                && !lower.contains("content-length:"), "\(head.prefix(300))")
        let missing = h.raw(Array("GET /containers/box/archive?path=/nosuch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(missing.hasPrefix("HTTP/1.1 404") && missing.contains("Could not find the file /nosuch in container box"), "\(missing)")
        #expect(try h.docker(["rm", "box"]).status == 0)
    }
}
