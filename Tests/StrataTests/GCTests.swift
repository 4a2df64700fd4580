import Foundation
import GRDB
import Testing
@testable import Strata

/// A store graph declared as a table: objects, edges, roots, and what must survive gc.
/// Names stand for digests (`sha256` of the name). Everything is older than the grace period.
struct GCCase: CustomStringConvertible, Sendable {
    struct Image: Sendable {
        var name: String
        var manifest: String
        var index: String? = nil
        /// (chain, blob) bottom first; chains must be declared in `layers`.
        var layers: [(String, String)]
        var parent: String? = nil
    }
    var description: String
    var layers: [(chain: String, diff: String, parent: String?)] = []
    var layerBlobs: [(blob: String, diff: String, compression: String)] = []
    var extraBlobs: [String] = []
    var images: [Image] = []
    var edges: [(String, String, String)] = []
    var tags: [(String, String)] = []
    var containers: [(String, String)] = []
    /// (lease id, seconds until expiry — negative means expired, blob refs)
    var leases: [(String, Int64, [String])] = []
    /// (key, image, seconds since last use)
    var buildCache: [(String, String, Int64)] = []
    /// Names of images, layers (chain names) and blobs that must remain; everything else goes.
    var survivors: Set<String>

    static func d(_ name: String) -> String { Digest.sha256(Data(name.utf8)).string }
}

@Suite struct GCTests {
    static let cases: [GCCase] = [
        GCCase(description: "shared layers: the tagged image keeps the shared base",
               layers: [("c1", "d1", nil), ("c2", "d2", "c1"), ("c3", "d3", "c1")],
               layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none"), ("b3", "d3", "none")],
               images: [.init(name: "A", manifest: "mA", layers: [("c1", "b1"), ("c2", "b2")]),
                        .init(name: "B", manifest: "mB", layers: [("c1", "b1"), ("c3", "b3")])],
               edges: [("mA", "A", "config"), ("mA", "b1", "layer"), ("mA", "b2", "layer"), ("mB", "B", "config"), ("mB", "b1", "layer"), ("mB", "b3", "layer")],
               tags: [("a:1", "A")],
               survivors: ["A", "mA", "c1", "c2", "b1", "b2"]),
        GCCase(description: "same diffID stored gzip and zstd: a kept layer keeps every encoding (the push cache)",
               layers: [("c1", "d1", nil)],
               layerBlobs: [("gz", "d1", "gzip"), ("zst", "d1", "zstd")],
               images: [.init(name: "A", manifest: "mA", layers: [("c1", "gz")]),
                        .init(name: "B", manifest: "mB", layers: [("c1", "zst")])],
               edges: [("mA", "A", "config"), ("mA", "gz", "layer"), ("mB", "B", "config"), ("mB", "zst", "layer")],
               tags: [("a:1", "A")],
               survivors: ["A", "mA", "c1", "gz", "zst"]),
        GCCase(description: "an encoding of a layer no image keeps goes with it",
               layers: [("c1", "d1", nil), ("c2", "d2", nil)],
               layerBlobs: [("gz", "d1", "gzip"), ("plain2", "d2", "none"), ("gz2", "d2", "gzip")],
               images: [.init(name: "A", manifest: "mA", layers: [("c1", "gz")]),
                        .init(name: "B", manifest: "mB", layers: [("c2", "plain2")])],
               edges: [("mA", "A", "config"), ("mA", "gz", "layer"), ("mB", "B", "config"), ("mB", "plain2", "layer")],
               tags: [("a:1", "A")],
               survivors: ["A", "mA", "c1", "gz"]),
        GCCase(description: "an index with one platform tagged keeps the index and what it names",
               layers: [("c1", "d1", nil), ("c2", "d2", nil)],
               layerBlobs: [("l-amd", "d1", "gzip"), ("l-arm", "d2", "gzip")],
               images: [.init(name: "AMD", manifest: "m-amd", index: "idx", layers: [("c1", "l-amd")]),
                        .init(name: "ARM", manifest: "m-arm", index: "idx", layers: [("c2", "l-arm")])],
               edges: [("idx", "m-amd", "manifest"), ("idx", "m-arm", "manifest"),
                       ("m-amd", "AMD", "config"), ("m-amd", "l-amd", "layer"), ("m-arm", "ARM", "config"), ("m-arm", "l-arm", "layer")],
               tags: [("multi:1", "AMD")],
               // The untagged platform's image row goes; its content stays reachable from the index.
               survivors: ["AMD", "m-amd", "idx", "c1", "l-amd", "m-arm", "ARM", "l-arm"]),
        GCCase(description: "intermediate build images live through their tagged child",
               layers: [("c1", "d1", nil), ("c2", "d2", "c1"), ("c3", "d3", "c2")],
               layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none"), ("b3", "d3", "none")],
               images: [.init(name: "P", manifest: "mP", layers: [("c1", "b1")]),
                        .init(name: "Q", manifest: "mQ", layers: [("c1", "b1"), ("c2", "b2")], parent: "P"),
                        .init(name: "R", manifest: "mR", layers: [("c1", "b1"), ("c2", "b2"), ("c3", "b3")], parent: "Q")],
               tags: [("r:1", "R")],
               survivors: ["P", "Q", "R", "mP", "mQ", "mR", "c1", "c2", "c3", "b1", "b2", "b3"]),
        GCCase(description: "an intermediate image whose child is gone is garbage",
               layers: [("c1", "d1", nil), ("c2", "d2", "c1")],
               layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
               images: [.init(name: "P", manifest: "mP", layers: [("c1", "b1")]),
                        .init(name: "Q", manifest: "mQ", layers: [("c1", "b1"), ("c2", "b2")], parent: "P")],
               survivors: []),
        GCCase(description: "unexpired leases hold blobs; expired leases hold nothing and go",
               extraBlobs: ["held", "dropped"],
               leases: [("live", 600, ["held"]), ("old", -10, ["dropped"])],
               survivors: ["held"]),
        GCCase(description: "a container keeps its untagged image",
               layers: [("c1", "d1", nil)],
               layerBlobs: [("b1", "d1", "none")],
               images: [.init(name: "A", manifest: "mA", layers: [("c1", "b1")])],
               containers: [("ctr", "A")],
               survivors: ["A", "mA", "c1", "b1"]),
        GCCase(description: "build cache kept by policy: recent entries are roots, stale ones are not",
               layers: [("c1", "d1", nil), ("c2", "d2", nil)],
               layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
               images: [.init(name: "Fresh", manifest: "mF", layers: [("c1", "b1")]),
                        .init(name: "Stale", manifest: "mS", layers: [("c2", "b2")])],
               buildCache: [("k1", "Fresh", 60), ("k2", "Stale", 30 * 24 * 3600)],
               survivors: ["Fresh", "mF", "c1", "b1"]),
    ]

