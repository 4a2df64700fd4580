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

/// An OCI layout built by hand: blobs by digest, an index.json, written as a directory or a tar.
struct HandLayout {
    var blobs: [Digest: Data] = [:]
    var index: [Descriptor] = []

    @discardableResult
    mutating func add(_ data: Data) -> Digest {
        let d = Digest.sha256(data)
        blobs[d] = data
        return d
    }

    /// A gzip layer holding one file; returns (compressed bytes, diffID).
    static func gzipLayer(_ name: String, _ content: String, in dir: TempDir) throws -> (Data, Digest) {
        let l = try ArchiveFixtures.layer(name, content, in: dir)
        let p = dir.file("gz-\(UUID().uuidString.prefix(8)).tar")
        try l.write(to: p)
        try sh(["gzip", "-n", "-f", p.path])
        return (try Data(contentsOf: URL(fileURLWithPath: p.path + ".gz")), .sha256(l))
    }

    /// Adds a manifest for `layers` (descriptor, bytes or nil to leave the blob out) and a
    /// config over their diffIDs; returns the manifest's descriptor.
    mutating func image(layers: [(Descriptor, Data?)], diffIDs: [Digest], configType: String = MediaType.ociConfig,
                        arch: String = Platform.host.architecture, mediaType: String = MediaType.ociManifest) throws -> Descriptor {
        let c = try ArchiveFixtures.config(diffIDs: diffIDs, arch: arch)
        let cd = add(c)
        for (d, data) in layers { if let data { blobs[d.digest] = data } }
        let m = try CanonicalJSON.encode(Manifest(mediaType: mediaType, config: Descriptor(mediaType: configType, digest: cd, size: Int64(c.count)),
                                                  layers: layers.map(\.0)))
        return Descriptor(mediaType: mediaType, digest: add(m), size: Int64(m.count))
    }

    mutating func index(_ entries: [Descriptor]) throws -> Descriptor {
        let data = try CanonicalJSON.encode(Index(manifests: entries))
        return Descriptor(mediaType: MediaType.ociIndex, digest: add(data), size: Int64(data.count))
    }

    func members() throws -> [(String, Data?)] {
        [("oci-layout", Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8)), ("index.json", try CanonicalJSON.encode(Index(manifests: index)))]
            + blobs.sorted { $0.key.string < $1.key.string }.map { ("blobs/sha256/\($0.key.encoded)", $0.value) }
    }

    func writeDirectory(_ path: String) throws {
        for (name, data) in try members() {
            let p = URL(fileURLWithPath: path).appendingPathComponent(name)
            try FileManager.default.createDirectory(at: p.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data!.write(to: p)
        }
    }

    func writeTar(_ path: String) throws { try ArchiveFixtures.tar(path, try members()) }
}

/// Media types strata does not know are refused, naming the type and the digest, with the
/// store left as it was; non-distributable (foreign) layers are layers like any other.
@Suite struct MediaTypeLoadTests {
    /// Loads `layout` as a directory and as a tar into `store`; both must fail with `code`
    /// and a message containing every needle, and change nothing.
    static func expectRefused(_ layout: HandLayout, _ store: Store, in dir: TempDir, _ code: StrataError.Code, _ needles: [String],
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = try await StoreSnapshot.take(store)
        let name = "l-\(UUID().uuidString.prefix(8))"
        try layout.writeDirectory(dir.file(name).path)
        try layout.writeTar(dir.file(name + ".tar").path)
        for input in [dir.file(name), dir.file(name + ".tar")] {
            do {
                _ = try await store.load(from: input)
                Issue.record("\(input.lastPathComponent) loaded", sourceLocation: sourceLocation)
            } catch let e as StrataError {
                #expect(e.code == code, "\(e.code): \(e.message)", sourceLocation: sourceLocation)
                for n in needles { #expect(e.message.contains(n), "\(e.message) lacks \(n)", sourceLocation: sourceLocation) }
                #expect(!e.message.contains("\n"), sourceLocation: sourceLocation)
            }
            #expect(try await StoreSnapshot.take(store) == before, "\(input.lastPathComponent) changed the store", sourceLocation: sourceLocation)
        }
    }

    static func storeWithAnImage(_ dir: TempDir) async throws -> Store {
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "keep:1")
        return store
    }

