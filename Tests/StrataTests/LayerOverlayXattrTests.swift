import CArchive
import Foundation
import Testing
@testable import Strata

/// A layer may not speak for overlayfs (issue #19): the attributes overlayfs acts on —
/// `trusted.overlay.*` as root, `user.overlay.*` in a `userxattr` mount — are dropped when a
/// layer tar carries them, in every store, so a layer cannot make a directory opaque without a
/// `.wh..wh..opq`, redirect a directory to another one, or mark a file as metadata only. What
/// the image shows is then what `umoci unpack` of the same image shows (umoci unpacks into one
/// tree, where such attributes are inert), for the overlay mount and the copy snapshotter
/// alike; strata's own whiteout and opaque translation, which sets the opaque attribute on
/// purpose, still works in the same image.
@Suite(.serialized) struct LayerOverlayXattrTests {
    /// Layer 0: a/x, b/y, c/k, secret/s, o/z, f, gone. Layer 1: a/ opaque and b/ redirected to
    /// /secret by attribute (both namespaces), c/ opaque through libarchive's own PAX spelling
    /// (`LIBARCHIVE.xattr.NAME`, base64), f with metacopy, origin and redirect, and one ordinary
    /// attribute (`user.keep`) that must stay. Layer 2: `o/.wh..wh..opq` and `.wh.gone`, the
    /// OCI way, which strata translates into overlay's own whiteout and opaque attribute.
    static let stack = """
        [[{"name": "a", "type": "d"}, {"name": "a/x", "data": b"1"}, {"name": "b", "type": "d"}, {"name": "b/y", "data": b"2"},
          {"name": "c", "type": "d"}, {"name": "c/k", "data": b"k"}, {"name": "secret", "type": "d"}, {"name": "secret/s", "data": b"s"},
          {"name": "o", "type": "d"}, {"name": "o/z", "data": b"z"}, {"name": "f", "data": b"lower"}, {"name": "gone", "data": b"g"}],
         [{"name": "a", "type": "d", "pax": {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.overlay.opaque": "y",
                                             "SCHILY.xattr.user.keep": "v"}},
          {"name": "a/new", "data": b"3"},
          {"name": "b", "type": "d", "pax": {"SCHILY.xattr.trusted.overlay.redirect": "/secret", "SCHILY.xattr.user.overlay.redirect": "/secret"}},
          {"name": "c", "type": "d", "pax": {"LIBARCHIVE.xattr.trusted.overlay.opaque": "eQ==", "LIBARCHIVE.xattr.user.overlay.opaque": "eQ=="}},
          {"name": "c/new", "data": b"4"},
          {"name": "f", "data": b"upper", "pax": {"SCHILY.xattr.trusted.overlay.metacopy": "x", "SCHILY.xattr.trusted.overlay.origin": "junk",
                                                   "SCHILY.xattr.trusted.overlay.redirect": "/secret/s", "SCHILY.xattr.user.overlay.metacopy": "x"}}],
         [{"name": "o/.wh..wh..opq"}, {"name": "o/w", "data": b"w"}, {"name": ".wh.gone"}]]
        """