    /// Writes the declared graph as rows (and blob files), two hours old.
    static func build(_ c: GCCase, in store: Store) async throws {
        let old = now() - 7200
        let d = GCCase.d
        var allBlobs = Set(c.extraBlobs)
        for i in c.images { allBlobs.formUnion([i.name, i.manifest] + (i.index.map { [$0] } ?? []) + i.layers.map(\.1)) }
        for b in c.layerBlobs { allBlobs.insert(b.blob) }
        for b in allBlobs {
            let path = store.paths.blobsDir.appendingPathComponent(String(d(b).dropFirst(7)))
            try Data(b.utf8).write(to: path)
            try bash("touch -d '3 hours ago' '\(path.path)'")
        }
        let blobNames = allBlobs
        try await store.db.write { db in
            for b in blobNames { try db.execute(sql: "INSERT INTO blobs(digest, size, media_type, created_at) VALUES (?, ?, 'x', ?)", arguments: [d(b), b.utf8.count, old]) }
            for l in c.layers {
                try db.execute(sql: "INSERT INTO layers(chain_id, diff_id, parent_chain_id, size, created_at) VALUES (?, ?, ?, 10, ?)", arguments: [d(l.chain), d(l.diff), l.parent.map(d), old])
            }
            for lb in c.layerBlobs { try db.execute(sql: "INSERT INTO layer_blobs VALUES (?, ?, ?, 10)", arguments: [d(lb.blob), d(lb.diff), lb.compression]) }
            for i in c.images {
                try db.execute(sql: """
                    INSERT INTO images(id, config_digest, manifest_digest, index_digest, top_chain_id, parent_id, layer_count, history_count, size, added_at)
                    VALUES (?, ?, ?, ?, ?, NULL, ?, 0, 10, ?)
                    """, arguments: [d(i.name), d(i.name), d(i.manifest), i.index.map(d), i.layers.last.map { d($0.0) }, i.layers.count, old])
                for (n, (chain, blob)) in i.layers.enumerated() {
                    try db.execute(sql: "INSERT INTO image_layers VALUES (?, ?, ?, ?, 'x')", arguments: [d(i.name), n, d(chain), d(blob)])
                }
            }
            for i in c.images where i.parent != nil {
                try db.execute(sql: "UPDATE images SET parent_id = ? WHERE id = ?", arguments: [i.parent.map(d), d(i.name)])
            }
            for (s, t, k) in c.edges { try db.execute(sql: "INSERT INTO edges VALUES (?, ?, ?)", arguments: [d(s), d(t), k]) }
            for (name, image) in c.tags { try db.execute(sql: "INSERT INTO tags VALUES (?, ?, ?)", arguments: [try Reference(name).fullName, d(image), old]) }
            for (id, image) in c.containers { try db.execute(sql: "INSERT INTO containers(id, image_id, state, created_at) VALUES (?, ?, 'created', ?)", arguments: [id, d(image), old]) }
            for (id, expiresIn, refs) in c.leases {
                try db.execute(sql: "INSERT INTO leases VALUES (?, 'test', ?, ?)", arguments: [id, old, now() + expiresIn])
                for r in refs {  // "image:NAME" leases an image, a bare name a blob
                    let (kind, name) = r.hasPrefix("image:") ? ("image", String(r.dropFirst(6))) : ("blob", r)
                    try db.execute(sql: "INSERT INTO lease_refs VALUES (?, ?, ?)", arguments: [id, kind, d(name)])
                }
            }
            for (key, image, ago) in c.buildCache {
                try db.execute(sql: "INSERT INTO build_cache VALUES (?, NULL, 'RUN x', ?, ?, 1)", arguments: [key, d(image), now() - ago])
            }
        }
    }

