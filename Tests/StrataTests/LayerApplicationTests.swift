import Foundation
import GRDB
import Testing
@testable import Strata

/// Writes OCI layouts whose layers Python's tarfile makes (PAX; names with bytes that are not
/// UTF-8 through surrogateescape; device nodes), so the cases below are byte-exact inputs.
enum LayerStacks {
    /// `layers` is a Python expression: a list of layers, each a list of dicts with `name`
    /// (str, surrogate-escaped bytes allowed), `type` ('f', 'd', 'l', 'c', 'b'), and optionally
    /// `data` (bytes), `mode`, `uid`, `gid`, `mtime`, `link`, `major`, `minor`, and `pax` (a dict
    /// of PAX records, e.g. `{"SCHILY.xattr.user.a": "v"}`). A layer may instead be
    /// `{"raw": BYTES}` (those bytes as the layer, `"gzip": True` to store them gzipped).
    static func layout(_ layers: String, at path: String) throws {
        try bash("""
            python3 - '\(path)' <<'PY'
            import gzip, hashlib, io, json, os, sys, tarfile
            out = sys.argv[1]
            os.makedirs(out + "/blobs/sha256")
            layers = \(layers)
            types = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "c": tarfile.CHRTYPE, "b": tarfile.BLKTYPE}
            def blob(b):
                h = hashlib.sha256(b).hexdigest(); open(out + "/blobs/sha256/" + h, "wb").write(b); return "sha256:" + h, len(b)
            descs, diffs = [], []
            for entries in layers:
                if isinstance(entries, dict):
                    raw = entries["raw"]
                    stored = gzip.compress(raw, mtime=0) if entries.get("gzip") else raw
                    d, n = blob(stored)
                    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if entries.get("gzip") else "")
                    descs.append({"mediaType": media, "digest": d, "size": n}); diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
                    continue
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as t:
                    for e in entries:
                        i = tarfile.TarInfo(e["name"]); i.type = types[e.get("type", "f")]
                        i.mode = e.get("mode", 0o755 if e.get("type") == "d" else 0o644)
                        i.uid = e.get("uid", 0); i.gid = e.get("gid", 0); i.mtime = e.get("mtime", 1700000000)
                        i.linkname = e.get("link", ""); i.devmajor = e.get("major", 0); i.devminor = e.get("minor", 0)
                        i.pax_headers = e.get("pax", {})
                        data = e.get("data", b"")
                        if i.type == tarfile.REGTYPE: i.size = len(data)
                        t.addfile(i, io.BytesIO(data) if i.type == tarfile.REGTYPE else None)
                d, n = blob(buf.getvalue())
                descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n}); diffs.append(d)
            cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diffs},
                              "history": [{"created_by": "layer %d" % k} for k in range(len(layers))]}).encode()
            cd, cn = blob(cfg)
            man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": descs}).encode()
            md, mn = blob(man)
            json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
                       "annotations": {"org.opencontainers.image.ref.name": "img"}}]}, open(out + "/index.json", "w"))
            open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
            PY
            """)
    }

    /// Every path under `root` (relative, as exact bytes) with type, mode and owner.
    static func tree(_ root: String) -> [[UInt8]: String] {
        var out: [[UInt8]: String] = [:]
        func walk(_ rel: String) {
            let dir = rel.isEmpty ? root : root + "/" + rel
            for name in rawDirectoryEntries(dir) {
                let r = rel.isEmpty ? name : rel + "/" + name
                guard let m = FileMeta.of(root + "/" + r) else { continue }
                out[RawName.encode(r)] = "\(m.kind) \(String(m.mode, radix: 8)) \(m.uid):\(m.gid)"
                if m.kind == .directory { walk(r) }
            }
        }
        walk("")
        return out
    }
}

/// The cases the issue names, each against `umoci unpack` of the same image: implied parents,
/// an opaque whiteout at the root, names that are not UTF-8, device nodes. The broad proof is
/// the differential fuzzer (Tests/StrataCLITests/LayerFuzzTests.swift); these pin each rule.
@Suite(.serialized) struct LayerApplicationTests {
    static let latin1 = #"b"caf\xe9.txt".decode("utf-8", "surrogateescape")"#
    static let binary = #"b"\xff\xfe-bin".decode("utf-8", "surrogateescape")"#

    func umociTree(_ layout: String, in dir: TempDir) throws -> [[UInt8]: String] {
        try sh(["umoci", "unpack", "--image", "\(layout):img", dir.file("umoci").path])
        return LayerStacks.tree(dir.file("umoci/rootfs").path)
    }

    func strataTree(_ store: Store, _ image: String, _ kind: SnapshotterKind) async throws -> [[UInt8]: String] {
        let c = try await store.createContainer(from: image, options: ContainerOptions(snapshotter: kind))
        let tree = LayerStacks.tree(try await store.mountContainer(c.id))
        try await store.unmountContainer(c.id)
        _ = try await store.removeContainer(c.id)
        return tree
    }