    @Test(arguments: [SnapshotterKind.overlay, .copy])
    func aLayersOverlayAttributesChangeNothingUmociWouldNotShow(_ kind: SnapshotterKind) async throws {
        guard Peer.require("umoci", "python3"), geteuid() == 0 else { return }
        if kind == .overlay && SnapshotterKind.preferred != .overlay { return }
        let dir = try TempDir()
        try LayerStacks.layout(Self.stack, at: dir.file("img").path)
        try sh(["umoci", "unpack", "--image", dir.file("img").path + ":img", dir.file("umoci").path])
        let truth = LayerStacks.tree(dir.file("umoci/rootfs").path)
        let names = Set(truth.keys.map { String(decoding: $0, as: UTF8.self) })
        #expect(names == ["a", "a/x", "a/new", "b", "b/y", "c", "c/k", "c/new", "secret", "secret/s", "o", "o/w", "f"], "umoci: \(names.sorted())")

        let store = try await dir.store()
        let image = try await store.load(from: dir.file("img"))[0].id.string
        let c = try await store.createContainer(from: image, options: ContainerOptions(snapshotter: kind))
        let root = try await store.mountContainer(c.id)
        let ours = LayerStacks.tree(root)
        #expect(ours == truth, "\(kind): umoci \(truth) / strata \(ours)")
        #expect(try String(contentsOfFile: root + "/f", encoding: .utf8) == "upper")
        #expect(try String(contentsOfFile: root + "/b/y", encoding: .utf8) == "2")
        #expect(Self.xattrs(root + "/a")["user.keep"] == "v", "an ordinary attribute of the layer stays")
        try await store.unmountContainer(c.id)

        // On disk: no snapshot carries an overlay attribute but strata's own opaque mark on o/.
        var marks: [String] = []
        let snapshots = store.root.appendingPathComponent("snapshots").path
        for s in rawDirectoryEntries(snapshots) {
            let fs = snapshots + "/" + s + "/fs"
            Self.walk(fs, "") { rel in
                for (name, value) in Self.xattrs(rel.isEmpty ? fs : fs + "/" + rel)
                where name.hasPrefix("trusted.overlay.") || name.hasPrefix("user.overlay.") {
                    marks.append("\(rel) \(name)=\(value)")
                }
            }
        }
        #expect(marks == ["o \(OverlayXattr.opaque)=y"], "\(marks)")
        _ = try await store.removeContainer(c.id)
    }

    /// `docker cp`/`strata cp` into a container goes through the same unpacker: an archive's
    /// overlay attributes do not make a directory of the container opaque, so neither the
    /// container's changes nor its commit hide the image's files. (Before the fix the copy
    /// container's tree got the attribute, which its changes and commit happened to ignore, and
    /// overlayfs refused it through the merged view: what fails without the fix is the check of
    /// the copy container's tree; the rest guards the path.)
    @Test(arguments: [SnapshotterKind.overlay, .copy])
    func anArchiveCopiedInCannotHideTheImagesFiles(_ kind: SnapshotterKind) async throws {
        guard Peer.require("python3"), geteuid() == 0 else { return }
        if kind == .overlay && SnapshotterKind.preferred != .overlay { return }
        let dir = try TempDir()
        try LayerStacks.layout("""
            [[{"name": "d", "type": "d"}, {"name": "d/x", "data": b"1"}]]
            """, at: dir.file("img").path)
        try sh(["python3", "-c", """
            import io, sys, tarfile
            with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
                i = tarfile.TarInfo("d"); i.type = tarfile.DIRTYPE; i.mode = 0o755
                i.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.overlay.opaque": "y"}
                t.addfile(i)
                f = tarfile.TarInfo("d/new"); f.size = 1; t.addfile(f, io.BytesIO(b"2"))
            """, dir.file("in.tar").path])
        let store = try await dir.store()
        let image = try await store.load(from: dir.file("img"))[0].id.string
        let c = try await store.createContainer(from: image, options: ContainerOptions(snapshotter: kind))
        try await store.extractArchive(dir.file("in.tar"), intoContainer: c.id, at: "/")
        if kind == .copy {
            // The copy container's own tree: the archive's attributes were not written there.
            let d = store.root.appendingPathComponent("containers/\(c.id)/rootfs/d").path
            #expect(Self.xattrs(d).keys.filter(OverlayXattr.isInternal).isEmpty, "\(Self.xattrs(d))")
        }
        let root = try await store.mountContainer(c.id)
        #expect(FileManager.default.fileExists(atPath: root + "/d/x"), "\(kind): d/x hidden after the copy")
        #expect(FileManager.default.fileExists(atPath: root + "/d/new"))
        try await store.unmountContainer(c.id)
        let changes = try await store.changes(in: c.id).map(\.description)
        #expect(!changes.contains("D /d/x") && changes.contains("A /d/new"), "\(kind): \(changes)")
        let committed = try await store.commit(c.id)
        let files = Set(try await store.files(in: committed.id.string).map(\.path))
        #expect(files.contains("/d/x") && files.contains("/d/new"), "\(kind): \(files.sorted())")
        _ = try await store.removeContainer(c.id)
    }

