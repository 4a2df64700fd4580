import Foundation
import Testing
@testable import Strata

/// `image diff` from the index against unpacking both images with umoci and comparing the
/// trees (content, size, type, mode, owner, link target; deletions).
@Suite struct ImageDiffTests {
    /// path → metadata of every file under an unpacked rootfs.
    static func walk(_ rootfs: String) throws -> [String: [String: String]] {
        let out = try sh(["python3", "-c", """
            import hashlib, json, os, stat, sys
            root = sys.argv[1]; out = {}
            for d, dirs, files in os.walk(root):
                for n in dirs + files:
                    p = os.path.join(d, n); st = os.lstat(p); rel = os.path.relpath(p, root)
                    m = st.st_mode
                    kind = "d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "f" if stat.S_ISREG(m) else "o"
                    e = {"kind": kind, "mode": oct(stat.S_IMODE(m)), "owner": "%d:%d" % (st.st_uid, st.st_gid)}
                    if kind == "f":
                        e["size"] = str(st.st_size); e["digest"] = hashlib.sha256(open(p, "rb").read()).hexdigest()
                    if kind == "l": e["link"] = os.readlink(p)
                    out["/" + rel] = e
            print(json.dumps(out))
            """, rootfs])
        return try JSONDecoder().decode([String: [String: String]].self, from: Data(out.stdout.utf8))
    }

    @Test func diffAgreesWithUnpackedTrees() async throws {
        guard Peer.require("umoci") else { return }
        let dir = try TempDir()
        let base = try IndexFixtures.layer(dir, """
            mkdir -p etc app/dir app/sub; echo a > etc/a; echo b > etc/b; echo keep > etc/keep; head -c 1000 /dev/urandom > app/bin
            echo x > app/mode; echo y > app/own; echo z > app/dir/z; echo s > app/sub/s; ln -s etc/a link
            """)
        let a1 = try IndexFixtures.layer(dir, "mkdir etc; echo a2 > etc/a")
        let b1 = try IndexFixtures.layer(dir, """
            mkdir etc app; echo b-changed > etc/b; : > etc/.wh.keep; echo x > app/mode; chmod 700 app/mode
            echo y > app/own; chown 1234:5678 app/own; echo new > app/new; ln -s etc/b link
            """)
        let b2 = try IndexFixtures.layer(dir, "mkdir app; : > app/.wh.dir; echo replaced > app/sub; echo B > etc-b-same-size")
        let store = try await dir.store()
        _ = try await store.load(from: try IndexFixtures.dockerArchive(dir, layers: [base, a1], tag: "diff/a:1"))
        _ = try await store.load(from: try IndexFixtures.dockerArchive(dir, layers: [base, b1, b2], tag: "diff/b:1"))
        let ta = try Self.walk(try await AnalyzeTests.unpack(store, "diff/a:1", in: dir))
        let tb = try Self.walk(try await AnalyzeTests.unpack(store, "diff/b:1", in: dir))

        var want: [String: String] = [:]
        for (p, x) in ta {
            guard let y = tb[p] else { want[p] = "D"; continue }
            if x["kind"] == "d" && y["kind"] == "d" && x["mode"] == y["mode"] && x["owner"] == y["owner"] { continue }
            if x != y { want[p] = "C" }
        }
        for p in tb.keys where ta[p] == nil { want[p] = "A" }
        let changes = try await store.diff("diff/a:1", "diff/b:1")
        var got: [String: String] = [:]
        for c in changes { got[c.path] = c.kind.rawValue }
        #expect(got == want)
        // The kinds of change are named.
        let what = Dictionary(uniqueKeysWithValues: changes.map { ($0.path, Set($0.what)) })
        #expect(what["/app/mode"] == ["mode"])
        #expect(what["/app/own"] == ["owner"])
        #expect(what["/etc/a"]?.contains("content") == true)
        #expect(what["/app/sub"]?.contains("type") == true)
        #expect(what["/link"] == ["link"])
        #expect(got["/app/dir/z"] == "D" && got["/etc/keep"] == "D" && got["/app/sub/s"] == "D")
        // Same image: nothing.
        #expect(try await store.diff("diff/a:1", "diff/a:1").isEmpty)
    }

    /// `commit` indexes the layer it writes in the same pass, and `image diff` from the base
    /// to the committed image says what `strata diff` of the container said.
    @Test func commitIsIndexedAndDiffMatchesTheContainerDiff() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let rootfs = try Fixtures.busyboxRootfs(in: dir)
        _ = try await store.importRootfs(from: rootfs, reference: "commit/base:1")
        let c = try await store.createContainer(from: "commit/base:1", options: ContainerOptions(snapshotter: .copy))
        let root = try await store.mountContainer(c.id)
        _ = try bash("""
            echo changed >> '\(root)/etc/passwd'
            rm '\(root)/bin/cat'
            mkdir -p '\(root)/newdir' && echo x > '\(root)/newdir/f'
            """)
        let containerChanges = try await store.changes(in: c.id).map(\.description).filter { !$0.hasSuffix(" /bin") && !$0.hasSuffix(" /etc") }
        _ = try await store.commit(c.id, options: CommitOptions(reference: "commit/app:1"))
        let indexed = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM layer_indexes") }
        #expect(indexed == 2)
        let diff = try await store.diff("commit/base:1", "commit/app:1")
            .filter { $0.path != "/bin" && $0.path != "/etc" }.map { "\($0.kind.rawValue) \($0.path)" }
        #expect(diff == containerChanges)
        #expect(diff == ["D /bin/cat", "C /etc/passwd", "A /newdir", "A /newdir/f"])
    }

    @Test func findNamesTheLayerThatAddedChangedOrDeleted() async throws {
        let dir = try TempDir()
        let l0 = try IndexFixtures.layer(dir, "mkdir etc; echo 1 > etc/a.conf; echo 1 > etc/b.conf; echo x > etc/x.txt")
        let l1 = try IndexFixtures.layer(dir, "mkdir etc; echo 22 > etc/a.conf; : > etc/.wh.b.conf")
        let store = try await dir.store()
        _ = try await store.load(from: try IndexFixtures.dockerArchive(dir, layers: [l0, l1], tag: "find:1", steps: ["ADD base", "RUN edit"]))
        let found = try await store.find("/etc/*.conf", in: "find:1")
        #expect(found.map(\.path) == ["/etc/a.conf", "/etc/b.conf"])
        #expect(found.map(\.status) == [.changed, .deleted])
        #expect(found.map(\.layer) == [1, 1])
        #expect(found.map(\.createdBy) == ["RUN edit", "RUN edit"])
        #expect(found.first?.entry.size == 3)
        let x = try await store.find("etc/x.txt", in: "find:1")
        #expect(x.map(\.status) == [.added])
        #expect(x.first?.createdBy == "ADD base")
    }
}
