import Foundation
import StrataEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `strata serve --listen HOST:PORT`: the same Engine API over TCP besides the unix socket,
/// plain on loopback only, anywhere else only with TLS and client certificates
/// (`--tlsverify --tlscacert --tlscert --tlskey`, as dockerd). The real docker CLI, curl and
/// openssl drive it.
@Suite(.serialized) struct EngineTCPTests {
    /// Waits (up to 20 s) for the server's `Serving the Docker Engine API on tcp://…` line and
    /// returns the port it names (the one port 0 resolved to).
    static func tcpPort(_ h: EngineHarness) throws -> Int {
        for _ in 0..<200 {
            for line in h.serverLog().split(separator: "\n") {
                guard let r = line.range(of: "Serving the Docker Engine API on tcp://127.0.0.1:") else { continue }
                let digits = line[r.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), port > 0 { return port }
            }
            usleep(100_000)
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "no TCP listener line: \(h.serverLog())"])
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func listening(_ port: Int) -> Bool {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// `strata serve` with `args` that must refuse to start: the exit status and stderr
    /// (`timeout` kills a server that started anyway).
    static func refused(_ h: EngineHarness, _ args: [String]) throws -> EngineHarness.Result {
        try h.run("/usr/bin/timeout", ["20", EngineHarness.binary, "serve", "--socket", h.socket] + args, env: ["STRATA_ROOT": h.root])
    }

    @Test func dockerOverLoopbackTCPMatchesTheSocket() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start(["--listen", "127.0.0.1:0"])
        let port = try Self.tcpPort(h)
        let tcp = "tcp://127.0.0.1:\(port)"
        #expect(h.serverLog().contains("Serving the Docker Engine API on unix://\(h.socket)"), "\(h.serverLog())")

        let version = ["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"]
        let vTCP = try h.docker(version, host: tcp)
        #expect(vTCP.status == 0, "\(vTCP.err)")
        #expect(try vTCP.out == h.docker(version).out)
        #expect(vTCP.out.hasPrefix(EngineServer.version + " "), "\(vTCP.out)")

        let images = ["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"]
        let iTCP = try h.docker(images, host: tcp)
        #expect(iTCP.status == 0, "\(iTCP.err)")
        #expect(iTCP.out.hasPrefix("busybox:latest "), "\(iTCP.out)")
        #expect(try iTCP.out == h.docker(images).out)

        // Attach over TCP: the 101 upgrade, the multiplexed output, the exit status.
        let hi = try h.docker(["run", "--rm", "busybox", "echo", "hi"], host: tcp)
        #expect(hi.status == 0, "\(hi.err)")
        #expect(hi.out == "hi\n")
        #expect(try hi.out == h.docker(["run", "--rm", "busybox", "echo", "hi"]).out)
        let stdin = try h.docker(["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"], host: tcp)
        #expect(stdin.status == 0 && stdin.out == "done\n", "\(stdin)")
        let three = try h.docker(["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"], host: tcp)
        #expect(three.status == 3 && three.out == "out\n" && three.err.contains("err"), "\(three)")
        #expect(try h.docker(["ps", "-a", "-q"], host: tcp).out == "")

        // SIGTERM closes both listeners and removes the socket.
        #expect(h.stop() == 0)
        #expect(!Self.listening(port))
        #expect(!FileManager.default.fileExists(atPath: h.socket))
    }

    @Test func tlsVerifyRequiresAClientCertificateFromTheCA() throws {
        guard EngineHarness.dockerAvailable() else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but openssl or curl is missing: run tools/setup") }
            return
        }
        let h = try EngineHarness()
        try h.importBusybox()
        // A CA, a server certificate for 127.0.0.1 and a client certificate it signed; and a
        // client certificate from another CA.
        try h.shell("""
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            key ca-key.pem && openssl req -x509 -new -key ca-key.pem -out ca.pem -days 2 -subj /CN=strata-test-ca
            key other-ca-key.pem && openssl req -x509 -new -key other-ca-key.pem -out other-ca.pem -days 2 -subj /CN=other-ca
            key server-key.pem && openssl req -new -key server-key.pem -out server.csr -subj /CN=127.0.0.1
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 2 -extfile server.ext 2>/dev/null
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            key key.pem && openssl req -new -key key.pem -out client.csr -subj /CN=client
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem -days 2 -extfile client.ext 2>/dev/null
            key other-key.pem && openssl req -new -key other-key.pem -out other.csr -subj /CN=intruder
            openssl x509 -req -in other.csr -CA other-ca.pem -CAkey other-ca-key.pem -CAcreateserial -out other-cert.pem -days 2 -extfile client.ext 2>/dev/null
            """)
        try h.start(["--listen", "127.0.0.1:0", "--tlsverify", "--tlscacert", h.file("ca.pem"),
                     "--tlscert", h.file("server-cert.pem"), "--tlskey", h.file("server-key.pem")])
        let port = try Self.tcpPort(h)
        let tcp = "tcp://127.0.0.1:\(port)"
        #expect(h.serverLog().contains("tcp://127.0.0.1:\(port) (TLS: client certificates signed by \(h.file("ca.pem")) required)"), "\(h.serverLog())")