    @Test(arguments: [SnapshotterKind.overlay, .copy])
    func impliedParentsOpaqueRootAndRawNamesMatchUmoci(_ kind: SnapshotterKind) async throws {
        guard Peer.require("umoci", "python3"), geteuid() == 0 else { return }
        if kind == .overlay && SnapshotterKind.preferred != .overlay { return }
        let dir = try TempDir()
        // 1: home/user is 1000:1000 0750; the upper layer only implies it.
        // 2: an opaque whiteout at the root of layer 3 hides layers 0-2.
        try LayerStacks.layout("""
            [[{"name": "home", "type": "d"}, {"name": "home/user", "type": "d", "mode": 0o750, "uid": 1000, "gid": 1000},
              {"name": "home/user/owned-file", "data": b"a"}, {"name": \(Self.latin1), "data": b"latin-1"}],
             [{"name": "home/user/owned-file", "data": b"b"}, {"name": "home/user/new/deep", "data": b"c"}, {"name": \(Self.binary), "data": b"x"}]]
            """, at: dir.file("implied").path)
        try LayerStacks.layout("""
            [[{"name": "a", "type": "d"}, {"name": "a/x", "data": b"1"}, {"name": "b", "data": b"2"}],
             [{"name": "c", "data": b"3"}],
             [{"name": ".wh..wh..opq"}, {"name": "d", "data": b"4"}]]
            """, at: dir.file("opaque").path)
        let store = try await dir.store()
        for name in ["implied", "opaque"] {
            let truth = try umociTree(dir.file(name).path, in: try TempDir(parent: dir.path))
            let image = try await store.load(from: dir.file(name))[0].id.string
            let ours = try await strataTree(store, image, kind)
            #expect(ours == truth, "\(name) \(kind): umoci \(truth) / strata \(ours)")
            if name == "implied" {
                #expect(truth[Array("home/user".utf8)] == "directory 750 1000:1000")
                #expect(truth[Array("caf".utf8) + [0xE9] + Array(".txt".utf8)] != nil)
            } else {
                #expect(Set(truth.keys) == [Array("d".utf8)])
            }
        }
    }

    /// A layer with no content at all — 0 bytes, or gzip of nothing — is an empty layer to Go's
    /// tar reader (umoci, podman, dockerd): strata loads it and unpacks it as one too (a
    /// container of such an image could not be created before; found by tools/engine-parity).
    @Test(arguments: [SnapshotterKind.overlay, .copy])
    func emptyLayersUnpackLikeUmoci(_ kind: SnapshotterKind) async throws {
        guard Peer.require("umoci", "python3"), geteuid() == 0 else { return }
        if kind == .overlay && SnapshotterKind.preferred != .overlay { return }
        let dir = try TempDir()
        try LayerStacks.layout("""
            [[{"name": "a", "data": b"1"}], {"raw": b""}, {"raw": b"", "gzip": True}, [{"name": "b", "data": b"2"}]]
            """, at: dir.file("empty").path)
        let truth = try umociTree(dir.file("empty").path, in: try TempDir(parent: dir.path))
        let store = try await dir.store()
        let image = try await store.load(from: dir.file("empty"))[0].id.string
        let ours = try await strataTree(store, image, kind)
        #expect(ours == truth, "umoci \(truth) / strata \(ours)")
        #expect(Set(truth.keys) == [Array("a".utf8), Array("b".utf8)])
    }

    /// A name that is not UTF-8 keeps its bytes through load, the index, save and a second load;
    /// umoci, unpacking what strata saved, sees the same bytes.
    @Test func rawNamesSurviveLoadSaveLoad() async throws {
        guard Peer.require("umoci", "python3") else { return }
        let dir = try TempDir()
        try LayerStacks.layout("""
            [[{"name": "d", "type": "d"}, {"name": "d/" + \(Self.latin1), "data": b"latin-1"},
              {"name": \(Self.binary), "type": "l", "link": "d/" + \(Self.latin1)}],
             [{"name": "d/.wh." + \(Self.latin1)}]]
            """, at: dir.file("raw").path)
        let store = try await dir.store()
        let image = try await store.load(from: dir.file("raw"))[0].id.string
        let name = Array("caf".utf8) + [0xE9] + Array(".txt".utf8)
        let files = try await store.files(in: image)
        #expect(files.contains { RawName.encode($0.path) == [0x2F, 0xFF, 0xFE] + Array("-bin".utf8) && $0.entry.linkTarget.map(RawName.encode) == Array("d/".utf8) + name })
        // SQLite keeps the exact bytes: a BLOB where the name is not UTF-8.
        let stored = try await store.read { db in try Data.fetchAll(db, sql: "SELECT path FROM layer_files WHERE typeof(path) = 'blob'") }
        #expect(Set(stored.map(Array.init)) == [Array("d/".utf8) + name, [0xFF, 0xFE] + Array("-bin".utf8), Array("d/.wh.".utf8) + name])
        let link = try await store.read { db in try Data.fetchOne(db, sql: "SELECT link FROM layer_files WHERE kind = 'l'") }
        #expect(link.map(Array.init) == Array("d/".utf8) + name)
        try await store.save([image], to: dir.file("out"), format: .ociDirectory)
        let againDir = try TempDir(parent: dir.path)
        let again = try await againDir.store()
        let reloaded = try await again.load(from: dir.file("out"))[0].id.string
        #expect(reloaded == image, "the same bytes give the same image ID")
        let second = try await again.files(in: reloaded)
        #expect(Set(second.map { RawName.encode($0.path) }) == Set(files.map { RawName.encode($0.path) }))
        // The saved layers hold the exact bytes: umoci unpacks them.
        try sh(["python3", "-c", "import json,sys; p=sys.argv[1]; i=json.load(open(p)); i['manifests'][0]['annotations']={'org.opencontainers.image.ref.name':'img'}; json.dump(i,open(p,'w'))",
                dir.file("out/index.json").path])
        let truth = try umociTree(dir.file("out").path, in: try TempDir(parent: dir.path))
        #expect(truth[[0xFF, 0xFE] + Array("-bin".utf8)]?.hasPrefix("symlink") == true)
        #expect(truth[Array("d/".utf8) + name] == nil, "the whiteout of the raw name deleted it")
    }

