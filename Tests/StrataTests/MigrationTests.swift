import Foundation
import GRDB
import Testing
@testable import Strata

/// Every earlier schema version upgrades to the current one with its data intact.
@Suite struct MigrationTests {
    @Test(arguments: EmbeddedMigrations.all.dropLast().map(\.name))
    func upgradesFrom(_ version: String) async throws {
        let dir = try TempDir()
        let root = dir.file("store")
        try StorePaths(root: root).createLayout()
        // Build a store at `version` and put an image in it with that schema's columns.
        do {
            let pool = try DatabasePool(path: root.appendingPathComponent("strata.db").path)
            try Schema.migrator.migrate(pool, upTo: version)
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO blobs(digest, size, media_type, created_at) VALUES ('sha256:' || hex(zeroblob(32)), 2, 'x', 1)")
                try db.execute(sql: """
                    INSERT INTO images(id, config_digest, manifest_digest, layer_count, history_count, size, added_at)
                    VALUES ('sha256:' || hex(zeroblob(32)), 'sha256:' || hex(zeroblob(32)), 'sha256:' || hex(zeroblob(32)), 0, 0, 0, 1)
                    """)
                try db.execute(sql: "INSERT INTO tags VALUES ('docker.io/library/old:1', 'sha256:' || hex(zeroblob(32)), 1)")
                if version >= "0004" { try db.execute(sql: "INSERT INTO volumes(name, created_at) VALUES ('old', 1)") }
            }
        }
        let store = try await Store.open(at: root)
        #expect(try await store.schemaVersion() == EmbeddedMigrations.all.map(\.version).max())
        let tags = try await store.read { db in try String.fetchAll(db, sql: "SELECT name FROM tags") }
        #expect(tags == ["docker.io/library/old:1"])
        let fk = try await store.read { db in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count }
        #expect(fk == 0)
        // The newest tables exist and work.
        let sources = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM blob_sources") }
        #expect(sources == 0)
        // 0008's counts are computed for the rows already there: the image names its one
        // blob as its ID and as its manifest.
        if version < "0008" {
            let refs = try await store.read { db in try Int.fetchOne(db, sql: "SELECT image_refs FROM blobs") }
            #expect(refs == 2)
        }
        #expect(try await store.check(quick: true).problems.filter { $0.kind == "refcount" }.isEmpty)
        // 0009's covering index serves the listing of an upgraded store too, and lists the image.
        let plan = try await store.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + Store.imageListingSQL + " ORDER BY id").map { $0["detail"] as String }
        }
        #expect(plan == ["SCAN images USING COVERING INDEX images_listing"])
        #expect(try await store.images(all: true).map(\.id.string) == ["sha256:" + String(repeating: "0", count: 64)])
        // The events go on after the upgrade (0011 rebuilt their table): a tag records one,
        // numbered after the one the old tag recorded (from 0010 on).
        try await store.tag("old:1", as: "new:1")
        let seqs = try await store.read { db in try Int.fetchAll(db, sql: "SELECT seq FROM events WHERE type = 'image' AND action = 'tag' ORDER BY seq") }
        // (From 0010 the old volume's create took number 2.)
        #expect(seqs == (version >= "0010" ? [1, 3] : [1]), "\(seqs)")
        // 0012's labels: a volume from before has none, and is named, not anonymous.
        if version >= "0004" {
            let old = try await store.volume("old")
            #expect(old.labels.isEmpty && !old.isAnonymous)
            try FileManager.default.createDirectory(atPath: old.mountpoint, withIntermediateDirectories: true)
        }
        #expect(try await store.createVolume("new", labels: ["k": "v"]).labels == ["k": "v"])
        _ = try await store.collectGarbage(GCOptions(dryRun: true))
    }

    @Test func migrationsAreNumberedWithoutGaps() {
        let versions = EmbeddedMigrations.all.map(\.version)
        #expect(versions == Array(1...versions.count))
    }
}
