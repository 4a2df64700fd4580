import Foundation
import Testing
@testable import Strata
@testable import StrataBuild

/// A fresh temporary directory per builder test; removed when the test ends.
final class BuildTestDir: @unchecked Sendable {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("strata-build-test-\(UUID().uuidString.prefix(12))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        // Only ever under the temp directory, never an empty path.
        if url.path.hasPrefix(FileManager.default.temporaryDirectory.path + "/strata-build-test-") {
            try? FileManager.default.removeItem(at: url)
        }
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func store(_ name: String = "store") async throws -> Store { try await Store.open(at: url.appendingPathComponent(name)) }

    /// Writes files (relative path → content) under `dir`, creating parents.
    func write(_ files: [String: String], in dir: String) throws {
        for (rel, content) in files {
            let full = file(dir) + "/" + rel
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(content.utf8).write(to: URL(fileURLWithPath: full))
        }
    }
}

struct BuildShellResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a bash script and waits; output goes through temp files (no pipe deadlocks).
@discardableResult
func buildShell(_ script: String, cwd: String? = nil, check: Bool = true) throws -> BuildShellResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-euo", "pipefail", "-c", script]
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let dir = FileManager.default.temporaryDirectory
    let out = dir.appendingPathComponent("bsh-\(UUID().uuidString)")
    let err = dir.appendingPathComponent("bsh-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    FileManager.default.createFile(atPath: err.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
    p.standardOutput = try FileHandle(forWritingTo: out)
    p.standardError = try FileHandle(forWritingTo: err)
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    let r = BuildShellResult(status: p.terminationStatus,
                             stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    if check && r.status != 0 {
        throw StrataError(.internalError, "script exited \(r.status): \(r.stderr)\n\(script)")
    }
    return r
}

/// Peers the builder tests need: missing ones skip locally and fail under CI=true.
enum BuildPeer {
    static func require(_ tools: String...) -> Bool {
        let missing = tools.filter { (try? buildShell("command -v \($0)", check: false).status) != 0 }
        if missing.isEmpty { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("CI=true and peer tool(s) missing: \(missing.joined(separator: ", ")); run tools/setup")
        }
        return false
    }

    /// RUN needs root (overlay mounts, runc) and runc.
    static var canRun: Bool {
        guard geteuid() == 0 else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but not root: RUN steps need root") }
            return false
        }
        return require("runc", "busybox")
    }
}

/// Collects the classic output lines of a build.
final class BuildLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var lines: [String] { lock.withLock { stored } }
    func add(_ s: String) { lock.withLock { stored.append(s) } }
    func clear() { lock.withLock { stored.removeAll() } }

    /// For each `Step n/m`, whether it came from the cache.
    var cachedSteps: [Bool] {
        var out: [Bool] = []
        for l in lines {
            if l.hasPrefix("Step ") { out.append(false) } else if l == " ---> Using cache", !out.isEmpty { out[out.count - 1] = true }
        }
        return out
    }
}

enum BuildFixtures {
    /// Imports a busybox-static base image (relative applet links, /etc/passwd and
    /// /etc/group with a user `app` 1000:1000) as `reference`.
    @discardableResult
    static func busyboxBase(_ store: Store, in dir: BuildTestDir, reference: String = "base:1") async throws -> Digest {
        let tar = dir.file("base-rootfs.tar")
        let r = dir.file("base-rootfs")
        try buildShell("""
            mkdir -p "\(r)/bin" "\(r)/etc" "\(r)/tmp" "\(r)/root"
            cp "$(command -v busybox)" "\(r)/bin/busybox"
            for a in sh ls cat echo true mkdir touch chmod rm cp id env; do ln -sf busybox "\(r)/bin/$a"; done
            printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000:app:/home/app:/bin/sh\\n' > "\(r)/etc/passwd"
            printf 'root:x:0:\\napp:x:1000:\\nstaff:x:50:\\n' > "\(r)/etc/group"
            touch -h -d @1600000000 "\(r)"/bin/* "\(r)"/etc/* "\(r)/bin" "\(r)/etc" "\(r)/tmp" "\(r)/root" "\(r)"
            tar --numeric-owner -C "\(r)" -cf "\(tar)" .
            """)
        return try await store.importRootfs(from: URL(fileURLWithPath: tar), reference: reference,
                                            options: ImportOptions(message: "busybox base", created: Date(timeIntervalSince1970: 1_600_000_000))).id
    }

    /// A file's content in an image's root filesystem (through a temporary container).
    static func read(_ store: Store, image: Digest, path: String) async throws -> String? {
        let (id, fs) = try await store.createBuildContainer(from: image)
        let full = try fs.resolve(path)
        let text = try? String(contentsOfFile: full, encoding: .utf8)
        _ = try? await store.removeContainer(id, force: true)
        return text
    }

    /// lstat of a path in an image's rootfs: (mode & 0o7777, uid, gid), nil when missing.
    static func stat(_ store: Store, image: Digest, path: String) async throws -> (UInt32, UInt32, UInt32)? {
        let (id, fs) = try await store.createBuildContainer(from: image)
        let full = try fs.resolve(path, followFinal: false)
        let m = FileMeta.of(full).map { ($0.mode, $0.uid, $0.gid) }
        _ = try? await store.removeContainer(id, force: true)
        return m
    }
}

extension Builder {
    /// Builds a context with a Dockerfile text, collecting the classic output.
    func build(_ context: String, _ dockerfile: String, log: BuildLog, tags: [String] = [], args: [String: String] = [:],
               target: String? = nil, noCache: Bool = false, timestamp: Int64? = nil) async throws -> BuildResult {
        try await build(context: context, dockerfile: dockerfile,
                        options: BuildOptions(tags: tags, buildArgs: args, target: target, noCache: noCache, timestamp: timestamp,
                                              log: { log.add($0) }, runOutput: nil))
    }
}
