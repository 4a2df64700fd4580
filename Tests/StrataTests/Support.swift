import Foundation
import Testing
@testable import Strata

/// A fresh temporary directory per test (Swift Testing runs tests in parallel).
final class TempDir: @unchecked Sendable {
    let url: URL
    var path: String { url.path }

    /// A fresh directory under `parent` (the system temp directory when nil).
    init(parent: String? = nil) throws {
        let base = parent.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
        url = base.appendingPathComponent("strata-test-\(UUID().uuidString.prefix(12))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    func store(_ name: String = "store") async throws -> Store {
        try await Store.open(at: file(name))
    }
}

struct ShellResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program and waits for it. Output goes through temp files (no pipe deadlocks).
@discardableResult
func sh(_ args: [String], cwd: String? = nil, env: [String: String]? = nil, check: Bool = true) throws -> ShellResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if let env { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
    let dir = FileManager.default.temporaryDirectory
    let out = dir.appendingPathComponent("sh-\(UUID().uuidString)")
    let err = dir.appendingPathComponent("sh-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    FileManager.default.createFile(atPath: err.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
    p.standardOutput = try FileHandle(forWritingTo: out)
    p.standardError = try FileHandle(forWritingTo: err)
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    let r = ShellResult(status: p.terminationStatus,
                        stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                        stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    if check && r.status != 0 {
        throw ShellError(message: "\(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
    }
    return r
}

func bash(_ script: String, cwd: String? = nil) throws -> ShellResult {
    try sh(["bash", "-euo", "pipefail", "-c", script], cwd: cwd)
}

struct ShellError: Error, CustomStringConvertible { var message: String; var description: String { message } }

/// Real peer tools. Missing ones skip a test on a developer's machine and fail it under CI=true.
enum Peer {
    static func available(_ tool: String) -> Bool {
        (try? sh(["which", tool], check: false).status) == 0
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// True when the tools are there; records an issue under CI when they are not.
    static func require(_ tools: String...) -> Bool {
        let missing = tools.filter { !available($0) }
        if missing.isEmpty { return true }
        if isCI { Issue.record("CI=true and peer tool(s) missing: \(missing.joined(separator: ", ")); run tools/setup") }
        return false
    }
}

/// Test images built with real tools.
enum Fixtures {
    /// A busybox-static rootfs tarball with relative applet links.
    static func busyboxRootfs(in dir: TempDir, name: String = "rootfs.tar") throws -> URL {
        let out = dir.file(name)
        try bash("""
            r=$(mktemp -d "\(dir.path)/rootfs.XXXX")
            mkdir -p "$r/bin" "$r/etc" "$r/tmp"
            cp /bin/busybox "$r/bin/busybox"
            for a in sh ls cat echo true; do ln -s busybox "$r/bin/$a"; done
            echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
            tar -C "$r" -cf "\(out.path)" .
            """)
        return out
    }

    /// Builds an OCI layout with umoci: a base layer, a second layer that adds and deletes
    /// files, and config-only history steps. Returns the layout path; the tag is `img`.
    static func umociImage(in dir: TempDir, name: String = "layout") throws -> String {
        let layout = dir.file(name).path
        try bash("""
            cd "\(dir.path)"
            umoci init --layout "\(layout)"
            umoci new --image "\(layout):img"
            umoci unpack --image "\(layout):img" b1
            mkdir -p b1/rootfs/etc b1/rootfs/data
            echo hello > b1/rootfs/etc/greeting
            echo gone > b1/rootfs/data/old
            head -c 100000 /dev/urandom > b1/rootfs/data/blob
            umoci repack --image "\(layout):img" --history.created_by "COPY files /" b1
            umoci config --image "\(layout):img" --config.env FOO=bar --history.created_by "ENV FOO=bar"
            rm -rf b1
            umoci unpack --image "\(layout):img" b2
            rm b2/rootfs/data/old
            echo more > b2/rootfs/etc/more
            umoci repack --image "\(layout):img" --history.created_by "RUN rm /data/old" b2
            umoci config --image "\(layout):img" --config.cmd /bin/sh --history.created_by "CMD [\\"/bin/sh\\"]"
            rm -rf b2
            """)
        return layout
    }
}
