import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Requests no well-behaved client sends: the server answers 4xx and the store is unchanged.
@Suite(.serialized) struct EngineHostileTests {
    /// The status line's code of a raw HTTP response.
    static func status(_ response: String) -> Int? {
        guard response.hasPrefix("HTTP/1.1 ") else { return nil }
        return Int(response.dropFirst(9).prefix(3))
    }

    /// The store's visible state: images and the blob directory.
    static func snapshot(_ h: EngineHarness) throws -> String {
        let images = try h.strata(["images", "-a", "--format", "json"]).out
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: h.root + "/blobs/sha256").sorted()) ?? []
        return images + blobs.joined(separator: "\n")
    }

    @Test func malformedAndOversizedRequests() throws {
        let h = try EngineHarness()
        try h.start()
        defer { h.stop() }
        let huge = "GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100 << 10))\r\nConnection: close\r\n\r\n"
        let r1 = h.raw(Array(huge.utf8))
        #expect([400, 431].contains(Self.status(r1) ?? 0), "\(r1.prefix(200))")

        let r2 = h.raw(Array("NOT HTTP AT ALL\r\n\r\n".utf8))
        #expect(Self.status(r2) == 400, "\(r2.prefix(200))")

        let r3 = h.raw(Array("GET /v1.43/plugins HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(Self.status(r3) == 501)
        #expect(r3.contains("{\"message\":\"strata does not serve GET /plugins\"}"), "\(r3)")

        let r4 = h.raw(Array("GET /v9.99/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(Self.status(r4) == 400)

        // Unversioned paths work; the headers docker negotiates with are there.
        let r5 = h.raw(Array("HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(Self.status(r5) == 200)
        #expect(r5.contains("Api-Version: 1.43"))
        #expect(r5.contains("Builder-Version: 1"))

        // The server still answers after all that.
        #expect(Self.status(h.raw(Array("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))) == 200)
    }

    @Test func namesThatEscapeAreRefused() throws {
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        for target in ["/v1.43/images/..%2F..%2Fetc%2Fpasswd/json", "/v1.43/images/../../etc/passwd/json",
                       "/v1.43/images/get?names=..%2F..%2Fetc", "/v1.43/images/busybox/tag?repo=..%2Fx&tag=1"] {
            let method = target.contains("/tag?") ? "POST" : "GET"
            let r = h.raw(Array("\(method) \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            let code = Self.status(r) ?? 0
            #expect((400..<500).contains(code), "\(target): \(r.prefix(300))")
        }
        let del = h.raw(Array("DELETE /v1.43/images/..%2Fbusybox HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect((400..<500).contains(Self.status(del) ?? 0))
        #expect(try h.images().count == 1)
    }

    @Test func truncatedLoadLeavesTheStoreUnchanged() throws {
        let h = try EngineHarness()
        try h.importBusybox()
        #expect(try h.strata(["save", "-o", h.file("b.tar"), "busybox:latest"]).status == 0)
        try h.start()
        defer { h.stop() }
        // Another image's archive, so a completed load would change the store.
        let other = h.file("other")
        #expect(try h.strata(["import", h.file("rootfs.tar"), "other:1"], root: other).status == 0)
        #expect(try h.strata(["save", "-o", h.file("o.tar"), "other:1"], root: other).status == 0)
        let before = try Self.snapshot(h)
        let tar = try [UInt8](Data(contentsOf: URL(fileURLWithPath: h.file("o.tar"))))
        let part = tar.prefix(tar.count / 2)
        var req = Array("POST /v1.43/images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        req += Array(String(part.count, radix: 16).utf8) + Array("\r\n".utf8) + part + Array("\r\n".utf8)
        _ = h.raw(req, closeAfterSend: true)
        // The server drops the spooled body once it sees the hang-up; then nothing changed.
        var ingest: [String] = []
        for _ in 0..<100 {
            ingest = (try? FileManager.default.contentsOfDirectory(atPath: h.root + "/ingest")) ?? []
            if ingest.isEmpty { break }
            usleep(100_000)
        }
        #expect(ingest.isEmpty, "\(ingest)")
        #expect(try Self.snapshot(h) == before)

        // The same body, complete, loads.
        var full = Array("POST /v1.43/images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
        full += Array(String(tar.count, radix: 16).utf8) + Array("\r\n".utf8) + tar + Array("\r\n0\r\n\r\n".utf8)
        let ok = h.raw(full)
        #expect(Self.status(ok) == 200, "\(ok.prefix(300))")
        #expect(ok.contains("Loaded image: other:1"))
        #expect(try Self.snapshot(h) != before)
    }

    /// SIGTERM while a load's body is still arriving: the server stops accepting, finishes
    /// that request, answers it, then exits 0 and removes its socket.
    @Test func sigtermDrainsARequestInFlight() throws {
        let h = try EngineHarness()
        try h.importBusybox()
        let other = h.file("other")
        #expect(try h.strata(["import", h.file("rootfs.tar"), "drain:1"], root: other).status == 0)
        #expect(try h.strata(["save", "-o", h.file("d.tar"), "drain:1"], root: other).status == 0)
        try h.start()
        let tar = try [UInt8](Data(contentsOf: URL(fileURLWithPath: h.file("d.tar"))))
        let fd = EngineHarness.connect(h.socket)
        try #require(fd >= 0)
        defer { close(fd) }
        func send(_ bytes: [UInt8]) {
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                off += n
            }
        }
        let half = tar.count / 2
        send(Array("POST /v1.43/images/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        send(Array(String(half, radix: 16).utf8) + Array("\r\n".utf8) + tar[..<half] + Array("\r\n".utf8))
        usleep(300_000)
        let pid = try #require(h.serverPID)
        kill(pid, SIGTERM)
        usleep(500_000)
        // No new connections once draining.
        #expect(!EngineHarness.canConnect(h.socket))
        let rest = tar.count - half
        send(Array(String(rest, radix: 16).utf8) + Array("\r\n".utf8) + tar[half...] + Array("\r\n0\r\n\r\n".utf8))
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out = [UInt8](), buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let response = String(decoding: out, as: UTF8.self)
        #expect(Self.status(response) == 200, "\(response.prefix(300))")
        #expect(response.contains("Loaded image: drain:1"))
        #expect(h.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: h.socket))
        #expect(try h.images().count == 2)
    }

    /// `docker save` streams its tar as it is made: a blob that cannot be read answers an
    /// error status when nothing went out yet, and otherwise cuts the body short (no chunked
    /// end, the connection closed), never a whole-looking tar. Each blob missing in turn.
    @Test func saveOfAMissingBlobIsNeverAWholeTar() throws {
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let dir = h.root + "/blobs/sha256"
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() {
            let path = dir + "/" + name, kept = h.file("kept")
            try FileManager.default.moveItem(atPath: path, toPath: kept)
            let r = h.raw(Array("GET /v1.43/images/get?names=busybox%3Alatest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            let code = Self.status(r) ?? 0
            if code == 200 {
                #expect(!Self.endsChunked(r), "blob \(name): a cut-short save ended like a whole one")
            } else {
                #expect(code >= 400, "blob \(name): \(r.prefix(300))")
                #expect(r.contains("\"message\""))
            }
            try FileManager.default.moveItem(atPath: kept, toPath: path)
        }
        // Whole again: a whole tar, with the chunked end.
        let ok = h.raw(Array("GET /v1.43/images/get?names=busybox%3Alatest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(Self.status(ok) == 200)
        #expect(Self.endsChunked(ok), "\(Array(ok.utf8.suffix(16)))")
    }

    /// A build context whose entries climb out of it (`../`, an absolute path, a symlink to
    /// the host's /etc that a COPY follows): the build fails or copies only what is inside the
    /// context, nothing is written outside the store, and no image is tagged.
    @Test func buildContextThatClimbsIsRefused() throws {
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let marker = "strata-hostile-\(UUID().uuidString.prefix(8))"
        // Each context: its Dockerfile, and what makes it hostile.
        let cases: [(name: String, dockerfile: String, entries: String)] = [
            ("dotdot", "FROM busybox:latest\\nCOPY . /ctx/\\n", "reg('../../../../../../tmp/\(marker)-a', b'x')"),
            ("inner", "FROM busybox:latest\\nCOPY . /ctx/\\n", "reg('a/../../../../../tmp/\(marker)-b', b'x')"),
            ("absolute", "FROM busybox:latest\\nCOPY . /ctx/\\n", "reg('/tmp/\(marker)-c', b'x')"),
            ("linkout", "FROM busybox:latest\\nCOPY hostetc/passwd /stolen\\n", "sym('hostetc', '/etc')"),
            ("linkthenfile", "FROM busybox:latest\\nCOPY . /ctx/\\n", "sym('up', '../../../../../tmp'); reg('up/\(marker)-d', b'x')"),
        ]
        for c in cases {
            let tar = h.file("\(c.name).tar")
            try h.shell("""
                python3 - <<'PY'
                import io, tarfile
                t = tarfile.open('\(tar)', 'w')
                def reg(name, data):
                    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
                def sym(name, target):
                    i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)
                reg('Dockerfile', b'\(c.dockerfile)')
                \(c.entries)
                t.close()
                PY
                """)
            let body = try [UInt8](Data(contentsOf: URL(fileURLWithPath: tar)))
            var req = Array("POST /v1.43/build?t=evil-\(c.name)%3A1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
            req += body
            let r = h.raw(req)
            let code = Self.status(r) ?? 0
            let failed = code >= 400 || r.contains("errorDetail")
            if c.name == "linkout" {
                // The link resolves inside the context (as dockerd scopes it), where there is no
                // etc/passwd: the build fails. It must never copy the host's file.
                #expect(failed, "\(c.name): \(r.suffix(400))")
            } else if !failed {
                // Accepted only with the climbing entry dropped or kept inside: look at the image.
                let ls = try h.strata(["run", "--rm", "evil-\(c.name):1", "sh", "-c", "find / -name '\(marker)*' 2>/dev/null"])
                #expect(ls.status == 0, "\(c.name): \(ls.err)")
                for line in ls.out.split(separator: "\n") {
                    #expect(line.hasPrefix("/ctx/"), "\(c.name): \(line) landed outside the copy's destination")
                }
            }
            let outside = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix(marker) }
            #expect(outside.isEmpty, "\(c.name): wrote \(outside) into the host's /tmp")
            let escaped = try FileManager.default.contentsOfDirectory(atPath: h.dir.path).filter { $0.hasPrefix(marker) }
            #expect(escaped.isEmpty, "\(c.name): wrote \(escaped) beside the store")
            if failed {
                #expect(!((try h.strata(["images", "-q", "evil-\(c.name):1"])).out.contains { !$0.isWhitespace }), "\(c.name): a failed build tagged its image")
            }
        }
    }

    /// Whether a raw response ends with a chunked body's last chunk (bytes, not characters).
    static func endsChunked(_ response: String) -> Bool {
        response.utf8.suffix(7).elementsEqual("\r\n0\r\n\r\n".utf8)
    }
}
