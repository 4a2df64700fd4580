import Foundation
import GRDB
import Testing
@testable import Strata

/// The layer file index: what the load pass records, against python's tarfile as the reader
/// of the same bytes; once per diffID; removed by gc; built for stores older than it.
@Suite struct IndexTests {
    /// Every entry of a tar as python's tarfile reads it: cleaned path, type, mode, owner,
    /// size, link target, and the XXH3-128 of a regular file's bytes as `xxh128sum` (the
    /// xxhash package's own tool) prints it.
    static func pythonListing(_ tar: String) throws -> [String: [String: String]] {
        let out = try sh(["python3", "-c", """
            import json, os, posixpath, subprocess, sys, tarfile, tempfile
            types = {tarfile.REGTYPE: "f", tarfile.AREGTYPE: "f", tarfile.CONTTYPE: "f", tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l",
                     tarfile.LNKTYPE: "h", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p"}
            out = {}; files = {}
            tmp = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(sys.argv[1])))
            with tarfile.open(sys.argv[1]) as t:
                for m in t:
                    p = posixpath.normpath(m.name).lstrip("/")
                    if p in (".", ""): continue
                    e = {"kind": types.get(m.type, "o"), "mode": oct(m.mode & 0o7777), "uid": str(m.uid), "gid": str(m.gid),
                         "size": str(m.size), "link": m.linkname if m.type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""}
                    if e["kind"] == "f":
                        f = os.path.join(tmp, str(len(files)))
                        with open(f, "wb") as o: o.write(t.extractfile(m).read())
                        files[f] = p
                    out[p] = e
            if files:
                r = subprocess.run(["xxh128sum", "--"] + list(files), check=True, capture_output=True, text=True)
                for line in r.stdout.splitlines():
                    h, f = line.split("  ", 1)
                    out[files[f]]["digest"] = "xxh128:" + h
            print(json.dumps(out))
            """, tar])
        return try JSONDecoder().decode([String: [String: String]].self, from: Data(out.stdout.utf8))
    }

