import Foundation
import GRDB
import Testing
@testable import OCI
@testable import Strata
import TestSupport

/// `Store.images` merges five scans read on SQLite's C API. These tests hold it to the plain
/// meaning of a listing, computed here the slow, obvious way (a query per image, names parsed
/// by `Reference`), on seeded random stores with the cases the merge can get wrong: several
/// tags and repo digests per image, names Docker shortens (`docker.io/library/…`) and names it
/// does not, parents, containers, equal and missing creation times, labels, and rows whose
/// labels were never filled.
@Suite struct ImageListingTests {
    static let repositories = [
        "docker.io/library/busybox", "docker.io/library/alpine", "docker.io/library/a/b", "docker.io/user/app",
        "127.0.0.1:5000/team/app", "ghcr.io/o/r", "localhost/x", "quay.io/q/z9",
    ]

    /// Fills a store with `count` images through SQL, as a load would leave the rows.
    static func populate(_ store: Store, seed: UInt64, count: Int) async throws -> [String] {
        var rng = SplitMix(seed: seed)
        var ids: [String] = []
        var rows: [(id: String, created: Int64?, size: Int64, parent: String?, labels: String?)] = []
        for k in 0..<count {
            let id = Digest.sha256(Data("image \(seed) \(k)".utf8)).string
            let created: Int64? = rng.chance(10) ? nil : Int64(1_600_000_000 + rng.below(8) * 3600)  // many ties
            let parent = !ids.isEmpty && rng.chance(30) ? ids[rng.below(ids.count)] : nil
            let labels: String? = rng.chance(5) ? nil : (rng.chance(25) ? "{\"k\":\"v\(rng.below(3))\"}" : "{}")
            rows.append((id, created, Int64(rng.below(5_000_000)), parent, labels))
            ids.append(id)
        }
        var tags: [(String, String)] = []
        var digests: [(String, String, String)] = []
        var containers: [(String, String)] = []
        var usedNames = Set<String>()
        for (k, id) in ids.enumerated() {
            for _ in 0..<[0, 0, 1, 1, 1, 2, 3][rng.below(7)] {
                let name = "\(repositories[rng.below(repositories.count)]):t\(rng.below(40))"
                if usedNames.insert(name).inserted { tags.append((name, id)) }
            }
            if rng.chance(20) {
                let repo = repositories[rng.below(repositories.count)]
                digests.append((repo, Digest.sha256(Data("manifest \(seed) \(k)".utf8)).string, id))
            }
            for c in 0..<(rng.chance(15) ? 1 + rng.below(2) : 0) { containers.append(("c-\(seed)-\(k)-\(c)", id)) }
        }
        try await store.write { [rows, tags, digests, containers] db in
            for r in rows {
                try db.execute(sql: "INSERT INTO blobs(digest, size, media_type, created_at) VALUES (?, 1, 'x', 1)", arguments: [r.id])
            }
            for r in rows {
                try db.execute(sql: """
                    INSERT INTO images(id, config_digest, manifest_digest, parent_id, layer_count, history_count, created, size, added_at, labels)
                    VALUES (?, ?, ?, ?, 1, 1, ?, ?, 1, ?)
                    """, arguments: [r.id, r.id, r.id, r.parent, r.created, r.size, r.labels])
            }
            for (name, id) in tags { try db.execute(sql: "INSERT INTO tags(name, image_id, created_at) VALUES (?, ?, 1)", arguments: [name, id]) }
            for (name, digest, id) in digests {
                try db.execute(sql: "INSERT OR IGNORE INTO repo_digests(name, digest, image_id) VALUES (?, ?, ?)", arguments: [name, digest, id])
            }
            for (cid, id) in containers {
                try db.execute(sql: "INSERT INTO containers(id, name, image_id, state, created_at) VALUES (?, ?, ?, 'created', 1)", arguments: [cid, cid, id])
            }
        }
        return ids
    }