    /// Snapshots an earlier strata unpacked keep a layer's attributes: `fsck` reports them
    /// (`overlay-attribute`), not strata's own opaque mark, and `--repair` removes them.
    @Test func fsckFindsAndRemovesALayersOverlayAttributesInOldSnapshots() async throws {
        guard Peer.require("python3"), geteuid() == 0 else { return }
        let dir = try TempDir()
        try LayerStacks.layout(Self.stack, at: dir.file("img").path)
        let store = try await dir.store()
        let image = try await store.load(from: dir.file("img"))[0].id.string
        _ = try await store.createContainer(from: image, options: ContainerOptions(snapshotter: .copy))
        #expect(try await store.check().problems.filter { $0.kind == "overlay-attribute" }.isEmpty, "a fresh unpack has none")
        // What the previous unpacker left: the layer's attributes on the layer-1 snapshot.
        let snapshots = store.root.appendingPathComponent("snapshots").path
        guard let layer1 = rawDirectoryEntries(snapshots).first(where: { FileManager.default.fileExists(atPath: "\(snapshots)/\($0)/fs/a/new") }) else {
            Issue.record("no snapshot of layer 1"); return
        }
        let fs = "\(snapshots)/\(layer1)/fs"
        #expect(setxattr(fs + "/b", "trusted.overlay.redirect", "/secret", 7, 0) == 0)
        #expect(setxattr(fs + "/a", "user.overlay.opaque", "y", 1, 0) == 0)
        #expect(setxattr(fs + "/f", "trusted.overlay.metacopy", "x", 1, 0) == 0)
        #expect(try await store.check(quick: true).problems.filter { $0.kind == "overlay-attribute" }.isEmpty, "quick skips the walk")
        let found = try await store.check().problems.filter { $0.kind == "overlay-attribute" }
        #expect(found.map(\.subject) == ["snapshots/\(layer1)"], "\(found)")
        let detail = found.first?.detail ?? ""
        #expect(detail.contains("/b trusted.overlay.redirect") && detail.contains("/a user.overlay.opaque") && detail.contains("/f trusted.overlay.metacopy"), "\(detail)")
        let repaired = try await store.check(repair: true)
        #expect(repaired.problems.filter { $0.kind == "overlay-attribute" }.allSatisfy { $0.repaired != nil }, "\(repaired.problems)")
        #expect(Self.xattrs(fs + "/b").isEmpty && Self.xattrs(fs + "/a").keys.sorted() == ["user.keep"] && Self.xattrs(fs + "/f").isEmpty)
        #expect(try await store.check().problems.isEmpty)
        // strata's own opaque mark (from o/.wh..wh..opq in layer 2) was never a problem and stays.
        let marked = rawDirectoryEntries(snapshots).filter { Self.xattrs("\(snapshots)/\($0)/fs/o")[OverlayXattr.opaque] == "y" }
        #expect(marked.count == 1)
    }

    /// The overlay names, in either namespace, are overlayfs' whatever mode this process is in.
    @Test func bothNamespacesAreOverlaysOwn() {
        #expect(OverlayXattr.isInternal("trusted.overlay.opaque"))
        #expect(OverlayXattr.isInternal("user.overlay.redirect"))
        #expect(OverlayXattr.isInternal("trusted.overlay.overlay.opaque"))
        #expect(!OverlayXattr.isInternal("user.keep"))
        #expect(!OverlayXattr.isInternal("trusted.overlayfoo"))
        #expect(!OverlayXattr.isInternal("security.capability"))
    }

    /// Calls `body` with every path under `root`, relative (`""` is the root itself).
    static func walk(_ root: String, _ rel: String, _ body: (String) -> Void) {
        body(rel)
        let path = rel.isEmpty ? root : root + "/" + rel
        guard FileMeta.of(path)?.kind == .directory else { return }
        for name in rawDirectoryEntries(path) { walk(root, rel.isEmpty ? name : rel + "/" + name, body) }
    }

    /// The extended attributes of `path` (not followed), values as UTF-8.
    static func xattrs(_ path: String) -> [String: String] {
        var names = [CChar](repeating: 0, count: 65536)
        let n = llistxattr(path, &names, names.count)
        guard n > 0 else { return [:] }
        var out: [String: String] = [:]
        for raw in names[0..<n].split(separator: 0) {
            let name = String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var value = [UInt8](repeating: 0, count: 4096)
            let len = lgetxattr(path, name, &value, value.count)
            out[name] = len >= 0 ? String(decoding: value[0..<len], as: UTF8.self) : "?"
        }
        return out
    }
}
