import Foundation
import GRDB
import Testing
@testable import Strata

/// `blobs.image_refs` and `layers.image_refs` (migration 0008's triggers) always equal a
/// recount from the rows, whatever wrote or deleted them, and fsck finds and repairs a
/// count that does not.
@Suite struct ReferenceCountTests {
    /// Blobs and chains whose stored count differs from a recount done here, independently
    /// of fsck's query.
    static func wrongCounts(_ store: Store) async throws -> [String] {
        try await store.read { db in
            var wrong: [String] = []
            var recount: [String: Int] = [:]
            for d in try String.fetchAll(db, sql: "SELECT id FROM images") { recount[d, default: 0] += 1 }
            for d in try String.fetchAll(db, sql: "SELECT manifest_digest FROM images") { recount[d, default: 0] += 1 }
            for d in try String.fetchAll(db, sql: "SELECT index_digest FROM images WHERE index_digest IS NOT NULL") { recount[d, default: 0] += 1 }
            for d in try String.fetchAll(db, sql: "SELECT blob_digest FROM image_layers") { recount[d, default: 0] += 1 }
            for r in try Row.fetchAll(db, sql: "SELECT digest, image_refs FROM blobs") where (r[1] as Int) != recount[r[0] as String, default: 0] {
                wrong.append("blob \(r[0] as String): \(r[1] as Int) stored, \(recount[r[0] as String, default: 0]) counted")
            }
            var uses: [String: Int] = [:]
            for c in try String.fetchAll(db, sql: "SELECT chain_id FROM image_layers") { uses[c, default: 0] += 1 }
            for r in try Row.fetchAll(db, sql: "SELECT chain_id, image_refs FROM layers") where (r[1] as Int) != uses[r[0] as String, default: 0] {
                wrong.append("chain \(r[0] as String): \(r[1] as Int) stored, \(uses[r[0] as String, default: 0]) counted")
            }
            return wrong
        }
    }

    /// Every declared graph of GCTests and LivenessTests, before and after its command, and
    /// after gc: inserts, cascaded deletes, untagging and index re-parenting all keep the counts.
    @Test func countsFollowEveryCommand() async throws {
        for c in LivenessTests.cases {
            let dir = try TempDir()
            let store = try await dir.store()
            try await GCTests.build(c.graph, in: store)
            #expect(try await Self.wrongCounts(store) == [], "\(c): after building")
            // The counts are not trivially zero: every image names its manifest.
            let named = try await store.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM blobs WHERE digest IN (SELECT manifest_digest FROM images) AND image_refs > 0")
            }
            #expect(named == c.graph.images.count, "\(c)")
            // The counts are checked between system prune's prunes and its gc too.
            try await c.command.run(on: store, gc: false)
            #expect(try await Self.wrongCounts(store) == [], "\(c): after the command")
            _ = try await store.collectGarbage(GCOptions(grace: 0))
            #expect(try await Self.wrongCounts(store) == [], "\(c): after gc")
        }
        for c in GCTests.cases {
            let dir = try TempDir()
            let store = try await dir.store()
            try await GCTests.build(c, in: store)
            #expect(try await Self.wrongCounts(store) == [], "\(c.description): after building")
            _ = try await store.collectGarbage(GCOptions(grace: 0))
            #expect(try await Self.wrongCounts(store) == [], "\(c.description): after gc")
        }
    }

    /// Real archives through load (a layer two images share; an index whose platforms are
    /// stored as one image each), rmi and gc.
    @Test func countsFollowLoadAndRemove() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let legacy = dir.file("legacy.tar"), multi = dir.file("multi.tar")
        let (base, _) = try ArchiveFixtures.legacyDockerArchive(legacy.path, in: dir)
        let (_, _, index) = try ArchiveFixtures.multiPlatformArchive(multi.path, in: dir)
        _ = try await store.load(from: legacy)
        _ = try await store.load(from: multi)
        #expect(try await Self.wrongCounts(store) == [])
        let (shared, indexRefs) = try await store.read { db in
            (try Int.fetchOne(db, sql: """
                SELECT b.image_refs FROM blobs b JOIN image_layers il ON il.blob_digest = b.digest
                WHERE il.image_id = ? AND il.position = 0
                """, arguments: [base.string]),
             try Int.fetchOne(db, sql: "SELECT image_refs FROM blobs WHERE digest = ?", arguments: [index.string]))
        }
        #expect(shared == 2, "base:1 and app:1 both name the base layer")
        #expect((indexRefs ?? 0) >= 1, "the index is named by the image it was loaded for")
        for ref in ["app:1", "app:latest", "multi:1"] {
            _ = try await store.removeImage(ref, force: false)
            #expect(try await Self.wrongCounts(store) == [], "after rmi \(ref)")
        }
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await Self.wrongCounts(store) == [])
        let unreferenced = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM blobs WHERE image_refs = 0") }
        #expect(unreferenced == 0, "gc removed every blob no image names")
    }

    /// fsck reports a count that disagrees with the rows (code `refcount`), --repair sets it,
    /// and df reads the repaired count.
    @Test func fsckRepairsAWrongCount() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        try await GCTests.build(GCTests.cases[0], in: store)
        let victim = GCCase.d("b1")
        try await store.db.write { db in
            try db.execute(sql: "UPDATE blobs SET image_refs = 0 WHERE digest = ?", arguments: [victim])
            try db.execute(sql: "UPDATE layers SET image_refs = 9 WHERE chain_id = ?", arguments: [GCCase.d("c1")])
        }
        let found = try await store.check(quick: true).problems.filter { $0.kind == "refcount" }
        #expect(Set(found.map(\.subject)) == [victim, GCCase.d("c1")])
        #expect(found.allSatisfy { $0.repaired == nil })
        let repaired = try await store.check(quick: true, repair: true).problems.filter { $0.kind == "refcount" }
        #expect(repaired.count == 2 && repaired.allSatisfy { $0.repaired != nil })
        #expect(try await Self.wrongCounts(store) == [])
        #expect(try await store.check(quick: true).clean)
    }
}
