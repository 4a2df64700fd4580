import Foundation
import Testing
import OCI
import StrataRegistry

/// `Download.fetch` against a small HTTP server on 127.0.0.1: whole files, redirects, and
/// each failure (404, truncated body, too large, bad URL) as one clear error with no file left.
@Suite struct DownloadTests {
    /// Serves `ROOT/files/*`, a redirect to `files/ctx.tar`, and a body cut short.
    static let script = """
        import http.server, os, sys
        root = sys.argv[2]
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                if self.path == "/redirect":
                    self.send_response(302); self.send_header("Location", "/files/ctx.tar"); self.send_header("Content-Length", "0"); self.end_headers(); return
                if self.path == "/truncated":
                    self.send_response(200); self.send_header("Content-Length", "100000"); self.end_headers()
                    self.wfile.write(b"x" * 1000); self.wfile.flush(); self.close_connection = True; return
                p = os.path.join(root, self.path.lstrip("/"))
                if not self.path.startswith("/files/") or not os.path.isfile(p):
                    self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
                data = open(p, "rb").read()
                self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
            def log_message(self, *a): pass
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """

    @Test func downloadsRedirectsAndRefusesBadAnswers() async throws {
        guard require("python3", "curl") else { return }
        let dir = try TestDir("strata-download")
        try FileManager.default.createDirectory(at: dir.url.appendingPathComponent("files"), withIntermediateDirectories: true)
        let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try payload.write(to: dir.url.appendingPathComponent("files/ctx.tar"))
        let server = try PythonServer(script: Self.script, in: dir.url, args: [dir.path])
        defer { withExtendedLifetime(server) {} }
        let base = "http://127.0.0.1:\(server.port)"
        let out = dir.url.appendingPathComponent("out")
        let seen = Counter()
        let n = try await Download.fetch("\(base)/files/ctx.tar", to: out.path, progress: { got, total in seen.record(got, total) })
        #expect(n == Int64(payload.count))
        #expect(try Data(contentsOf: out) == payload)
        #expect(seen.last == (Int64(payload.count), Int64(payload.count)))
        try FileManager.default.removeItem(at: out)
        // Redirects are followed.
        try await Download.fetch("\(base)/redirect", to: out.path)
        #expect(try Data(contentsOf: out) == payload)
        try FileManager.default.removeItem(at: out)

        func refused(_ url: String, maxSize: Int64 = Download.defaultMaxSize, _ needle: String) async {
            await #expect(performing: { try await Download.fetch(url, to: out.path, maxSize: maxSize) }, throws: { e in
                guard let e = e as? StrataError else { return false }
                return e.message.contains(needle) && !e.message.contains("\n")
            })
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(url) left a file")
        }
        await refused("\(base)/files/missing.tar", "HTTP 404")
        await refused("\(base)/truncated", "broke off after")
        await refused("\(base)/files/ctx.tar", maxSize: 1000, "--max-context-size")
        await refused("ftp://127.0.0.1/ctx.tar", "is not an http:// or https:// URL")
        await refused("http://", "is not an http:// or https:// URL")
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (Int64, Int64?) = (0, nil)
        func record(_ a: Int64, _ b: Int64?) { lock.withLock { value = (a, b) } }
        var last: (Int64, Int64?) { lock.withLock { value } }
    }
}