    /// The listing computed the obvious way: a query per image and per relation.
    static func expected(_ store: Store, all: Bool, filters: ImageFilters) async throws -> [ImageSummary] {
        try await store.read { db in
            var out: [ImageSummary] = []
            let pivot: (String) throws -> Int64 = { ref in
                let id = try Store.resolve(ref, db: db).string
                return try Int64.fetchOne(db, sql: "SELECT coalesce(created, 0) FROM images WHERE id = ?", arguments: [id]) ?? 0
            }
            let before = try filters.before.map(pivot), since = try filters.since.map(pivot)
            for row in try Row.fetchAll(db, sql: "SELECT id, parent_id, created, size, layer_count, labels FROM images") {
                let id: String = row["id"]
                let created: Int64? = row["created"]
                if let before, (created ?? 0) >= before { continue }
                if let since, (created ?? 0) <= since { continue }
                let tags = try String.fetchAll(db, sql: "SELECT name FROM tags WHERE image_id = ?", arguments: [id])
                    .map { try Reference($0).familiar }.sorted()
                let digests = try Row.fetchAll(db, sql: "SELECT name, digest FROM repo_digests WHERE image_id = ?", arguments: [id])
                    .map { r -> String in
                        let name: String = r["name"], digest: String = r["digest"]
                        return try Reference(name, defaultTag: false).familiar + "@" + digest
                    }.sorted()
                let children = try Int.fetchOne(db, sql: "SELECT count(*) FROM images WHERE parent_id = ?", arguments: [id]) ?? 0
                let containers = try Int.fetchOne(db, sql: "SELECT count(*) FROM containers WHERE image_id = ?", arguments: [id]) ?? 0
                let labelsText: String? = row["labels"]
                let labels = try labelsText.map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
                let parent: String? = row["parent_id"]
                var summary = ImageSummary(
                    id: try Digest(id), tags: tags, repoDigests: digests, parentID: try parent.map { try Digest($0) },
                    created: created.map { Date(timeIntervalSince1970: Double($0)) }, size: row["size"], layerCount: row["layer_count"],
                    children: children, containers: containers, labels: labels)
                // Docker's rules (moby's image list), with C's fnmatch for Go's path.Match.
                if !filters.references.isEmpty {
                    func matches(_ ref: String, name: String) -> Bool {
                        filters.references.contains { fnmatch($0, ref, FNM_PATHNAME) == 0 || fnmatch($0, name, FNM_PATHNAME) == 0 }
                    }
                    summary.tags = summary.tags.filter { matches($0, name: String($0[..<($0.lastIndex(of: ":") ?? $0.endIndex)])) }
                    summary.repoDigests = summary.repoDigests.filter { matches($0, name: String($0[..<($0.firstIndex(of: "@") ?? $0.endIndex)])) }
                }
                // dangling=true: moby starts from the store's heads (images nothing is built
                // on), with or without all.
                if filters.dangling == true && children > 0 { continue }
                if summary.tags.isEmpty && summary.repoDigests.isEmpty {
                    if !all && children > 0 { continue }
                    if filters.dangling == false || !filters.references.isEmpty { continue }
                } else if filters.dangling == true && !summary.tags.isEmpty {
                    continue
                }
                if !filters.labels.isEmpty, !filters.matchesLabels(labels) { continue }
                out.append(summary)
            }
            // Newest first (no time counts as 0), then by ID.
            return out.sorted { a, b in
                let ta = a.created?.timeIntervalSince1970 ?? 0, tb = b.created?.timeIntervalSince1970 ?? 0
                return ta != tb ? ta > tb : a.id.string < b.id.string
            }
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func listingMatchesThePlainMeaning(seed: UInt64) async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let ids = try await Self.populate(store, seed: seed, count: 160)
        let cases: [(Bool, ImageFilters)] = [
            (false, ImageFilters()), (true, ImageFilters()),
            (false, ImageFilters(dangling: true)), (false, ImageFilters(dangling: false)),
            (false, ImageFilters(references: ["busybox*"])), (true, ImageFilters(references: ["127.0.0.1:5000/*/*", "library/a/b"])),
            (false, ImageFilters(references: ["*/app", "[a-l]*:t1?"])), (true, ImageFilters(dangling: true)),
            (true, ImageFilters(dangling: false, references: ["*"])),
            (false, ImageFilters(labels: ["k"])), (true, ImageFilters(labels: ["k=v1"])),
            (true, ImageFilters(before: ids[80])), (false, ImageFilters(since: ids[3])),
        ]
        for (k, (all, filters)) in cases.enumerated() {
            let got = try await store.images(all: all, filters: filters)
            let want = try await Self.expected(store, all: all, filters: filters)
            #expect(got.map(\.id) == want.map(\.id), "seed \(seed), case \(k): order or membership")
            if let bad = zip(got, want).first(where: { $0 != $1 }) {
                Issue.record("seed \(seed), case \(k): got \(bad.0), expected \(bad.1)")
            }
        }
    }

    /// The listing reads one covering index (migration 0009), never the wide image rows:
    /// adding a column to the query without adding it to the index would quietly double the
    /// listing's time at 10,000 images.
    @Test func listingQueryIsCovered() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let plan = try await store.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + Store.imageListingSQL + " ORDER BY id").map { $0["detail"] as String }
        }
        #expect(plan == ["SCAN images USING COVERING INDEX images_listing"], "\(plan)")
    }
}