    @Test func unknownLayerMediaType() async throws {
        let dir = try TempDir()
        let store = try await Self.storeWithAnImage(dir)
        let (good, goodDiff) = try HandLayout.gzipLayer("a", "a", in: dir)
        let (odd, oddDiff) = try HandLayout.gzipLayer("b", "b", in: dir)
        var layout = HandLayout()
        let unknown = Descriptor(mediaType: "application/vnd.example.unknown", digest: .sha256(odd), size: Int64(odd.count))
        layout.index = [try layout.image(layers: [(Descriptor(mediaType: MediaType.ociLayerGzip, digest: .sha256(good), size: Int64(good.count)), good),
                                                   (unknown, odd)], diffIDs: [goodDiff, oddDiff])]
        try await Self.expectRefused(layout, store, in: dir, .unsupportedMediaType,
                                     ["\"application/vnd.example.unknown\"", Digest.sha256(odd).string, layout.index[0].digest.string])
        // A media type with a newline is quoted on one line.
        var nl = HandLayout()
        nl.index = [try nl.image(layers: [(Descriptor(mediaType: "text/x\nevil", digest: .sha256(odd), size: Int64(odd.count)), odd)], diffIDs: [oddDiff])]
        try await Self.expectRefused(nl, store, in: dir, .unsupportedMediaType, ["\"text/x\\nevil\""])
    }

    @Test func unknownConfigMediaType() async throws {
        let dir = try TempDir()
        let store = try await Self.storeWithAnImage(dir)
        let (l, diff) = try HandLayout.gzipLayer("a", "a", in: dir)
        var layout = HandLayout()
        layout.index = [try layout.image(layers: [(Descriptor(mediaType: MediaType.ociLayerGzip, digest: .sha256(l), size: Int64(l.count)), l)],
                                         diffIDs: [diff], configType: "application/vnd.example.config.v1+json")]
        let configDigest = layout.blobs.first { $0.value.count < 2000 && String(decoding: $0.value, as: UTF8.self).contains("rootfs") }!.key
        try await Self.expectRefused(layout, store, in: dir, .unsupportedMediaType,
                                     ["config media type \"application/vnd.example.config.v1+json\"", configDigest.string])
    }

