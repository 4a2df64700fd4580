import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A temporary store with `strata serve` running on it as a child process, and helpers to
/// run `strata`, the real `docker` CLI and raw socket requests against it. The server is
/// stopped by its PID (SIGTERM, then SIGKILL after 15 s) and the directory removed.
final class EngineHarness: @unchecked Sendable {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = repo.appendingPathComponent(".build/debug/strata").path

    struct Result {
        var status: Int32
        var out: String
        var err: String
    }

    let dir: URL
    var root: String { dir.appendingPathComponent("store").path }
    var socket: String { dir.appendingPathComponent("s.sock").path }
    private var server: Process?
    private var registry: Process?

    /// Whether the docker CLI is installed: a skip on a user's machine, a failure under CI=true.
    static func dockerAvailable() -> Bool {
        let found = ["/usr/bin/docker", "/usr/local/bin/docker"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        if !found, ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("CI=true but the docker CLI is missing: run tools/setup")
        }
        return found
    }

    init() throws {
        dir = URL(fileURLWithPath: "/tmp").appendingPathComponent("strata-engine-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    deinit {
        stop()
        if let r = registry, r.isRunning { kill(r.processIdentifier, SIGKILL); r.waitUntilExit() }
        if dir.path.hasPrefix("/tmp/strata-engine-") {
            // Containers a test left (or a failed test could not remove) keep their overlay
            // mounted: detach those first, or the directory stays behind busy.
            for m in Self.mounts(under: dir.path + "/") { umount2(m, Int32(MNT_DETACH)) }
            try? FileManager.default.removeItem(at: dir)
        }
    }

    /// Mount points under `prefix`, deepest first (from /proc/self/mounts; spaces are `\040`).
    static func mounts(under prefix: String) -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { return nil }
            let point = fields[1].replacingOccurrences(of: "\\040", with: " ")
            return point.hasPrefix(prefix) ? point : nil
        }.sorted { $0.count > $1.count }
    }

    var path: String { dir.path }
    func file(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Starts `strata serve --socket s.sock` (then `extra` arguments) and waits (up to 20 s)
    /// until it accepts connections.
    func start(_ extra: [String] = []) throws {
        let p = try launch(extra)
        for _ in 0..<200 {
            if Self.canConnect(socket) { return }
            if !p.isRunning { break }
            usleep(100_000)
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "strata serve did not start: \(serverLog())"])
    }

    /// Polls `check` every 50 ms until it holds or `seconds` passed; whether it held.
    static func eventually(within seconds: Double, _ check: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if try check() { return true }
            usleep(50_000)
        } while Date() < deadline
        return false
    }

    /// Starts `strata serve` on `socket` without waiting for it to listen.
    @discardableResult
    func launch(_ extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["serve", "--socket", socket] + extra
        p.environment = ["STRATA_ROOT": root, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        p.standardOutput = try FileHandle(forWritingTo: touch("server.out"))
        p.standardError = try FileHandle(forWritingTo: touch("server.err"))
        p.standardInput = FileHandle.nullDevice
        try p.run()
        server = p
        return p
    }

    /// The server's process ID while it runs.
    var serverPID: Int32? { server.map(\.processIdentifier) }

    /// Sends SIGTERM and waits for the exit; returns the exit status (nil: not running).
    @discardableResult
    func stop() -> Int32? {
        guard let p = server else { return nil }
        server = nil
        if p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            for _ in 0..<150 where p.isRunning { usleep(100_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Starts docker-registry on 127.0.0.1 at a free port (with htpasswd Basic auth for
    /// `user`/`password` when given) and returns `127.0.0.1:PORT` once `/v2/` answers.
    func startRegistry(user: String? = nil, password: String? = nil) throws -> String {
        let port = Self.freePort()
        var auth = ""
        if let user, let password {
            let r = try run("/usr/bin/htpasswd", ["-Bbn", user, password])
            try r.out.trimmingCharacters(in: .whitespacesAndNewlines).write(toFile: file("htpasswd"), atomically: true, encoding: .utf8)
            auth = "auth:\n  htpasswd:\n    realm: strata-test\n    path: \(file("htpasswd"))\n"
        }
        let config = """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(file("registry-data"))
            http:
              addr: 127.0.0.1:\(port)
            \(auth)
            """
        try config.write(toFile: file("registry.yml"), atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        p.arguments = ["serve", file("registry.yml")]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        registry = p
        guard Self.waitForListener(port) else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "docker-registry did not start"])
        }
        return "127.0.0.1:\(port)"
    }

    /// A static web server (python's http.server) for `directory` on a free port of 127.0.0.1,
    /// listening when this returns; `stop()` it (by PID) when done.
    func serveFiles(_ directory: String) throws -> WebServer {
        let port = Self.freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", directory]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let web = WebServer(process: p, port: port)
        guard Self.waitForListener(port) else {
            web.stop()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "python3 -m http.server did not start"])
        }
        return web
    }

    /// A web server ``serveFiles(_:)`` started.
    struct WebServer {
        let process: Process
        let port: Int
        var base: String { "http://127.0.0.1:\(port)" }
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The body curl gets from `url`, tried for up to 10 s until there is one (a server in a
    /// container that is still starting); empty when none came.
    func fetch(_ url: String) throws -> String {
        for _ in 0..<100 {
            let page = try run("/usr/bin/curl", ["-s", "--max-time", "2", url]).out
            if !page.isEmpty { return page }
            usleep(100_000)
        }
        return ""
    }

    /// Whether something listens on 127.0.0.1:`port` within 10 s.
    static func waitForListener(_ port: Int) -> Bool {
        for _ in 0..<100 {
            let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if ok { return true }
            usleep(100_000)
        }
        return false
    }

    /// Waits for the next whole second and returns it as `docker events --since` takes it:
    /// what happened before this call is outside a window that starts there.
    static func nextWholeSecond() -> String {
        let next = (Date().timeIntervalSince1970 + 1).rounded(.down)
        usleep(useconds_t((next - Date().timeIntervalSince1970) * 1e6) + 1000)
        return String(Int(next))
    }

    static func freePort() -> Int {
        let (fd, port) = boundLoopbackSocket()
        close(fd)
        return port
    }

    /// A TCP socket bound to a free port of 127.0.0.1 (the caller closes it), and the port.
    static func boundLoopbackSocket() -> (fd: Int32, port: Int) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    func serverLog() -> String {
        ((try? String(contentsOfFile: file("server.err"), encoding: .utf8)) ?? "") + ((try? String(contentsOfFile: file("server.out"), encoding: .utf8)) ?? "")
    }

    private func touch(_ name: String) -> URL {
        let u = dir.appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: u.path, contents: nil)
        return u
    }

    /// Runs a program and waits; output through temp files (no pipe to fill).
    func run(_ exe: String, _ args: [String], env: [String: String] = [:], cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": path].merging(env) { $1 }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let id = UUID().uuidString
        let out = touch("out-\(id)"), err = touch("err-\(id)")
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, out: try String(contentsOf: out, encoding: .utf8), err: try String(contentsOf: err, encoding: .utf8))
    }

    /// `strata` on this harness's store (or another root).
    @discardableResult
    func strata(_ args: [String], root: String? = nil) throws -> Result {
        try run(Self.binary, args, env: ["STRATA_ROOT": root ?? self.root])
    }

    /// The real docker CLI talking to the server (its config in the temp dir, classic builder),
    /// on the socket unless `host` names another endpoint (`tcp://127.0.0.1:PORT`).
    @discardableResult
    func docker(_ args: [String], cwd: String? = nil, host: String? = nil) throws -> Result {
        let exe = FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker") ? "/usr/local/bin/docker" : "/usr/bin/docker"
        return try run(exe, args, env: ["DOCKER_HOST": host ?? "unix://" + socket, "DOCKER_CONFIG": file("docker-config"), "DOCKER_BUILDKIT": "0"], cwd: cwd)
    }

    func shell(_ script: String) throws {
        let r = try run("/bin/bash", ["-euo", "pipefail", "-c", script], cwd: path)
        guard r.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "\(script): \(r.err)"]) }
    }

    /// A busybox-static root filesystem tar (no network), imported as `busybox:latest`.
    /// podman with a root of its own in this harness's directory (vfs, cgroupfs, events in a
    /// file), the busybox of ``importBusybox()`` imported as busybox:latest, to run with
    /// `run("/usr/bin/env", podman + [...])`; nil (a failure under CI) when podman is missing.
    /// It runs through python's subprocess, which closes every other descriptor in the child:
    /// conmon, which `podman run -d` leaves running, would otherwise keep the socket
    /// Foundation's Process watches for the exit, and the wait would never end.
    /// What `podman run` needs besides its command to run as strata's runs do here: no
    /// network, and strata's rlimits (podman's defaults are above what this machine lets it set).
    static let podmanRunFlags = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    func podman() throws -> [String]? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/podman") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but podman is missing: run tools/setup") }
            return nil
        }
        let p = file("podman")
        let podman = ["python3", "-c", "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)", "podman",
                      "--root", p + "/root", "--runroot", p + "/run", "--tmpdir", p + "/tmp", "--storage-driver", "vfs",
                      "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        let imported = try run("/usr/bin/env", podman + ["import", "-q", file("rootfs.tar"), "busybox:latest"])
        guard imported.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: imported.err]) }
        return podman
    }

    func importBusybox() throws {
        try shell("""
            mkdir -p r/bin r/etc && cp "$(command -v busybox || echo /bin/busybox)" r/bin/busybox
            for a in sh ls cat echo; do ln -sf busybox r/bin/$a; done
            echo 'root:x:0:0::/:/bin/sh' > r/etc/passwd && tar -C r -cf rootfs.tar .
            """)
        let r = try strata(["import", "-m", "busybox-static", file("rootfs.tar"), "busybox:latest"])
        guard r.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: r.err]) }
    }

    /// `strata images --format json`, parsed.
    func images() throws -> [[String: Any]] {
        let r = try strata(["images", "-a", "--format", "json"])
        return (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
    }

    /// Sends raw bytes to the socket and returns what came back until the server closes
    /// (send `Connection: close`) or 10 s pass; with `closeAfterSend`, hangs up at once.
    func raw(_ request: [UInt8], closeAfterSend: Bool = false) -> String {
        let fd = Self.connect(socket)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        Self.sendAll(fd, request)
        if closeAfterSend { return "" }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Sends a request that upgrades the connection (an attach, an exec's start), waits for
    /// the head of the answer, sends `stdin` and half-closes (the end of stdin, as `docker
    /// exec -i` at the end of its input), then reads slowly, 16 KiB after each `pause`
    /// microseconds, everything that comes back until the server closes (or 20 s pass).
    func rawHalfClosed(_ request: [UInt8], stdin: [UInt8], pause: useconds_t) -> [UInt8] {
        let fd = Self.connect(socket)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        Self.sendAll(fd, request)
        // The head only (one byte at a time): the rest waits in the socket during the pause.
        while out.count < 8192, !out.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard recv(fd, &buf, 1, 0) == 1 else { return out }
            out.append(buf[0])
        }
        Self.sendAll(fd, stdin)
        shutdown(fd, Int32(SHUT_WR))
        while true {
            usleep(pause)
            let n = recv(fd, &buf, 16 << 10, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// Sends all of `bytes` on `fd` (stops early when the peer is gone).
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            off += n
        }
    }

    static func canConnect(_ path: String) -> Bool {
        let fd = connect(path)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    static func connect(_ path: String) -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() where i < p.count - 1 { p[i] = b } }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        if !ok { close(fd); return -1 }
        return fd
    }
}
