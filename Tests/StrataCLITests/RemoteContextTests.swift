import Foundation
import Testing

/// `strata build URL`: a remote context (tar, tar.gz, tar.zst) served by a small HTTP server
/// on 127.0.0.1, built with `-f` relative to the context and `.dockerignore`; the same files
/// as a local directory hit the same cache entries and, with SOURCE_DATE_EPOCH, give the same
/// image ID in any store. Failures are one line, and leave the store and its scratch space
/// as they were.
@Suite struct RemoteContextTests {
    final class Server: @unchecked Sendable {
        let dir: URL
        let port: Int
        let process = Process()
        var base: String { "http://127.0.0.1:\(port)" }

        init(serving dir: URL) throws {
            self.dir = dir
            port = Self.freePort()
            let script = """
                import http.server, os, sys
                root = sys.argv[2]
                class H(http.server.BaseHTTPRequestHandler):
                    protocol_version = "HTTP/1.1"
                    def do_GET(self):
                        if self.path == "/truncated.tar":
                            self.send_response(200); self.send_header("Content-Length", "100000"); self.end_headers()
                            self.wfile.write(b"\\0" * 1000); self.wfile.flush(); self.close_connection = True; return
                        p = os.path.join(root, self.path.lstrip("/"))
                        if "/" in self.path.lstrip("/") or not os.path.isfile(p):
                            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
                        data = open(p, "rb").read()
                        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
                    def log_message(self, *a): pass
                http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
                """
            try script.write(to: dir.appendingPathComponent("server.py"), atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", dir.appendingPathComponent("server.py").path, String(port), dir.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<100 {
                if let data = try? Data(contentsOf: URL(string: "\(base)/server.py")!), !data.isEmpty { return }
                usleep(100_000)
            }
        }

        deinit {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        static func freePort() -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            return Int(UInt16(bigEndian: addr.sin_port))
        }
    }

    /// Whether the tools are on PATH; under CI=true a missing one fails the test.
    static func available(_ tools: String...) -> Bool {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        let missing = tools.filter { t in !path.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(t)") } }
        if missing.isEmpty { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true and tool(s) missing: \(missing)") }
        return false
    }

    /// Files in the store's scratch space (builds must leave none behind).
    static func scratch(_ env: CLITests.Env) -> [String] {
        let ingest = URL(fileURLWithPath: env.root).appendingPathComponent("ingest").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: ingest)) ?? []).filter { !$0.hasPrefix(".") && $0 != "lock" }.sorted()
    }

    @Test func remoteContextsBuildLikeLocalOnes() throws {
        guard Self.available("python3", "zstd", "gzip", "tar") else { return }
        let env = try CLITests.Env()
        try env.shell("""
            mkdir -p ctx/ctx ctx/app served
            printf 'FROM scratch\\nCOPY . /app/\\nENV GREETING=hello\\nWORKDIR /app\\n' > ctx/ctx/Dockerfile
            echo hello > ctx/app/hello.txt && echo secret > ctx/secret.txt && printf 'secret.txt\\n' > ctx/.dockerignore
            chmod 0644 ctx/app/hello.txt ctx/secret.txt ctx/.dockerignore ctx/ctx/Dockerfile
            tar --owner=0 --group=0 --numeric-owner -C ctx -cf served/ctx.tar .
            gzip -c served/ctx.tar > served/ctx.tar.gz && zstd -q -c served/ctx.tar > served/ctx.tar.zst
            head -c 300000 /dev/urandom > served/big.tar
            """)
        let server = try Server(serving: env.dir.appendingPathComponent("served"))
        let epoch = ["SOURCE_DATE_EPOCH": "1700000000"]
        // The local directory first: it fills the cache.
        let local = try env.run(["build", "-q", "-f", env.dir.appendingPathComponent("ctx/ctx/Dockerfile").path, env.dir.appendingPathComponent("ctx").path], environment: epoch)
        #expect(local.status == 0, "\(local.err)")
        let localID = local.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(localID.hasPrefix("sha256:"))
        for name in ["ctx.tar", "ctx.tar.gz", "ctx.tar.zst"] {
            let url = "\(server.base)/\(name)"
            let r = try env.run(["build", "-f", "ctx/Dockerfile", url], environment: epoch)
            #expect(r.status == 0, "\(name): \(r.err)")
            // Same cache keys as the local directory: every step after FROM is a cache hit.
            #expect(r.out.components(separatedBy: "---> Using cache").count - 1 == 3, "\(name): \(r.out)")
            #expect(r.out.contains("Successfully built \(localID.dropFirst(7).prefix(12))"), "\(name): \(r.out)")
            // Not a terminal: one progress line, on stderr.
            #expect(r.err.components(separatedBy: "Downloading context: \(url)").count - 1 == 1, "\(r.err)")
            #expect(r.err.contains("[==============================]"), "\(r.err)")
            #expect(Self.scratch(env).isEmpty, "\(Self.scratch(env))")
        }
        // .dockerignore held: the secret is not in the image.
        let top = try env.run(["find", localID, "app/*"])
        #expect(top.out.contains("/app/ctx") && !top.out.contains("secret"), "\(top.out)")
        #expect(try env.run(["find", localID, "app/app/*"]).out.contains("/app/app/hello.txt"))
        // A fresh store gives the same ID from the URL alone.
        let other = try CLITests.Env()
        let fresh = try other.run(["build", "-q", "-f", "ctx/Dockerfile", "\(server.base)/ctx.tar.zst"], environment: epoch)
        #expect(fresh.out.trimmingCharacters(in: .whitespacesAndNewlines) == localID, "\(fresh.err)")

        // Failures: one line each, exit 1, the store as it was and no scratch left.
        let before = try env.run(["images", "-a", "-q", "--no-trunc"]).out
        let failures: [([String], String)] = [
            (["build", "\(server.base)/missing.tar"], "HTTP 404"),
            (["build", "\(server.base)/truncated.tar"], "broke off after 1000 of 100000 bytes"),
            (["build", "--max-context-size", "100KB", "\(server.base)/big.tar"], "--max-context-size"),
            (["build", "http://"], "not an http:// or https:// URL"),
            (["build", "-f", "nope/Dockerfile", "\(server.base)/ctx.tar"], "nope/Dockerfile"),
        ]
        for (args, needle) in failures {
            let r = try env.run(args)
            #expect(r.status == 1, "\(args): \(r.err)")
            let lines = r.err.split(separator: "\n").filter { !$0.hasPrefix("Downloading context") }
            #expect(lines.count == 1 && lines[0].hasPrefix("error: ") && lines[0].contains(needle), "\(args): \(r.err)")
            #expect(Self.scratch(env).isEmpty, "\(args) left \(Self.scratch(env))")
        }
        #expect(try env.run(["images", "-a", "-q", "--no-trunc"]).out == before)
    }
}