    /// index.json entries of an unknown type are ignored (the OCI image-index spec), unless
    /// nothing else is there; an unknown manifest type named by the manifest is refused.
    @Test func unknownManifestMediaTypes() async throws {
        let dir = try TempDir()
        let store = try await Self.storeWithAnImage(dir)
        let (l, diff) = try HandLayout.gzipLayer("a", "a", in: dir)
        let layer = (Descriptor(mediaType: MediaType.ociLayerGzip, digest: .sha256(l), size: Int64(l.count)), Optional(l))
        var layout = HandLayout()
        var m = try layout.image(layers: [layer], diffIDs: [diff])
        m.mediaType = "application/vnd.example.manifest.v9+json"
        layout.index = [m]
        try await Self.expectRefused(layout, store, in: dir, .unsupportedMediaType, ["\"application/vnd.example.manifest.v9+json\"", m.digest.string])
        // Next to an image, the unknown entry is ignored.
        var both = layout
        let good = try both.image(layers: [layer], diffIDs: [diff], arch: "s390x")
        both.index = [m, good]
        try both.writeDirectory(dir.file("both").path)
        let loaded = try await store.load(from: dir.file("both"))
        #expect(loaded.count == 1)
        #expect(try await store.inspect(loaded[0].id.string).manifestDigest == good.digest)
        // The manifest itself claims a type strata does not know (Docker schema 1).
        var v1 = HandLayout()
        let body = Data(#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","fsLayers":[]}"#.utf8)
        v1.index = [Descriptor(mediaType: "", digest: v1.add(body), size: Int64(body.count))]
        try await Self.expectRefused(v1, store, in: dir, .unsupportedMediaType, ["\"application/vnd.docker.distribution.manifest.v1+prettyjws\""])
    }

    /// An image index: the host's entry has an unknown media type → refused, naming it; other
    /// platforms still load; attestation manifests and unknown entries are never images.
    @Test func indexEntryOfUnknownType() async throws {
        let dir = try TempDir()
        let store = try await Self.storeWithAnImage(dir)
        let host = Platform.host
        let other = host.architecture == "arm64" ? "amd64" : "arm64"
        let (l, diff) = try HandLayout.gzipLayer("a", "a", in: dir)
        let layer = (Descriptor(mediaType: MediaType.ociLayerGzip, digest: .sha256(l), size: Int64(l.count)), Optional(l))
        var layout = HandLayout()
        var hostEntry = try layout.image(layers: [layer], diffIDs: [diff], arch: host.architecture)
        hostEntry.mediaType = "application/vnd.example.manifest.v9+json"
        hostEntry.platform = host
        var otherEntry = try layout.image(layers: [layer], diffIDs: [diff], arch: other)
        otherEntry.platform = Platform(os: "linux", architecture: other, variant: other == "arm64" ? "v8" : nil)
        // A BuildKit-style attestation manifest: a known manifest type, an unknown layer type.
        let (att, _) = try HandLayout.gzipLayer("att", "{}", in: dir)
        var attestation = try layout.image(layers: [(Descriptor(mediaType: "application/vnd.in-toto+json", digest: .sha256(att), size: Int64(att.count)), att)],
                                           diffIDs: [], arch: "unknown")
        attestation.platform = Platform(os: "unknown", architecture: "unknown")
        attestation.annotations = [Index.referenceTypeAnnotation: "attestation-manifest", "vnd.docker.reference.digest": otherEntry.digest.string]
        let idx = try layout.index([hostEntry, otherEntry, attestation])
        layout.index = [idx]
        try await Self.expectRefused(layout, store, in: dir, .unsupportedMediaType,
                                     ["\"application/vnd.example.manifest.v9+json\"", hostEntry.digest.string, idx.digest.string])
        try layout.writeDirectory(dir.file("idx").path)
        let picked = try await store.load(from: dir.file("idx"), options: LoadOptions(platform: otherEntry.platform))
        #expect(picked.count == 1)
        #expect(try await store.inspect(picked[0].id.string).config.architecture == other)
        // All platforms: the images there are, without the attestation or the unknown entry.
        let all = try await dir.store("all")
        let every = try await all.load(from: dir.file("idx"), options: LoadOptions(platform: otherEntry.platform, allPlatforms: true))
        #expect(every.map(\.id) == picked.map(\.id))
    }

    /// A non-distributable layer whose blob is in the layout loads like any other layer and
    /// is saved back with its media type and urls; one whose blob is absent is refused,
    /// naming it and its urls (load has no network to fetch it with).
    @Test(arguments: [MediaType.ociLayerNondistributableGzip, MediaType.dockerForeignLayerGzip])
    func foreignLayers(_ type: String) async throws {
        let dir = try TempDir()
        let store = try await Self.storeWithAnImage(dir)
        let (base, baseDiff) = try HandLayout.gzipLayer("base", "from the vendor", in: dir)
        let (app, appDiff) = try HandLayout.gzipLayer("app", "app", in: dir)
        var foreign = Descriptor(mediaType: type, digest: .sha256(base), size: Int64(base.count))
        foreign.urls = ["https://vendor.example/layers/\(Digest.sha256(base).encoded)"]
        let appLayer = Descriptor(mediaType: type == MediaType.dockerForeignLayerGzip ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
                                  digest: .sha256(app), size: Int64(app.count))
        let manifestType = type == MediaType.dockerForeignLayerGzip ? MediaType.dockerManifest : MediaType.ociManifest
        let configType = type == MediaType.dockerForeignLayerGzip ? MediaType.dockerConfig : MediaType.ociConfig

        var missing = HandLayout()
        missing.index = [try missing.image(layers: [(foreign, nil), (appLayer, app)], diffIDs: [baseDiff, appDiff],
                                           configType: configType, mediaType: manifestType)]
        try await Self.expectRefused(missing, store, in: dir, .blobNotFound,
                                     ["non-distributable layer \(foreign.digest)", "https://vendor.example/layers/"])

        var present = HandLayout()
        var entry = try present.image(layers: [(foreign, base), (appLayer, app)], diffIDs: [baseDiff, appDiff],
                                      configType: configType, mediaType: manifestType)
        entry.annotations = [AnnotationKey.refName: "vendor.example/app:1"]
        present.index = [entry]
        try present.writeDirectory(dir.file("present").path)
        let loaded = try await store.load(from: dir.file("present"))
        #expect(loaded.map(\.tags) == [["vendor.example/app:1"]])
        let layers = try await store.layers(of: "vendor.example/app:1")
        #expect(layers.map(\.diffID) == [baseDiff, appDiff])
        #expect(layers.first?.blobs.first?.mediaType == type)
        // Saved back: the same manifest bytes (media type and urls kept) and the layer's blob.
        try await store.save(["vendor.example/app:1"], to: dir.file("saved"), format: .ociDirectory)
        let saved = dir.file("saved/blobs/sha256")
        #expect(try Data(contentsOf: saved.appendingPathComponent(entry.digest.encoded)) == present.blobs[entry.digest])
        #expect(try Data(contentsOf: saved.appendingPathComponent(foreign.digest.encoded)) == base)
        let other = try await dir.store("other")
        #expect(try await other.load(from: dir.file("saved")).map(\.id) == loaded.map(\.id))
        #expect(try await other.layers(of: loaded[0].id.string).first?.blobs.first?.mediaType == type)
    }
}
