import Foundation
import Testing

/// A real docker-registry (distribution) on 127.0.0.1 with a random port, stopped by PID.
final class LocalRegistry: @unchecked Sendable {
    let process = Process()
    let dir: URL
    /// The registry's blob and repository storage: on tmpfs when there is one, because
    /// deleting its thousands of small directories from this machine's ext4 (mounted with
    /// `discard`) takes tens of seconds, and writing them is slow too.
    let storage: URL
    let port: Int
    var host: String { "127.0.0.1:\(port)" }

    /// - Parameter extraConfig: more top-level YAML (an `auth:` section).
    init(extraConfig: String = "") throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-registry-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        port = Self.freePort()
        let shm = URL(fileURLWithPath: "/dev/shm")
        storage = access(shm.path, W_OK) == 0 ? shm.appendingPathComponent("strata-registry-\(UUID().uuidString)") : dir.appendingPathComponent("data")
        let config = """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(storage.path)
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            \(extraConfig)
            """
        try config.write(to: dir.appendingPathComponent("config.yml"), atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", dir.appendingPathComponent("config.yml").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if (try? run(["curl", "-s", "-o", "/dev/null", "http://\(host)/v2/"]).0) == 0 { return }
            usleep(100_000)
        }
        throw CocoaError(.fileReadUnknown)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: storage)
        try? FileManager.default.removeItem(at: dir)
    }

    static func freePort() -> Int {
        let (fd, port) = boundLoopbackSocket()
        close(fd)
        return port
    }

    /// A TCP socket bound to a free port on 127.0.0.1 and not listening: a connection to it is
    /// refused, and no other server can take the port while the caller keeps `fd` open.
    static func boundLoopbackSocket() -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }
}

@discardableResult
func run(_ args: [String], cwd: String? = nil) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("reg-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: out) }
    let h = try FileHandle(forWritingTo: out)
    p.standardOutput = h
    p.standardError = h
    try p.run()
    p.waitUntilExit()
    return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
}

func require(_ tools: String...) -> Bool {
    let missing = tools.filter { (try? run(["which", $0]).0) != 0 }
    if missing.isEmpty { return true }
    if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true and peer tool(s) missing: \(missing)") }
    return false
}


/// A small HTTP server written in Python for a test (python3), on 127.0.0.1 with a random
/// port, stopped by PID.
final class PythonServer: @unchecked Sendable {
    let process = Process()
    let port: Int

    init(script: String, in dir: URL, args: [String] = []) throws {
        port = LocalRegistry.freePort()
        let file = dir.appendingPathComponent("server-\(UUID().uuidString.prefix(6)).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", file.path, String(port)] + args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if (try? run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:\(port)/"]).0) == 0 { return }
            usleep(100_000)
        }
        throw CocoaError(.fileReadUnknown)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}

/// docker-registry behind the test token server (`tokenServerScript`): a self-signed key and
/// certificate from openssl, Basic credentials `user`/`password` for the token endpoint, and
/// a log of every token request (`TOKEN <scopes>`).
struct TokenAuthRegistry {
    let registry: LocalRegistry
    let tokens: PythonServer
    let log: URL

    init(in dir: TestDir, user: String, password: String) throws {
        let key = dir.path + "/key.pem", cert = dir.path + "/cert.pem"
        let (st, out) = try run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                 "-days", "1", "-subj", "/CN=strata-test-token"])
        guard st == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["openssl": out]) }
        log = dir.url.appendingPathComponent("tokens.log")
        tokens = try PythonServer(script: tokenServerScript, in: dir.url, args: [key, cert, user, password, log.path])
        registry = try LocalRegistry(extraConfig: """
            auth:
              token:
                realm: http://127.0.0.1:\(tokens.port)/token
                service: strata-test-registry
                issuer: strata-test-issuer
                rootcertbundle: \(cert)
            """)
    }
}

/// A temp directory for one test, removed at the end.
final class TestDir: @unchecked Sendable {
    let url: URL
    var path: String { url.path }
    init(_ name: String = "strata-regtest") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The debug strata binary next to the tests (`swift build --build-tests` makes it).
enum StrataBinary {
    static var path: String {
        // Tests/StrataRegistryTests/Support.swift → package root → .build/debug/strata
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/strata").path
    }

    /// Runs strata with `args`, stdin text and extra environment; returns status, stdout, stderr.
    static func run(_ args: [String], stdin: String? = nil, env: [String: String] = [:]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

/// Collects progress events from several tasks.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [String] = []
    func add(_ s: String) { lock.withLock { events.append(s) } }
    var all: [String] { lock.withLock { events } }
}
