import Foundation
import GRDB
import Testing
@testable import Strata

@Suite struct QueryTests {
    /// Docker's history algorithm on an image umoci built: entries consume diffIDs in order,
    /// empty layers are 0B, sizes are the uncompressed layer sizes, and a step shows an
    /// image ID only where a local image ends.
    @Test func historyFollowsDockersAlgorithm() async throws {
        guard Peer.require("umoci") else { return }
        let dir = try TempDir()
        let layout = try Fixtures.umociImage(in: dir)
        let src = try InteropTests.sourceImage(layout: layout)
        let store = try await dir.store()
        _ = try await store.load(from: URL(fileURLWithPath: layout))
        let history = try await store.history(of: src.configDigest.string)
        #expect(history.count == 4)
        #expect(history.map(\.emptyLayer) == [true, false, true, false])
        #expect(history[0].id == src.configDigest)
        #expect(history[1...].allSatisfy { $0.id == nil })
        #expect(history[0].size == 0 && history[2].size == 0)
        // Uncompressed sizes from gunzip, a different implementation.
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" +
            (try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json")))).manifests[0].digest.encoded)))
        let sizes = try manifest.layers.map { l in
            Int64(try bash("gunzip -c '\(layout)/blobs/sha256/\(l.digest.encoded)' | wc -c").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        #expect(history[3].size == sizes[0])
        #expect(history[1].size == sizes[1])
    }

    /// A chain of images: each step's ID shows where a local image ends.
    @Test func historyShowsLocalParentIDs() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        let h = try await store.history(of: "app:latest")
        #expect(h.map(\.id) == [ids.app, ids.base])
        #expect(h[1].tags == ["base:1"])
        // Removing the parent's tag keeps it as an intermediate image: hidden without -a.
        _ = try await store.removeImage("base:1")
        #expect(try await store.images().map(\.id) == [ids.app])
        #expect(Set(try await store.images(all: true).map(\.id)) == [ids.app, ids.base])
        // An intermediate image is not dangling, with -a too (moby's list starts from the
        // store's heads for dangling=true; podman 4.3 agrees), but -a lists it as untagged.
        #expect(try await store.images(filters: ImageFilters(dangling: true)).isEmpty)
        #expect(try await store.images(all: true, filters: ImageFilters(dangling: true)).isEmpty)
        #expect(try await store.images(all: true).contains { $0.id == ids.base && $0.tags.isEmpty })
    }

    @Test func rmiFollowsDockersRules() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        let blobFiles = { () -> Int in (try? FileManager.default.contentsOfDirectory(atPath: store.paths.blobsDir.path).count) ?? -1 }
        #expect(blobFiles() == 6)

        // With several tags, removing one only untags.
        #expect(try await store.removeImage("app:1") == [.untagged("app:1")])
        // A child image uses base: refused by ID without -f.
        await #expect { _ = try await store.removeImage(ids.base.shortHex) } throws: { ($0 as? StrataError)?.code == .conflict }
        // Tag app under another repository: removing by ID needs -f.
        try await store.tag("app:latest", as: "other/app:2")
        await #expect { _ = try await store.removeImage(ids.app.string) } throws: {
            ($0 as? StrataError)?.message.contains("referenced in multiple repositories") ?? false
        }
        // By name, base only loses its tag because a child needs it.
        #expect(try await store.removeImage("base:1") == [.untagged("base:1")])
        #expect(blobFiles() == 6)
        // -f on app removes its other tags, the image, and the untagged parent nothing else needs.
        let events = try await store.removeImage("app:latest", force: true)
        #expect(events == [.untagged("app:latest"), .untagged("other/app:2"), .deleted(ids.app), .deleted(ids.base)])
        #expect(blobFiles() == 0)
        let rows = try await store.read { db in
            try ["images", "layers", "blobs", "layer_blobs", "tags", "edges", "pending_unlinks", "history"].map {
                try Int.fetchOne(db, sql: "SELECT count(*) FROM \($0)") ?? -1
            }
        }
        #expect(rows == [0, 0, 0, 0, 0, 0, 0, 0])
        await #expect { _ = try await store.removeImage("nope:1") } throws: { ($0 as? StrataError)?.code == .imageNotFound }
    }

