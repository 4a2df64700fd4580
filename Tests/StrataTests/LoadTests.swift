import Foundation
import GRDB
import Testing
@testable import Strata

/// Everything observable about a store's contents, to prove a command changed nothing.
struct StoreSnapshot: Equatable {
    var rows: [String: [String]]
    var files: [String]

    static func take(_ store: Store) async throws -> StoreSnapshot {
        let rows = try await store.read { db -> [String: [String]] in
            var out: [String: [String]] = [:]
            for t in ["blobs", "layers", "layer_blobs", "images", "image_layers", "history", "tags", "edges", "pending_unlinks"] {
                out[t] = try Row.fetchAll(db, sql: "SELECT * FROM \(t)").map { $0.description }.sorted()
            }
            return out
        }
        let files = (FileManager.default.enumerator(atPath: store.root.path)?.allObjects as? [String] ?? [])
            .filter { !$0.hasPrefix("strata.db") && !$0.hasPrefix("locks") }.sorted()
        return StoreSnapshot(rows: rows, files: files)
    }
}

@Suite struct LoadTests {
    @Test func legacyDockerArchiveWithSymlinkedSharedLayer() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        let store = try await dir.store()
        let loaded = try await store.load(from: dir.file("legacy.tar"))
        #expect(Set(loaded.map(\.id)) == [ids.base, ids.app])
        #expect(loaded.first { $0.id == ids.app }?.tags == ["app:1", "app:latest"])
        // Shared base layer stored once: 2 layer blobs + 2 configs + 2 manifests.
        let counts = try await store.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM layer_blobs")!, try Int.fetchOne(db, sql: "SELECT count(*) FROM blobs")!)
        }
        #expect(counts.0 == 2)
        #expect(counts.1 == 6)
        // app's parent is base (its chain and history extend base's).
        let lineage = try await store.lineage(of: "app:1")
        #expect(lineage.map(\.id) == [ids.app, ids.base])
        let deps = try await store.dependents(of: "base:1")
        #expect(deps.map(\.id) == [ids.base, ids.app])
    }

    @Test func loadingTwiceChangesNothing() async throws {
        let dir = try TempDir()
        _ = try ArchiveFixtures.legacyDockerArchive(dir.file("legacy.tar").path, in: dir)
        _ = try ArchiveFixtures.multiPlatformArchive(dir.file("multi.tar").path, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: dir.file("legacy.tar"))
        _ = try await store.load(from: dir.file("multi.tar"))
        let before = try await StoreSnapshot.take(store)
        let mutations = try await store.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'mutations'") }
        _ = try await store.load(from: dir.file("legacy.tar"))
        _ = try await store.load(from: dir.file("multi.tar"))
        #expect(try await StoreSnapshot.take(store) == before)
        #expect(try await store.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'mutations'") } == mutations)
    }

    @Test func indexPlatformSelectionKeepsTheIndex() async throws {
        let dir = try TempDir()
        let m = try ArchiveFixtures.multiPlatformArchive(dir.file("multi.tar").path, in: dir)
        let store = try await dir.store()
        let arm = try await store.load(from: dir.file("multi.tar"), options: LoadOptions(platform: try Platform(parsing: "linux/arm64")))
        #expect(arm.map(\.id) == [m.arm64])
        #expect(arm.first?.tags == ["multi:1"])
        let details = try await store.inspect("multi:1")
        #expect(details.indexDigest == m.index)
        #expect(details.config.architecture == "arm64")
        let other = try await dir.store("other")
        let amd = try await other.load(from: dir.file("multi.tar"), options: LoadOptions(platform: try Platform(parsing: "linux/amd64")))
        #expect(amd.map(\.id) == [m.amd64])
        await #expect(throws: StrataError.self) {
            _ = try await other.load(from: dir.file("multi.tar"), options: LoadOptions(platform: try Platform(parsing: "linux/s390x")))
        }
    }

    @Test func compressedArchivesAsAWhole() async throws {
        let dir = try TempDir()
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("a.tar").path, in: dir)
        try sh(["cp", dir.file("a.tar").path, dir.file("b.tar").path])
        try sh(["gzip", "-f", dir.file("a.tar").path])
        try sh(["zstd", "-q", "-f", "--rm", dir.file("b.tar").path])
        for f in ["a.tar.gz", "b.tar.zst"] {
            let store = try await dir.store("s-\(f)")
            #expect(Set(try await store.load(from: dir.file(f)).map(\.id)) == [ids.base, ids.app])
        }
    }

    /// Hostile and broken inputs: one clear error, and the store exactly as it was.
    @Test func badInputLeavesTheStoreUnchanged() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "keep:1")
        let before = try await StoreSnapshot.take(store)

        let l = try ArchiveFixtures.layer("f", "x", in: dir)
        let c = try ArchiveFixtures.config(diffIDs: [.sha256(l)])
        let cd = Digest.sha256(c)
        func docker(_ manifest: String, extra: [(String, Data?)] = []) -> [(String, Data?)] {
            [("l.tar", l), ("c.json", c), ("manifest.json", Data(manifest.utf8))] + extra
        }
        let good = #"[{"Config":"c.json","RepoTags":["bad:1"],"Layers":["l.tar"]}]"#
        let wrongDiff = try ArchiveFixtures.config(diffIDs: [.sha256(Data("other".utf8))])
        var cases: [(String, [(String, Data?)], StrataError.Code)] = [
            ("dotdot.tar", docker(#"[{"Config":"../c.json","Layers":["l.tar"]}]"#), .unsafePath),
            ("absolute.tar", docker(#"[{"Config":"/etc/passwd","Layers":["l.tar"]}]"#), .unsafePath),
            ("escape-link.tar", docker(good, extra: [("x -> ../../../etc/passwd", nil)]) + [("manifest.json", Data(#"[{"Config":"x","Layers":["l.tar"]}]"#.utf8))], .unsafePath),
            ("member-dotdot.tar", [("../evil", Data("x".utf8))] + docker(good), .unsafePath),
            ("badjson.tar", docker("[{not json"), .invalidJSON),
            ("missing.tar", docker(#"[{"Config":"c.json","Layers":["nope.tar"]}]"#), .blobNotFound),
            ("badref.tar", docker(#"[{"Config":"c.json","RepoTags":["UPPER:case"],"Layers":["l.tar"]}]"#), .invalidReference),
            ("diffid.tar", [("l.tar", l), ("c.json", wrongDiff), ("manifest.json", Data(good.utf8))], .digestMismatch),
            ("nolayers.tar", docker(#"[{"Config":"c.json","Layers":[]}]"#), .digestMismatch),
            ("noformat.tar", [("hello.txt", Data("hi".utf8))], .unsupportedFormat),
        ]
        // OCI layouts: a digest mismatch, a size mismatch and an unknown media type.
        let m = try CanonicalJSON.encode(Manifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(c.count)),
                                                  layers: [Descriptor(mediaType: MediaType.ociLayer, digest: .sha256(l), size: Int64(l.count))]))
        func oci(_ manifest: Data, _ desc: Descriptor, blobs: [(String, Data?)]) throws -> [(String, Data?)] {
            [("oci-layout", Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8)),
             ("index.json", try CanonicalJSON.encode(Index(manifests: [desc])))] + blobs
        }
        let blobs: [(String, Data?)] = [("blobs/sha256/\(Digest.sha256(l).encoded)", l), ("blobs/sha256/\(cd.encoded)", c),
                                         ("blobs/sha256/\(Digest.sha256(m).encoded)", m)]
        cases.append(("oci-digest.tar", try oci(m, Descriptor(mediaType: MediaType.ociManifest, digest: .sha256(Data("zz".utf8)), size: Int64(m.count)),
                                                 blobs: blobs + [("blobs/sha256/\(Digest.sha256(Data("zz".utf8)).encoded)", m)]), .digestMismatch))
        cases.append(("oci-size.tar", try oci(m, Descriptor(mediaType: MediaType.ociManifest, digest: .sha256(m), size: 3), blobs: blobs), .sizeMismatch))
        let helm = try CanonicalJSON.encode(Manifest(config: Descriptor(mediaType: "application/vnd.cncf.helm.config.v1+json", digest: cd, size: Int64(c.count)), layers: []))
        cases.append(("oci-media.tar", try oci(helm, Descriptor(mediaType: MediaType.ociManifest, digest: .sha256(helm), size: Int64(helm.count)),
                                                blobs: blobs + [("blobs/sha256/\(Digest.sha256(helm).encoded)", helm)]), .unsupportedMediaType))

        for (name, members, code) in cases {
            let p = dir.file(name).path
            try ArchiveFixtures.tar(p, members)
            await #expect(Comment(rawValue: name)) {
                _ = try await store.load(from: URL(fileURLWithPath: p))
            } throws: { e in
                guard let e = e as? StrataError else { return false }
                if e.code != code { Issue.record("\(name): got \(e.code): \(e.message)") }
                return e.code == code && !e.message.contains("\n")
            }
            #expect(try await StoreSnapshot.take(store) == before, "\(name) changed the store")
        }

        // A truncated gzip-compressed archive and a corrupt gzip layer.
        try ArchiveFixtures.tar(dir.file("t.tar").path, docker(good), compress: "gzip")
        let gz = try Data(contentsOf: dir.file("t.tar.gz"))
        try gz.prefix(gz.count / 2).write(to: dir.file("trunc.tar.gz"))
        let lgz = dir.file("l.tar")
        try l.write(to: lgz)
        try sh(["gzip", "-n", "-f", lgz.path])
        var badLayer = try Data(contentsOf: dir.file("l.tar.gz"))
        badLayer = badLayer.prefix(badLayer.count - 12)
        try ArchiveFixtures.tar(dir.file("badgz.tar").path, [("l.tar", badLayer), ("c.json", c), ("manifest.json", Data(good.utf8))])
        for (f, code) in [("trunc.tar.gz", StrataError.Code.corruptData), ("badgz.tar", .corruptData)] {
            await #expect(throws: StrataError.self, "\(f)") { _ = try await store.load(from: dir.file(f)) }
            do { _ = try await store.load(from: dir.file(f)) } catch let e as StrataError { #expect(e.code == code, "\(f): \(e.message)") }
            #expect(try await StoreSnapshot.take(store) == before, "\(f) changed the store")
        }
        #expect(try await store.images().map(\.tags) == [["keep:1"]])
    }
}
