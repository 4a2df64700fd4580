import Foundation
import Testing
@testable import Strata
import GRDB

@Suite struct BlobStoreTests {
    @Test func streamDigesterMatchesSystemToolsForEveryCompression() throws {
        let dir = try TempDir()
        try bash("""
            cd "\(dir.path)"
            head -c 3000000 /dev/urandom > plain
            (cat plain; head -c 500000 /dev/zero) > data
            gzip -c data > data.gz
            zstd -q -c data > data.zst
            # two gzip members concatenated: still one stream (gzip -d agrees)
            head -c 1000000 data | gzip -c > multi.gz
            tail -c +1000001 data | gzip -c >> multi.gz
            """)
        let want = try sh(["sha256sum", dir.file("data").path]).stdout.prefix(64)
        let size = try FileManager.default.attributesOfItem(atPath: dir.file("data").path)[.size] as? Int ?? -1
        for (name, c) in [("data", Compression.none), ("data.gz", .gzip), ("data.zst", .zstd), ("multi.gz", .gzip)] {
            let d = StreamDigester()
            try FileReader(path: dir.file(name).path, what: name).forEachChunk(size: 77_777) { d.update($0) }
            let r = d.finish()
            #expect(r.compression == c, "\(name)")
            #expect(r.diffID.encoded == want, "\(name)")
            #expect(r.uncompressedSize == Int64(size), "\(name)")
            #expect(r.decodeError == nil, "\(name)")
            let raw = try sh(["sha256sum", dir.file(name).path]).stdout.prefix(64)
            #expect(r.digest.encoded == raw, "\(name)")
        }
    }

    @Test func truncatedAndCorruptCompressionIsReported() throws {
        let dir = try TempDir()
        try bash("""
            cd "\(dir.path)"
            head -c 200000 /dev/urandom | gzip -c > a.gz
            head -c 150000 a.gz > trunc.gz
            head -c 200000 /dev/urandom | zstd -q -c > a.zst
            head -c 150000 a.zst > trunc.zst
            cp a.gz bad.gz; printf 'XXXXXXXX' | dd of=bad.gz bs=1 seek=5000 conv=notrunc 2>/dev/null
            """)
        for name in ["trunc.gz", "trunc.zst", "bad.gz"] {
            let d = StreamDigester()
            try FileReader(path: dir.file(name).path, what: name).forEachChunk { d.update($0) }
            #expect(d.finish().decodeError != nil, "\(name) should not decode cleanly")
        }
    }

    @Test func ingestVerifiesAndIsIdempotent() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let data = Data("some bytes".utf8)
        for _ in 0..<2 {
            let s = try store.blobs.newSession()
            guard case .spooled(let f) = try s.spool(data) else { Issue.record("not spooled"); return }
            try s.commit(f, expected: Digest.sha256(data), expectedSize: Int64(data.count), name: "test")
            s.remove()
        }
        let path = store.paths.blob(Digest.sha256(data)).path
        #expect(FileManager.default.contents(atPath: path) == data)
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attrs[.posixPermissions] as? Int) == 0o444)
        // Ingest directories are cleaned up.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.paths.ingestDir.path).isEmpty)

        let s = try store.blobs.newSession()
        defer { s.remove() }
        guard case .spooled(let f) = try s.spool(Data("other".utf8)) else { return }
        let wrong = Digest.sha256(Data("not it".utf8))
        #expect {
            try s.commit(f, expected: wrong, expectedSize: 5, name: "layer x")
        } throws: { e in
            let e = e as? StrataError
            return e?.code == .digestMismatch && e!.message.contains(wrong.string) && e!.message.contains("layer x")
        }
        #expect {
            try s.commit(f, expected: nil, expectedSize: 6, name: "layer y")
        } throws: { ($0 as? StrataError)?.code == .sizeMismatch }
        #expect(!store.blobs.exists(Digest.sha256(Data("other".utf8))))
    }

    @Test func migrationsApplyOnceAndReopen() async throws {
        let dir = try TempDir()
        let a = try await dir.store()
        #expect(try await a.schemaVersion() == EmbeddedMigrations.all.map(\.version).max())
        let b = try await dir.store()
        #expect(try await b.schemaVersion() == EmbeddedMigrations.all.map(\.version).max())
        let tables = try await b.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        for t in ["blobs", "layers", "layer_blobs", "images", "image_layers", "history", "tags", "edges",
                  "containers", "build_cache", "leases", "lease_refs", "pending_unlinks"] {
            #expect(tables.contains(t), "table \(t)")
        }
    }
}