    @Test(arguments: cases)
    func exactlyTheReachableSetSurvives(_ c: GCCase) async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        try await Self.build(c, in: store)
        // df's fast reachability agrees with gc's marking on what could be reclaimed.
        let dry = try await store.collectGarbage(GCOptions(dryRun: true, grace: 0))
        let df = try await store.diskUsage()
        #expect(df.rows.first { $0.type == "Images" }?.reclaimable == dry.freedBytes, "\(c.description): df vs gc")
        // df's active images and chains are what gc (no grace) leaves: an image lists every
        // chain of its stack, so the chains that stay are exactly those a live image uses.
        let afterGC = try await dir.store("copy-\(UUID().uuidString.prefix(8))")
        try await Self.build(c, in: afterGC)
        _ = try await afterGC.collectGarbage(GCOptions(grace: 0))
        let (imagesLeft, chainsLeft) = try await afterGC.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM images") ?? -1, try Int.fetchOne(db, sql: "SELECT count(*) FROM layers") ?? -1)
        }
        #expect(df.rows.first { $0.type == "Images" }?.active == imagesLeft, "\(c.description): df active images")
        #expect(df.layers.active == chainsLeft && df.layers.total == c.layers.count, "\(c.description): df layers \(df.layers) vs \(chainsLeft) after gc")
        // gc --explain walks the full graph (the oracle): it finds a path exactly to what survives.
        var blobNames = Set(c.layerBlobs.map(\.blob) + c.extraBlobs)
        for i in c.images { blobNames.insert(i.manifest); if let x = i.index { blobNames.insert(x) } }
        for b in blobNames {
            let e = try await store.explainRetention(GCCase.d(b))
            #expect((e.path != nil) == c.survivors.contains(b), "\(c.description): explain \(b) -> \(e.path ?? [])")
        }
        let report = try await store.collectGarbage()
        #expect(!report.skipped)
        var names: [String: String] = [:]
        for i in c.images { for n in [i.name, i.manifest] + (i.index.map { [$0] } ?? []) { names[GCCase.d(n)] = n } }
        for l in c.layers { names[GCCase.d(l.chain)] = l.chain }
        for b in c.layerBlobs { names[GCCase.d(b.blob)] = b.blob }
        for b in c.extraBlobs { names[GCCase.d(b)] = b }
        let left = try await store.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM images UNION SELECT chain_id FROM layers UNION SELECT digest FROM blobs")
        }
        let surviving = Set(left.compactMap { names[$0] })
        // Image rows and blob rows share names (config digest = image ID): compare per kind.
        let imageRows = Set(try await store.read { db in try String.fetchAll(db, sql: "SELECT id FROM images") }.compactMap { names[$0] })
        let expectedImages = Set(c.images.map(\.name)).intersection(c.survivors).subtracting(["ARM"])
        #expect(surviving == c.survivors, "\(c.description)")
        #expect(imageRows == expectedImages, "\(c.description): image rows")
        // Files follow rows.
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: store.paths.blobsDir.path))
        let blobRows = Set(try await store.read { db in try String.fetchAll(db, sql: "SELECT digest FROM blobs") }.map { String($0.dropFirst(7)) })
        #expect(files == blobRows, "\(c.description): files")
        // Leases: expired ones are gone, live ones stay.
        let leases = Set(try await store.leases().map(\.id))
        #expect(leases == Set(c.leases.filter { $0.1 > 0 }.map(\.0)), "\(c.description): leases")
        // gc twice frees nothing the second time.
        let again = try await store.collectGarbage()
        #expect(again.freedBytes == 0 && again.blobsRemoved == 0 && again.imagesRemoved == 0, "\(c.description): second run")
        // The synthetic blobs are not real layers, so check sizes, rows and orphans only.
        #expect(try await store.check(quick: true).clean, "\(c.description): fsck")
    }

    /// A volume directory with no row (a `volume create` cut short between its mkdir and its
    /// row) goes once it is older than the grace period and no create's lease holds it.
    @Test func orphanVolumeDirectoriesAreCollected() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.createVolume("kept")
        let volumes = store.root.appendingPathComponent("volumes").path
        _ = try bash("""
            cd '\(volumes)' && mkdir -p crashed/data young/data leased/data && echo x > crashed/data/f
            touch -d '2 hours ago' crashed/data/f crashed/data crashed leased/data leased kept/data kept
            """)
        let lease = try await store.createLease("volume create", refs: ["leased"], kind: "volume")
        #expect(try await store.check().problems.map(\.subject) == ["volumes/crashed"])
        let r = try await store.collectGarbage()
        #expect(r.orphanVolumesRemoved == 1 && r.freedBytes >= 2)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: volumes)) == ["kept", "young", "leased"])
        await store.dropLease(lease)
        let all = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(all.orphanVolumesRemoved == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: volumes) == ["kept"])
        #expect(try await store.volumes().map(\.name) == ["kept"])
        #expect(try await store.check().clean)
    }

    @Test func graceProtectsYoungRowsAndOrphans() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir))  // untagged: garbage, but young
        let young = store.paths.blobsDir.appendingPathComponent(String(repeating: "a", count: 64))
        let old = store.paths.blobsDir.appendingPathComponent(String(repeating: "b", count: 64))
        try Data("young".utf8).write(to: young)
        try Data("old".utf8).write(to: old)
        try bash("touch -d '2 hours ago' '\(old.path)'; mkdir -p '\(store.paths.ingestDir.path)/stale' '\(store.paths.ingestDir.path)/fresh'; touch -d '2 hours ago' '\(store.paths.ingestDir.path)/stale'")
        let r = try await store.collectGarbage()
        #expect(r.imagesRemoved == 0 && r.orphanFilesRemoved == 1 && r.ingestDirsRemoved == 1)
        #expect(FileManager.default.fileExists(atPath: young.path))
        #expect(!FileManager.default.fileExists(atPath: old.path))
        #expect(try await store.images().count == 1)
        // With no grace the untagged image and the young orphan go.
        let all = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(all.imagesRemoved == 1 && all.orphanFilesRemoved == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.paths.blobsDir.path).isEmpty)
    }

    @Test func ifDirtySkipsWhenNothingChanged() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "x:1")
        #expect(try await store.collectGarbage(GCOptions(ifDirty: true)).skipped == false)
        let second = try await store.collectGarbage(GCOptions(ifDirty: true))
        #expect(second.skipped && second.reason?.contains("nothing changed") == true)
        try await store.tag("x:1", as: "y:1")
        #expect(try await store.collectGarbage(GCOptions(ifDirty: true)).skipped == false)
    }

    @Test func onlyOneGcRunsAtATime() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let held = try #require(try FileLock(tryPath: store.paths.locksDir.appendingPathComponent("gc.lock").path))
        let r = try await store.collectGarbage()
        #expect(r.skipped && r.reason == "another gc is running")
        withExtendedLifetime(held) {}
    }

    @Test func fsckFindsAndRepairsDamage() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        #expect(try await store.check().problems.isEmpty)
        // Corrupt a layer blob (same size), delete the base config, add an old orphan.
        let layers = try await store.layers(of: "app:1")
        let layerPath = store.paths.blob(layers[1].blobs[0].digest).path
        chmod(layerPath, 0o644)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: layerPath))
        bytes[100] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: layerPath))
        let orphan = store.paths.blobsDir.appendingPathComponent(String(repeating: "c", count: 64))
        try Data("x".utf8).write(to: orphan)
        try bash("touch -d '2 hours ago' '\(orphan.path)'")
        let quick = try await store.check(quick: true)
        #expect(quick.problems.map(\.kind) == ["orphan-file"])
        let full = try await store.check()
        #expect(Set(full.problems.map(\.kind)) == ["corrupt-blob", "orphan-file"])
        #expect(!full.clean)
        let repaired = try await store.check(repair: true)
        #expect(repaired.clean)
        let broken = try await store.read { db in try String.fetchAll(db, sql: "SELECT id FROM images WHERE broken = 1") }
        #expect(broken == [ids.app.string])
        // Tags are kept, and loading the image again heals it.
        #expect(try await store.images().flatMap(\.tags).contains("app:1"))
        _ = try await store.load(from: dir.file("legacy.tar"))
        #expect(try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM images WHERE broken = 1") } == 0)
        #expect(try await store.check().problems.isEmpty)
    }

    @Test func explainNamesThePathFromARoot() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        _ = try await store.removeImage("base:1")
        let e = try await store.explainRetention(ids.base.string)
        #expect(e.path?.first?.hasPrefix("tag:app:") == true)
        #expect(e.path?.last == "image:\(ids.base)")
        let layers = try await store.layers(of: "app:1")
        let blob = try await store.explainRetention(layers[0].blobs[0].digest.string)
        #expect(blob.path?.last == "blob:\(layers[0].blobs[0].digest)")
        _ = try await store.removeImage("app:1")
        _ = try await store.removeImage("app:latest")
        await #expect(throws: StrataError.self) { _ = try await store.explainRetention(ids.base.string) }
    }
}

