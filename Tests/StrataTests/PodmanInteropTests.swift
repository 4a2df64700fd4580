import Foundation
import Testing
@testable import Strata

/// podman (vfs storage, its own root) as ground truth for history and as a loader/saver.
@Suite struct PodmanInteropTests {
    static func podman(_ dir: TempDir) -> [String] {
        ["podman", "--root", dir.path + "/podman-root", "--runroot", dir.path + "/podman-run", "--storage-driver", "vfs",
         "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    }

    struct PodmanHistory: Decodable {
        var id: String
        var size: Int64
        var createdBy: String?
        var comment: String?
        enum CodingKeys: String, CodingKey { case id, size, comment, createdBy = "CreatedBy" }
    }

    @Test func podmanLoadsStrataSaveAndAgreesOnHistory() async throws {
        guard Peer.require("podman", "umoci") else { return }
        let dir = try TempDir()
        let layout = try Fixtures.umociImage(in: dir)
        let src = try InteropTests.sourceImage(layout: layout)
        let store = try await dir.store()
        _ = try await store.load(from: URL(fileURLWithPath: layout))
        try await store.tag(src.configDigest.string, as: "interop/app:1")
        let archive = dir.file("app.tar")
        try await store.save(["interop/app:1"], to: archive)

        let p = Self.podman(dir)
        let load = try sh(p + ["load", "-i", archive.path])
        #expect(load.stdout.contains("docker.io/interop/app:1"))
        let inspect = try sh(p + ["image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", "interop/app:1"]).stdout
        #expect(inspect.hasPrefix(src.configDigest.encoded))
        let theirs = try JSONDecoder().decode([PodmanHistory].self, from: Data(try sh(p + ["history", "--format", "json", "interop/app:1"]).stdout.utf8))
        let ours = try await store.history(of: "interop/app:1")
        #expect(ours.map(\.size) == theirs.map(\.size))
        #expect(ours.map(\.createdBy) == theirs.map { $0.createdBy ?? "" })
        #expect(ours.map { $0.id?.encoded ?? "<missing>" } == theirs.map(\.id))

        // And back: every podman save format loads into strata with the same image.
        try sh(p + ["save", "-o", dir.file("p-docker.tar").path, "interop/app:1"])
        try sh(p + ["save", "--format", "oci-archive", "-o", dir.file("p-oci.tar").path, "interop/app:1"])
        try sh(p + ["save", "--format", "oci-dir", "-o", dir.file("p-dir").path, "interop/app:1"])
        for f in ["p-docker.tar", "p-oci.tar", "p-dir"] {
            let s = try await dir.store("s-\(f)")
            let loaded = try await s.load(from: dir.file(f))
            #expect(loaded.map(\.id) == [src.configDigest], "\(f)")
            #expect(try await s.layers(of: src.configDigest.string).map(\.diffID) == src.config.rootfs.diffIDs, "\(f)")
        }
    }
}