        let tls = ["--tlsverify", "--tlscacert", h.file("ca.pem"), "--tlscert", h.file("cert.pem"), "--tlskey", h.file("key.pem"), "-H", tcp]
        let images = try h.docker(tls + ["images", "--format", "{{.Repository}}:{{.Tag}}"], host: tcp)
        #expect(images.status == 0, "\(images.err)")
        #expect(images.out == "busybox:latest\n")
        // Attach through TLS too.
        let hi = try h.docker(tls + ["run", "--rm", "busybox", "echo", "hi"], host: tcp)
        #expect(hi.status == 0 && hi.out == "hi\n", "\(hi)")
        // `-i` with an empty stdin: the CLI half-closes at once (TLS close_notify), the
        // container's stdin ends, and its output still arrives.
        let stdin = try h.docker(tls + ["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"], host: tcp)
        #expect(stdin.status == 0 && stdin.out == "done\n", "\(stdin)")

        // No client certificate, one from another CA, or no TLS at all: no answer.
        let bare = try h.docker(["--tlsverify", "--tlscacert", h.file("ca.pem"), "-H", tcp, "images"], host: tcp)
        #expect(bare.status != 0 && !bare.out.contains("busybox") && bare.err.contains("certificate required"), "\(bare)")
        let stranger = try h.docker(["--tlsverify", "--tlscacert", h.file("ca.pem"), "--tlscert", h.file("other-cert.pem"),
                                     "--tlskey", h.file("other-key.pem"), "-H", tcp, "images"], host: tcp)
        #expect(stranger.status != 0 && !stranger.out.contains("busybox"), "\(stranger)")
        let url = "https://127.0.0.1:\(port)/_ping"
        let curlBare = try h.run("/usr/bin/curl", ["-sS", "--max-time", "10", "--cacert", h.file("ca.pem"), url])
        #expect(curlBare.status != 0 && curlBare.out != "OK", "\(curlBare)")
        let plain = try h.run("/usr/bin/curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(port)/_ping"])
        #expect(plain.status != 0 && plain.out != "OK", "\(plain)")
        let curlCert = try h.run("/usr/bin/curl", ["-sS", "--max-time", "10", "--cacert", h.file("ca.pem"),
                                                   "--cert", h.file("cert.pem"), "--key", h.file("key.pem"), url])
        #expect(curlCert.status == 0 && curlCert.out == "OK", "\(curlCert)")
        // The socket stays plain.
        #expect(try h.docker(["images", "-q"]).status == 0)
        #expect(h.stop() == 0)
        #expect(!Self.listening(port))

        // Files that cannot serve: one clear line, nothing left behind.
        let server = ["--listen", "127.0.0.1:0", "--tlsverify"]
        for (files, message) in [
            (["--tlscacert", h.file("missing.pem"), "--tlscert", h.file("server-cert.pem"), "--tlskey", h.file("server-key.pem")],
             "cannot read the TLS CA certificate \(h.file("missing.pem")): No such file or directory"),
            (["--tlscacert", h.file("server.ext"), "--tlscert", h.file("server-cert.pem"), "--tlskey", h.file("server-key.pem")],
             "the TLS CA certificate \(h.file("server.ext")) holds no PEM certificate"),
            (["--tlscacert", h.file("ca.pem"), "--tlscert", h.file("server-cert.pem"), "--tlskey", h.file("ca.pem")],
             "the TLS key \(h.file("ca.pem")) is not an unencrypted PEM private key"),
            (["--tlscacert", h.file("ca.pem"), "--tlscert", h.file("server-cert.pem"), "--tlskey", h.file("key.pem")],
             "the TLS key \(h.file("key.pem")) does not belong to the certificate \(h.file("server-cert.pem"))"),
            (["--tlscacert", h.file("ca.pem"), "--tlscert", h.file("server-cert.pem")], "--tlsverify needs --tlscacert, --tlscert and --tlskey"),
        ] {
            let r = try Self.refused(h, server + files)
            #expect(r.status == 1, "\(files): \(r)")
            #expect(r.err == "error: \(message)\n", "\(files): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: h.socket))
        }
        let noListen = try Self.refused(h, ["--tlsverify", "--tlscacert", h.file("ca.pem"), "--tlscert", h.file("server-cert.pem"),
                                            "--tlskey", h.file("server-key.pem")])
        #expect(noListen.status == 1 && noListen.err.contains("--tlsverify secures --listen addresses"), "\(noListen)")
    }

    @Test func refusesToListenBeyondLoopbackWithoutTLS() throws {
        let h = try EngineHarness()
        for address in ["0.0.0.0:0", ":2375", "[::]:0", "192.0.2.1:2375", "tcp://0.0.0.0:2375", "example.com:2375"] {
            let r = try Self.refused(h, ["--listen", "127.0.0.1:0", "--listen", address])
            #expect(r.status == 1, "\(address): \(r)")
            let shown = try EngineTCPAddress(address).description
            #expect(r.err == "error: refusing to listen on \(shown) without --tlsverify: whoever reaches it can do anything the store's owner can (root, for a root store)\n",
                    "\(address): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: h.socket), "\(address) left the socket")
        }
        // TLS flags without --tlsverify would give a false sense of security.
        let r = try Self.refused(h, ["--listen", "127.0.0.1:0", "--tlscert", "x.pem"])
        #expect(r.status == 1 && r.err == "error: --tlscacert, --tlscert and --tlskey take effect only with --tlsverify\n", "\(r)")
    }

    /// A TCP listener that cannot be bound (the port is taken) stops the start after the
    /// socket was bound: the socket is closed and removed again, and the error is one line.
    @Test func aListenerThatCannotBindLeavesNoSocket() throws {
        let h = try EngineHarness()
        let (fd, port) = EngineHarness.boundLoopbackSocket()
        defer { close(fd) }
        #expect(port > 0 && listen(fd, 1) == 0)
        let r = try Self.refused(h, ["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:\(port)"])
        #expect(r.status == 1, "\(r)")
        #expect(r.err == "error: cannot listen on 127.0.0.1:\(port): Address already in use\n", "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: h.socket))
    }

    @Test func rejectsMalformedListenAddresses() throws {
        let h = try EngineHarness()
        for (value, why) in [
            ("127.0.0.1", "no port"), ("127.0.0.1:", "no port"), ("garbage", "no port"),
            ("127.0.0.1:99999", "port 99999 is out of range (0-65535)"), ("127.0.0.1:http", "'http' is not a port number"),
            ("127.0.0.1:-1", "'-1' is not a port number"), ("::1:2375", "an IPv6 address must be in brackets"),
            ("[::1:2375", "an IPv6 address without its closing ]"), ("[nope]:2375", "'nope' is not an IPv6 address"),
            ("user@host:2375", "'user@host' is not a host name or IP address"),
        ] {
            let r = try Self.refused(h, ["--listen", value])
            #expect(r.status == 1, "\(value): \(r)")
            #expect(r.err == "error: invalid listen address '\(value)': \(why) (expected HOST:PORT, e.g. 127.0.0.1:2375 or [::1]:2375)\n",
                    "\(value): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: h.socket))
        }
    }

    @Test func loopbackIsOnlyThisMachine() throws {
        for (text, loopback, shown) in [
            ("127.0.0.1:2375", true, "127.0.0.1:2375"), ("127.8.9.10:0", true, "127.8.9.10:0"), ("localhost:2375", true, "localhost:2375"),
            ("[::1]:2375", true, "[::1]:2375"), ("[::ffff:127.0.0.1]:1", true, "[::ffff:127.0.0.1]:1"), ("tcp://127.0.0.1:2375/", true, "127.0.0.1:2375"),
            ("0.0.0.0:2375", false, "0.0.0.0:2375"), (":2375", false, "0.0.0.0:2375"), ("[::]:2375", false, "[::]:2375"),
            ("10.0.0.1:2375", false, "10.0.0.1:2375"), ("[::ffff:10.0.0.1]:1", false, "[::ffff:10.0.0.1]:1"),
            ("128.0.0.1:1", false, "128.0.0.1:1"), ("myhost:2375", false, "myhost:2375"),
        ] {
            let a = try EngineTCPAddress(text)
            #expect(a.isLoopback == loopback, "\(text)")
            #expect(a.description == shown, "\(text)")
            if loopback { try a.requireSafe(tls: nil) } else { #expect(throws: (any Error).self) { try a.requireSafe(tls: nil) } }
        }
    }
}