    /// An entry at a path where the same layer put a symlink pointing out of the root replaces
    /// the symlink; nothing outside is written or chmod-ed (a file, a directory, a hardlink).
    @Test func entriesReplaceSymlinksNeverFollowThem() async throws {
        guard Peer.require("python3") else { return }
        let dir = try TempDir()
        let outside = dir.file("outside").path
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        chmod(outside, 0o700)
        try Data("orig".utf8).write(to: URL(fileURLWithPath: outside + "/file"))
        try LayerStacks.layout("""
            [[{"name": "x", "type": "l", "link": "\(outside)/file"}, {"name": "x", "data": b"pwned"},
              {"name": "d", "type": "l", "link": "\(outside)"}, {"name": "d", "type": "d", "mode": 0o777}]]
            """, at: dir.file("img").path)
        let store = try await dir.store()
        let image = try await store.load(from: dir.file("img"))[0].id.string
        let c = try await store.createContainer(from: image)
        let root = try await store.mountContainer(c.id)
        #expect(try String(contentsOfFile: outside + "/file", encoding: .utf8) == "orig")
        #expect(FileMeta.of(outside)?.mode == 0o700)
        #expect(FileMeta.of(root + "/x")?.kind == .file && FileMeta.of(root + "/d")?.kind == .directory)
        try await store.unmountContainer(c.id)
    }

    /// Character and block devices are refused by default with a message that names the path,
    /// leave no snapshot behind, and are created once the store allows them. The 0/0 character
    /// device (an overlay whiteout written into a tar) is always accepted.
    @Test func deviceNodesAreRefusedUnlessAllowed() async throws {
        guard Peer.require("python3") else { return }
        let dir = try TempDir()
        try LayerStacks.layout("""
            [[{"name": "dev", "type": "d"}, {"name": "dev/mem", "type": "c", "major": 1, "minor": 1},
              {"name": "dev/loop0", "type": "b", "major": 7, "minor": 0}]]
            """, at: dir.file("dev").path)
        try LayerStacks.layout("""
            [[{"name": "a", "data": b"1"}], [{"name": "a", "type": "c", "major": 0, "minor": 0}]]
            """, at: dir.file("wh").path)
        let store = try await dir.store()
        let image = try await store.load(from: dir.file("dev"))[0].id.string
        do {
            _ = try await store.createContainer(from: image)
            Issue.record("a layer with device nodes was unpacked")
        } catch let e as StrataError {
            #expect(e.code == .unsafePath)
            #expect(e.message.contains("dev/mem") || e.message.contains("dev/loop0"), "\(e.message)")
            #expect(e.message.contains("strata config devices allow"), "\(e.message)")
        }
        #expect(try await store.containers().isEmpty)
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: store.root.appendingPathComponent("snapshots").path)
        #expect(snapshots.isEmpty, "\(snapshots)")
        // The whiteout device is not a device node.
        let wh = try await store.load(from: dir.file("wh"))[0].id.string
        let c0 = try await store.createContainer(from: wh)
        #expect(!FileManager.default.fileExists(atPath: try await store.mountContainer(c0.id) + "/a"))
        try await store.unmountContainer(c0.id)
        #expect(try await store.deviceNodesAllowed() == false)
        try await store.setDeviceNodesAllowed(true)
        guard geteuid() == 0 else { return }
        let c = try await store.createContainer(from: image)
        let root = try await store.mountContainer(c.id)
        #expect(FileMeta.of(root + "/dev/mem")?.kind == .char)
        #expect(FileMeta.of(root + "/dev/mem")?.rdev == 0x101, "major 1, minor 1")
        #expect(FileMeta.of(root + "/dev/loop0")?.kind == .block)
        try await store.unmountContainer(c.id)
    }
}