    static func ours(_ entries: [LayerEntry]) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for e in entries {
            var d = ["kind": e.kind.rawValue, "mode": "0o" + String(e.mode, radix: 8), "uid": String(e.uid), "gid": String(e.gid),
                     "size": String(e.size), "link": e.linkTarget ?? ""]
            if e.kind == .file { d["digest"] = e.digest?.string ?? "none" }
            out[e.path] = d
        }
        return out
    }

    static func index(_ path: String) throws -> (DigestResult, [LayerEntry]) {
        let spool = path + ".spool-\(UUID().uuidString.prefix(6))"
        defer { unlink(spool) }
        let d = StreamDigester(indexTo: spool)
        try FileReader(path: path, what: path).forEachChunk(size: 777) { d.update($0) }  // odd chunks cross headers
        let r = d.finish()
        var entries: [LayerEntry] = []
        if let spool = r.index { try LayerIndexSpoolReader(spool).forEach { entries.append($0) } }
        return (r, entries)
    }

    static let longDir = String(repeating: "d", count: 90)
    static let script = """
        mkdir -p etc "\(longDir)/\(String(repeating: "e", count: 40))" bin
        echo hello > etc/a.conf; chmod 640 etc/a.conf; chown 12:34 etc/a.conf
        head -c 70000 /dev/urandom > "\(longDir)/\(String(repeating: "e", count: 40))/\(String(repeating: "f", count: 60))"
        ln -s "../\(longDir)/\(String(repeating: "e", count: 40))/\(String(repeating: "f", count: 60))" bin/longlink
        ln etc/a.conf etc/hard; mkfifo bin/fifo; : > etc/.wh.gone; mkdir opq; : > opq/.wh..wh..opq
        echo ü > "etc/ünïcode"; : > empty; chmod 4755 empty
        head -c 600000 /dev/urandom > big.bin; echo after > zz-after-big; mkdir zz-dir; ln -s big.bin zz-dir/link
        """

    @Test(arguments: ["gnu", "pax", "ustar"])
    func indexMatchesPythonTarfile(_ format: String) throws {
        guard Peer.require("xxh128sum") else { return }
        let dir = try TempDir()
        var script = Self.script
        if format == "ustar" {
            // ustar has no long link targets: keep a short one (long paths use the prefix field).
            script = script.split(separator: "\n").map { $0.hasPrefix("ln -s") ? "ln -s ../etc/a.conf bin/longlink" : String($0) }.joined(separator: "\n")
        }
        if format != "ustar" { script += "\nhead -c 10 /dev/urandom > big-owner; chown 3000000:4000000 big-owner" }
        let tar = try IndexFixtures.layer(dir, script, format: format)
        let (r, entries) = try Self.index(tar.path)
        #expect(r.index?.error == nil)
        #expect(r.index?.entries == entries.count)
        let want = try Self.pythonListing(tar.path)
        #expect(Self.ours(entries) == want)
        #expect(entries.first { $0.path == "etc/.wh.gone" }?.marker == .whiteout)
        #expect(entries.first { $0.path == "etc/.wh.gone" }?.target == "etc/gone")
        #expect(entries.first { $0.path == "opq/.wh..wh..opq" }?.marker == .opaque)
        #expect(entries.first { $0.path == "opq/.wh..wh..opq" }?.target == "opq")
    }

    @Test func compressedLayersIndexTheSame() throws {
        let dir = try TempDir()
        let tar = try IndexFixtures.layer(dir, Self.script)
        let (_, plain) = try Self.index(tar.path)
        try sh(["gzip", "-k", "-n", tar.path])
        try sh(["zstd", "-q", "-k", tar.path])
        for ext in ["gz", "zst"] {
            let (r, entries) = try Self.index(tar.path + "." + ext)
            #expect(r.compression != .none)
            #expect(entries == plain, "\(ext)")
        }
    }

    /// A layer entry with its `xxh128:` content digest survives JSON (an embedding tool may
    /// store ``LayerEntry`` values), while a malformed one is refused.
    @Test func entriesRoundTripThroughJSON() throws {
        let d = try #require(Digest.xxh128(hex: "b5e9c1ad071b3e7fc779cfaa5e523818"))  // printf hello | xxh128sum
        let e = LayerEntry(path: "etc/a", kind: .file, mode: 0o644, uid: 0, gid: 0, size: 5, digest: d)
        let json = try JSONEncoder().encode(e)
        #expect(try JSONDecoder().decode(LayerEntry.self, from: json) == e)
        let bad = String(decoding: json, as: UTF8.self).replacingOccurrences(of: "xxh128:b5e9", with: "xxh128:B5E9")
        #expect(throws: StrataError.self) { try JSONDecoder().decode(LayerEntry.self, from: Data(bad.utf8)) }
    }

    @Test func notATarIsAnErrorNotACrash() throws {
        let dir = try TempDir()
        let f = dir.file("x.json").path
        try Data(#"{"architecture":"amd64"}"#.utf8).write(to: URL(fileURLWithPath: f))
        #expect(try Self.index(f).0.index?.error != nil)
        let junk = dir.file("junk").path
        try sh(["bash", "-c", "head -c 5000 /dev/urandom > \(junk)"])
        #expect(try Self.index(junk).0.index?.error != nil)
        // A truncated tar.
        let tar = try IndexFixtures.layer(dir, "head -c 5000 /dev/urandom > f")
        let cut = dir.file("cut.tar").path
        try sh(["bash", "-c", "head -c 2000 \(tar.path) > \(cut)"])
        #expect(try Self.index(cut).0.index?.error != nil)
    }

    /// find reads only the rows that can matter; it answers what the full view answers.
    @Test func findAgreesWithTheFullView() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        for c in AnalyzeTests.cases {
            let layers = try c.layers.map { try IndexFixtures.layer(dir, $0, format: c.format) }
            _ = try await store.load(from: try IndexFixtures.dockerArchive(dir, layers: layers, tag: "find/\(c.name):1"))
            let all = try await store.files(in: "find/\(c.name):1")
            for pattern in ["*", "*/*", "opq/*", "d/*", "d", "a", "*.conf", "etc/*", "data/*", "bin/tool*", "usr/share/*/*", "f"] {
                let glob = try PathGlob(pattern)
                let want = all.filter { glob.matches(String($0.path.dropFirst())) }
                let got = try await store.find(pattern, in: "find/\(c.name):1").filter { $0.status != .deleted }
                #expect(got == want, "\(c.name) \(pattern)")
            }
        }
    }

    /// A layer whose index does not fit in memory goes through a spool file.
    @Test func bigLayersSpoolToAFile() async throws {
        guard Peer.require("xxh128sum") else { return }
        let dir = try TempDir()
        let tar = try IndexFixtures.layer(dir, "mkdir d; for i in $(seq 1 3000); do echo $i > d/file-$i.txt; done")
        let (r, entries) = try Self.index(tar.path)
        #expect(r.index?.path != nil && r.index?.inline == nil)
        #expect(entries.count == 3001)
        #expect(Self.ours(entries) == (try Self.pythonListing(tar.path)))
        let store = try await dir.store()
        _ = try await store.load(from: try IndexFixtures.dockerArchive(dir, layers: [tar], tag: "big:1"))
        #expect(try await Self.indexCounts(store) == [1, 3001])
        #expect(try await store.find("d/file-42.txt", in: "big:1").first?.entry.size == 3)
    }

    static func indexCounts(_ store: Store) async throws -> [Int] {
        try await store.read { db in
            [try Int.fetchOne(db, sql: "SELECT count(*) FROM layer_indexes") ?? -1,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM layer_files") ?? -1]
        }
    }

    @Test func loadIndexesEachDiffIDOnceAndGCRemovesIt() async throws {
        let dir = try TempDir()
        let archive = dir.file("legacy.tar").path
        _ = try ArchiveFixtures.legacyDockerArchive(archive, in: dir)
        let store = try await dir.store()
        _ = try await store.load(from: URL(fileURLWithPath: archive))
        // Two images share the base layer: two diffIDs, two indexes.
        #expect(try await Self.indexCounts(store) == [2, 2])
        let files = try await store.files(in: "app:1")
        // /etc has no header of its own: it is implied by layer 0's etc/base (as umoci shows it).
        #expect(files.map(\.path) == ["/etc", "/etc/app", "/etc/base"])
        #expect(files.map(\.layer) == [0, 1, 0])
        #expect(files.first?.entry.kind == .directory && files.first?.entry.mode == 0o755)
        #expect(try await store.reindex() == 0)
        _ = try await store.load(from: URL(fileURLWithPath: archive))
        #expect(try await Self.indexCounts(store) == [2, 2])
        _ = try await store.removeImage("app:1")
        _ = try await store.removeImage("app:latest")
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await Self.indexCounts(store) == [1, 1])
        _ = try await store.removeImage("base:1")
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await Self.indexCounts(store) == [0, 0])
    }

    @Test func importIsIndexedInTheSamePass() async throws {
        guard Peer.require("xxh128sum") else { return }
        let dir = try TempDir()
        let rootfs = try Fixtures.busyboxRootfs(in: dir)
        let store = try await dir.store()
        _ = try await store.importRootfs(from: rootfs, reference: "bb:1")
        let want = try Self.pythonListing(rootfs.path)
        let layers = try await store.read { db in try Int.fetchOne(db, sql: "SELECT entries FROM layer_indexes") }
        let root = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM layer_files WHERE path = '' AND kind = 'd'") }
        #expect(root == 1, "the tar's ./ header is recorded as the root")
        #expect(layers == want.count + 1)
        let found = try await store.find("bin/*", in: "bb:1")
        #expect(found.map(\.path) == ["/bin/busybox", "/bin/cat", "/bin/echo", "/bin/ls", "/bin/sh", "/bin/true"])
        let busybox = try sh(["xxh128sum", "/bin/busybox"]).stdout.split(separator: " ").first.map(String.init) ?? ""
        #expect(found.first?.entry.digest?.string == "xxh128:" + busybox)
        #expect(try await store.find("passwd", in: "bb:1").map(\.path) == ["/etc/passwd"])
        await #expect(throws: StrataError.self) { try await store.find("", in: "bb:1") }
    }

    /// A store at every earlier schema version, holding a real image, upgrades and indexes
    /// its layers on first use (and `reindex` finds nothing left to do).
    @Test(arguments: EmbeddedMigrations.all.filter { $0.version < 7 }.map(\.name))
    func oldStoresAreIndexedLazily(_ version: String) async throws {
        let dir = try TempDir()
        let archive = dir.file("legacy.tar").path
        _ = try ArchiveFixtures.legacyDockerArchive(archive, in: dir)
        let current = try await dir.store("current")
        _ = try await current.load(from: URL(fileURLWithPath: archive))
        let want = try await current.files(in: "app:1")

        let root = dir.file("old")
        try StorePaths(root: root).createLayout()
        let pool = try DatabasePool(path: root.appendingPathComponent("strata.db").path)
        try Schema.migrator.migrate(pool, upTo: version)
        // Copy the rows through ATTACH, with the columns the old schema has.
        let currentDB = dir.file("current/strata.db").path
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            try db.execute(sql: "ATTACH DATABASE ? AS cur", arguments: [currentDB])
            for t in ["blobs", "layers", "layer_blobs", "images", "image_layers", "history", "tags"] {
                let cols = try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'main')", arguments: [t]).map { $0["name"] as String }
                let list = cols.joined(separator: ",")
                try db.execute(sql: "INSERT INTO main.\(t)(\(list)) SELECT \(list) FROM cur.\(t)")
            }
            try db.execute(sql: "DETACH DATABASE cur")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        try pool.close()
        try sh(["cp", "-a", dir.file("current/blobs/sha256").path + "/.", root.appendingPathComponent("blobs/sha256").path])
        let old = try await Store.open(at: root)
        #expect(try await Self.indexCounts(old)[0] == 0)
        #expect(try await old.files(in: "app:1") == want)
        #expect(try await Self.indexCounts(old)[0] == 2)
        #expect(try await old.reindex() == 0)
        #expect(try await old.reindex(force: true) == 2)
        #expect(try await old.files(in: "app:1") == want)
    }
}
