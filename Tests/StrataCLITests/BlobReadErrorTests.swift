import Foundation
import Testing

/// Issue #17: a blob whose reads fail with EIO (a bad sector, injected by the power-cut
/// filesystem: `powercut eio FILE`) is reported by its path in one line by every command
/// that reads it, and fsck names the damaged image instead of stopping at the first error.
@Suite struct BlobReadErrorTests {
    @Test func anUnreadableLayerIsNamedByPathAndFsckNamesTheImage() throws {
        guard FullDiskTests.available(["cc", "pkg-config", "busybox", "fusermount3"]) else { return }
        guard geteuid() == 0, access("/dev/fuse", F_OK) == 0, FullDiskTests.sh("pkg-config --exists fuse3").status == 0 else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("CI=true but FUSE cannot run here (root, /dev/fuse and libfuse3-dev are needed)")
            }
            return
        }
        let env = try CLITests.Env()
        let backing = env.dir.appendingPathComponent("backing").path, mnt = env.dir.appendingPathComponent("mnt").path
        try FileManager.default.createDirectory(atPath: backing, withIntermediateDirectories: true)
        let powercut = ToolRun.repo.appendingPathComponent("tools/powercut/powercut").path
        // The daemon must not inherit this process's descriptors (Foundation waits for a pipe
        // of the child to close): every descriptor above 2 is closed before the mount.
        let mounted = FullDiskTests.sh("""
            for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done
            '\(powercut)' mount '\(backing)' '\(mnt)'
            """)
        #expect(mounted.status == 0, "\(mounted.out)")
        guard mounted.status == 0 else { return }
        defer { FullDiskTests.sh("'\(powercut)' umount '\(mnt)'") }
        let root = mnt + "/store"
        func s(_ args: [String]) throws -> CLITests.Result { try env.run(["--root", root] + args) }

        let imported = try s(["import", try env.rootfs(), "app:1"])
        #expect(imported.status == 0, "\(imported.err)")
        let id = String(imported.out.dropFirst(7).prefix(12))
        // The layer is the largest blob (the config and manifest are small JSON).
        let blobs = root + "/blobs/sha256"
        let layer = try FileManager.default.contentsOfDirectory(atPath: blobs).max { a, b in
            ((try? FileManager.default.attributesOfItem(atPath: blobs + "/" + a)[.size] as? Int) ?? 0)
                < ((try? FileManager.default.attributesOfItem(atPath: blobs + "/" + b)[.size] as? Int) ?? 0)
        }
        let path = blobs + "/" + (layer ?? "")
        let eio = FullDiskTests.sh("'\(powercut)' eio '\(path)'")
        #expect(eio.status == 0, "\(eio.out)")

        // save, create (unpacks the layer into a snapshot) and fsck each say which file failed.
        for args in [["save", "-o", env.dir.appendingPathComponent("out.tar").path, "app:1"], ["create", "app:1"]] {
            let r = try s(args)
            let lines = r.err.split(separator: "\n")
            #expect(r.status == 1, "\(args[0]): \(r.err)")
            #expect(lines.count == 1 && r.err.contains(path) && r.err.contains("Input/output error"), "\(args[0]) printed: \(r.err)")
        }
        let fsck = try s(["fsck"])
        #expect(fsck.status == 1)
        let problem = fsck.out.split(separator: "\n").first { $0.hasPrefix("unreadable-blob: sha256:\(layer ?? "")") }
        #expect(problem?.contains(path) == true && problem?.contains("Input/output error") == true, "\(fsck.out)")
        #expect(problem?.contains("damaged image: \(id) (") == true && problem?.contains("app:1") == true, "\(fsck.out)")
        let json = try s(["fsck", "--format", "json"])
        #expect(json.out.contains("\"images\"") && json.out.contains("sha256:\(imported.out.dropFirst(7).prefix(64))"), "\(json.out)")
        // Nothing half-made was left by the failed commands.
        #expect(try s(["ps", "-a", "-q"]).out.isEmpty)
    }
}