@Suite struct PruneTests {
    @Test func pruneDanglingThenAllWithFilters() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        let fresh = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir))  // dangling, created now
        // Dangling only: the untagged import goes; base (untagged parent of app) is not dangling.
        _ = try await store.removeImage("base:1")
        var r = try await store.pruneImages(PruneOptions(until: 3600))
        #expect(r.events.isEmpty)  // the dangling one is younger than an hour
        r = try await store.pruneImages()
        #expect(r.events == [.deleted(fresh.id)])
        #expect(r.reclaimedBytes > 0)
        #expect(Set(try await store.images(all: true).map(\.id)) == [ids.app, ids.base])
        // Label filter that matches nothing removes nothing, even with -a.
        #expect(try await store.pruneImages(PruneOptions(all: true, labels: [("stage", nil)])).events.isEmpty)
        // label! spares the images whose labels match: the one labelled image, which also
        // keeps its untagged parents.
        let labelled = try await store.commitImage(CommitPlan(
            parent: ids.app, container: nil, created: Date(), createdBy: "LABEL keep=1", author: nil, comment: nil,
            tag: try Reference("app:keep"), editConfig: { $0.addLabel("keep", "1") })).id
        let spared = try PruneOptions(all: true, filters: ["label!": ["keep=1"]])
        r = try await store.pruneImages(spared)
        let left = Set(try await store.images(all: true).map(\.id))
        #expect(!r.events.contains(.deleted(labelled)) && left == [labelled, ids.app, ids.base], "\(r.events)")
        _ = try await store.removeImage("app:keep")
        // -a: every image no container uses, tagged or not; the untagged parent follows its child.
        r = try await store.pruneImages(PruneOptions(all: true))
        #expect(r.events.contains(.deleted(ids.app)) && r.events.contains(.deleted(ids.base)))
        #expect(try await store.images(all: true).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.paths.blobsDir.path).isEmpty)
    }
}