    @Test func rmiKeepsSharedLayers() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        // -f on the parent: it goes, the child keeps every layer it needs.
        _ = try await store.removeImage(ids.base.string, force: true)
        let layers = try await store.layers(of: "app:1")
        #expect(layers.count == 2)
        for l in layers { #expect(FileManager.default.fileExists(atPath: store.paths.blob(l.blobs[0].digest).path)) }
        #expect(try await store.lineage(of: "app:1").map(\.id) == [ids.app])
    }

    @Test func saveIsByteReproducibleAndRoundTrips() async throws {
        let dir = try TempDir()
        _ = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        _ = try ArchiveFixtures.multiPlatformArchive(dir.file("multi.tar").path, in: dir)
        let a = try await dir.store("a")
        _ = try await a.load(from: dir.file("legacy.tar"))
        _ = try await a.load(from: dir.file("multi.tar"))
        for format in [ArchiveFormat.docker, .ociArchive] {
            let one = dir.file("one-\(format.rawValue).tar"), two = dir.file("two-\(format.rawValue).tar")
            try await a.save(["app:1", "base:1", "multi:1"], to: one, format: format)
            try await a.save(["app:1", "base:1", "multi:1"], to: two, format: format)
            #expect(try Data(contentsOf: one) == Data(contentsOf: two))
            // Load into a second store and save again: the same bytes.
            let b = try await dir.store("b-\(format.rawValue)")
            let loaded = try await b.load(from: one)
            #expect(loaded.count == 3)
            let three = dir.file("three-\(format.rawValue).tar")
            try await b.save(["app:1", "base:1", "multi:1"], to: three, format: format)
            #expect(try Data(contentsOf: one) == Data(contentsOf: three))
            // Shared layer written once: GNU tar lists each blob once.
            let names = try sh(["tar", "tf", one.path]).stdout.split(separator: "\n")
            #expect(names.count == Set(names).count)
        }
        // A failed save leaves nothing behind.
        await #expect(throws: StrataError.self) { try await a.save(["nope:1"], to: dir.file("fail.tar")) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("fail.tar").path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".strata-") }
        #expect(leftovers.isEmpty)
    }

    @Test func importRefusesUnsafeLayers() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let image = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "bb:1")
        #expect(try await store.images().first?.id == image.id)
        let before = try await StoreSnapshot.take(store)
        try ArchiveFixtures.tar(dir.file("evil.tar").path, [("../../etc/evil", Data("x".utf8))])
        try ArchiveFixtures.tar(dir.file("abs.tar").path, [("/etc/evil", Data("x".utf8))])
        for f in ["evil.tar", "abs.tar"] {
            await #expect(throws: StrataError.self) { _ = try await store.importRootfs(from: dir.file(f), reference: "evil:1") }
            #expect(try await StoreSnapshot.take(store) == before)
        }
    }

    @Test func diskUsageAddsUp() async throws {
        let dir = try TempDir()
        _ = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        let blobBytes = try bash("cat '\(store.paths.blobsDir.path)'/* | wc -c").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let usage = try await store.diskUsage(verbose: true)
        #expect(String(usage.rows.first { $0.type == "Images" }?.size ?? -1) == blobBytes)
        #expect(usage.rows.first { $0.type == "Images" }?.reclaimable == 0)
        let base = try #require(usage.images.first { $0.tags == ["base:1"] })
        #expect(base.uniqueSize == 0 && base.sharedSize == base.size)
        #expect(usage.layers.total == 2)
        try await expectRowsMatchDisk(store)
        // An orphan file and an untagged image: both reclaimable, and still adding up.
        try Data(repeating: 7, count: 50_000).write(to: store.paths.blobsDir.appendingPathComponent(String(repeating: "e", count: 64)))
        _ = try await store.removeImage("app:1")
        try await store.tag("app:latest", as: "keep:1")
        _ = try await store.removeImage("base:1")
        let after = try await store.diskUsage()
        #expect(after.rows.first { $0.type == "Orphans" }?.reclaimable == 50_000)
        try await expectRowsMatchDisk(store)
    }

    /// The sum of df's rows equals the bytes under the store root within 1%.
    func expectRowsMatchDisk(_ store: Store) async throws {
        let usage = try await store.diskUsage()
        let onDisk = Int64(try bash("find '\(store.root.path)' -type f -printf '%s\\n' | awk '{s+=$1} END {print s}'").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(abs(Double(usage.totalSize - onDisk)) <= Double(onDisk) * 0.01, "df says \(usage.totalSize), disk has \(onDisk)")
    }
}
