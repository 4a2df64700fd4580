import Foundation
import Strata
import Testing

/// Issue #17: a command that runs out of space exits 1 with one line that says the disk is
/// full and how much was needed, and leaves the store exactly as it was (every file but the
/// database's own, every table's row count, `images`, `fsck`); the same command then works
/// once there is room, and gc leaves no ingest debris. Each command gets its own small ext4
/// filesystem (a loop-mounted file; a size-limited tmpfs when mkfs.ext4 is missing), so a
/// real ENOSPC comes from the kernel, at write, fsync or mkdir, wherever it falls.
@Suite struct FullDiskTests {
    enum Command: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case load, `import`, pull, buildCopy = "build-copy", buildRun = "build-run", commit, volumeCreate = "volume-create", save, cp
        var testDescription: String { rawValue }
    }

    /// A small filesystem mounted under `dir/mnt`; `close()` unmounts it.
    final class SmallDisk: @unchecked Sendable {
        let mount: String
        private(set) var mounted = false

        /// nil (and a skip; a failure under CI=true) when this machine cannot mount one.
        static func make(in dir: URL, megabytes: Int) -> SmallDisk? {
            let disk = SmallDisk(mount: dir.appendingPathComponent("mnt").path)
            let img = dir.appendingPathComponent("disk.img").path
            let script = FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.ext4") || FileManager.default.isExecutableFile(atPath: "/sbin/mkfs.ext4")
                ? "truncate -s \(megabytes)M '\(img)' && mkfs.ext4 -q -F -m 0 '\(img)' && mount -o loop '\(img)' '\(disk.mount)'"
                : "mount -t tmpfs -o size=\(megabytes)m strata-fulldisk '\(disk.mount)'"
            let ok = geteuid() == 0 && (try? FileManager.default.createDirectory(atPath: disk.mount, withIntermediateDirectories: true)) != nil
                && FullDiskTests.sh("PATH=/usr/sbin:/sbin:$PATH; " + script).status == 0
            guard ok else {
                if ProcessInfo.processInfo.environment["CI"] == "true" {
                    Issue.record("CI=true but no small filesystem can be mounted here (root and mount are needed)")
                }
                return nil
            }
            disk.mounted = true
            return disk
        }

        private init(mount: String) { self.mount = mount }

        /// Unmounts (container overlays under it first).
        func close() {
            guard mounted else { return }
            _ = FullDiskTests.sh("""
                grep -o " \(mount)/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
                umount '\(mount)' 2>/dev/null || umount -l '\(mount)'
                """)
            mounted = false
        }

        deinit { close() }

        var free: Int64 {
            var st = statvfs()
            return statvfs(mount, &st) == 0 ? Int64(st.f_bavail) * Int64(st.f_frsize) : 0
        }

        /// Takes space until about `keep` bytes are free: `mnt/filler` (fallocate, then writes
        /// to the last block).
        func fill(keeping keep: Int64) throws {
            let path = mount + "/filler"
            let take = max(0, free - keep) / 4096 * 4096
            if take > 0 { _ = FullDiskTests.sh("fallocate -l \(take) '\(path)'") }
            if keep == 0 {
                _ = FullDiskTests.sh("dd if=/dev/zero of='\(mount)/filler2' bs=4096 2>/dev/null; sync -f '\(mount)'")
            }
        }

        func unfill() {
            unlink(mount + "/filler")
            unlink(mount + "/filler2")
        }
    }

    @discardableResult
    static func sh(_ script: String, cwd: URL? = nil) -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        if let cwd { p.currentDirectoryURL = cwd }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("fulldisk-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        guard let h = try? FileHandle(forWritingTo: out) else { return (-1, "") }
        p.standardOutput = h
        p.standardError = h
        do { try p.run() } catch { return (-1, "\(error)") }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }

    /// What must not change: every path under the store (type and size; the database's own
    /// files, lock files and runc's state directory `runtime/`, made by the first RUN, aside),
    /// every table's row count, the images and fsck's verdict. The events table aside: it is
    /// a log of what happened, and a build that failed did create and destroy its container
    /// (dockerd's events say so too).
    static func state(_ env: CLITests.Env, root: String) throws -> String {
        let files = sh("find '\(root)' -mindepth 1 \\( -path '\(root)/locks' -o -path '\(root)/runtime' -o -name 'strata.db*' \\) -prune -o -printf '%P %y %s\\n' | sort").out
        let rows = sh("""
            for t in $(sqlite3 '\(root)/strata.db' "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'events' ORDER BY name"); do
              echo "$t $(sqlite3 '\(root)/strata.db' "SELECT count(*) FROM \\"$t\\"")"
            done
            sqlite3 '\(root)/strata.db' "SELECT 'pending unlink: ' || path FROM pending_unlinks ORDER BY path"
            """).out
        let images = try env.run(["--root", root, "images", "--format", "json"]).out
        let fsck = try env.run(["--root", root, "fsck"])
        return "files:\n\(files)\nrows:\n\(rows)\nimages:\n\(images)\nfsck \(fsck.status): \(fsck.out)"
    }

    /// Tools on PATH; a missing one skips locally and fails under CI=true.
    static func available(_ tools: [String]) -> Bool {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        let missing = tools.filter { t in !path.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(t)") } }
        if missing.isEmpty { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true and tool(s) missing: \(missing)") }
        return false
    }

    static func ingestDebris(_ root: String) -> [String] {
        let ingest = root + "/ingest"
        return ((try? FileManager.default.contentsOfDirectory(atPath: ingest)) ?? []).filter { $0 != "lock" }.sorted()
    }

    @Test(arguments: Command.allCases)
    func aCommandThatRunsOutOfSpaceLeavesTheStoreAsItWas(_ command: Command) throws {
        var tools = ["sqlite3", "busybox", "fallocate"]
        if command == .pull { tools.append("docker-registry") }
        if command == .buildRun { tools.append("runc") }
        guard Self.available(tools) else { return }
        let env = try CLITests.Env()
        guard let disk = SmallDisk.make(in: env.dir, megabytes: 48) else { return }
        defer { disk.close() }
        let root = disk.mount + "/store"
        func s(_ args: [String]) throws -> CLITests.Result { try env.run(["--root", root] + args) }

        // A base image in the small store; an 8 MB image of random bytes outside it.
        #expect(try s(["import", try env.rootfs(), "base:1"]).status == 0)
        try env.shell("""
            mkdir -p ctx && head -c 8000000 /dev/urandom > ctx/big && tar -C ctx -cf big.tar big
            printf 'FROM base:1\\nCOPY big /big\\n' > ctx/Dockerfile
            mkdir -p run && printf 'FROM base:1\\nRUN dd if=/dev/zero of=/big bs=1M count=8\\n' > run/Dockerfile
            mkdir -p pull && printf 'FROM base:1\\nCOPY small /small\\nCOPY big /big\\n' > pull/Dockerfile
            """)
        let dir = env.dir.path
        #expect(try env.run(["import", dir + "/big.tar", "big:1"]).status == 0)  // the helper store, on the big disk
        var registry: Process?
        defer { if let r = registry, r.isRunning { kill(r.processIdentifier, SIGKILL); r.waitUntilExit() } }

        let args: [String]
        var keep: Int64 = 2_000_000
        switch command {
        case .load:
            #expect(try env.run(["save", "-o", dir + "/big-image.tar", "big:1"]).status == 0)
            args = ["load", "-i", dir + "/big-image.tar"]
        case .import:
            args = ["import", dir + "/big.tar", "imported:1"]
        case .pull:
            // Three blobs the small store lacks, pulled one at a time: its base layer in another
            // encoding (push compressed it), a small layer, then 8 MB that do not fit. The pull
            // must take back the two it committed, the other encoding too (law 8).
            let (process, host) = try Self.startRegistry(in: env.dir)
            registry = process
            try env.shell("head -c 100000 /dev/urandom > pull/small && cp ctx/big pull/big")
            #expect(try env.run(["import", dir + "/rootfs.tar", "base:1"]).status == 0)
            #expect(try env.run(["build", "-q", "-t", "\(host)/big:2", dir + "/pull"]).status == 0)
            let pushed = try env.run(["push", "-q", "\(host)/big:2"])
            #expect(pushed.status == 0, "\(pushed.err)")
            keep = 4_500_000
            args = ["pull", "-q", "--max-concurrent", "1", "\(host)/big:2"]  // one at a time: the first is in
        case .buildCopy:
            // The base's snapshot exists before (a build container made it), as after.
            #expect(try s(["create", "--name", "warm", "base:1"]).status == 0)
            #expect(try s(["rm", "warm"]).status == 0)
            args = ["build", "-q", "-t", "built:1", dir + "/ctx"]
        case .buildRun:
            #expect(try s(["create", "--name", "warm", "base:1"]).status == 0)
            #expect(try s(["rm", "warm"]).status == 0)
            args = ["build", "-q", "-t", "ran:1", dir + "/run"]
        case .commit:
            #expect(try s(["create", "--name", "c1", "base:1"]).status == 0)
            #expect(try s(["cp", dir + "/ctx/big", "c1:/big"]).status == 0)
            args = ["commit", "c1", "committed:1"]
        case .volumeCreate:
            keep = 0
            args = ["volume", "create", "v1"]
        case .save:
            keep = 300_000
            args = ["save", "-o", disk.mount + "/saved.tar", "base:1"]
        case .cp:
            // Mounted before, so the merged view is part of "before" too.
            #expect(try s(["create", "--name", "c2", "base:1"]).status == 0)
            #expect(try s(["mount", "c2"]).status == 0)
            args = ["cp", dir + "/ctx/big", "c2:/big"]
        }

        let before = try Self.state(env, root: root)
        try disk.fill(keeping: keep)
        let failed = try s(args)
        let lines = failed.err.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(failed.status == 1, "\(command): \(failed.err)")
        #expect(lines.count == 1 && lines[0].hasPrefix("error: disk full: "), "\(command) printed: \(failed.err)")
        if command != .buildRun, command != .volumeCreate {
            // How much was needed, or how much there was: a number of MB.
            #expect(failed.err.contains(" MB"), "\(command) printed: \(failed.err)")
        }
        if command == .buildCopy {
            // COPY knows what it writes (the 8 MB file, into the container and the layer):
            // an estimate of what was missing, not only a lower bound.
            #expect(failed.err.contains("needs about "), "\(command) printed: \(failed.err)")
        }
        #expect(Self.ingestDebris(root).isEmpty, "\(command) left \(Self.ingestDebris(root)) in ingest/")
        #expect(!FileManager.default.fileExists(atPath: disk.mount + "/saved.tar"))
        disk.unfill()
        let after = try Self.state(env, root: root)
        #expect(before == after, "\(command) changed the store:\nbefore:\n\(before)\nafter:\n\(after)")

        // With room again the same command works, and gc leaves no debris.
        let retried = try s(args)
        #expect(retried.status == 0, "\(command) after freeing space: \(retried.err)")
        #expect(try s(["gc"]).status == 0)
        #expect(Self.ingestDebris(root).isEmpty)
        let fsck = try s(["fsck"])
        #expect(fsck.status == 0, "\(fsck.out)")
    }

    /// SQLite itself running out of room (its WAL cannot grow: SQLITE_FULL) is a full disk too,
    /// and the write that met it is not half-done.
    @Test func theDatabaseRunningOutOfRoomIsADiskFullError() async throws {
        guard Self.available(["busybox", "fallocate"]) else { return }
        let env = try CLITests.Env()
        guard let disk = SmallDisk.make(in: env.dir, megabytes: 16) else { return }
        defer { disk.close() }
        let root = disk.mount + "/store"
        #expect(try env.run(["--root", root, "import", try env.rootfs(), "base:1"]).status == 0)
        let store = try await Store.open(at: URL(fileURLWithPath: root))
        try disk.fill(keeping: 0)
        var failure: StrataError?
        var tagged = 0
        for i in 0..<20_000 {
            do {
                try await store.tag("base:1", as: "t\(i):\(String(repeating: "x", count: 100))")
                tagged += 1
            } catch let e as StrataError {
                failure = e
                break
            }
        }
        #expect(failure?.code == .diskFull, "\(failure.map { "\($0.code): \($0.message)" } ?? "no failure after \(tagged) tags")")
        disk.unfill()
        // Every tag that returned is there, the one that failed is not.
        #expect(try await store.images().first?.tags.count == tagged + 1)
        #expect(try await store.check(quick: true).clean)
    }

    /// docker-registry on a free loopback port, storage under `dir`.
    static func startRegistry(in dir: URL) throws -> (Process, String) {
        let port = Int.random(in: 20_000..<60_000)
        let host = "127.0.0.1:\(port)"
        let config = dir.appendingPathComponent("registry.yml")
        try """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(dir.appendingPathComponent("registry").path)
            http:
              addr: \(host)
            """.write(to: config, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        p.arguments = ["serve", config.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        for _ in 0..<100 {
            if sh("curl -sf -o /dev/null http://\(host)/v2/").status == 0 { break }
            usleep(100_000)
        }
        return (p, host)
    }
}
