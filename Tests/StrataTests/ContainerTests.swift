import CArchive
import Crypto
import Foundation
import Testing
@testable import Strata

/// A tree listed as one line per path: type, mode, owner, size, content hash, link target,
/// user xattrs, and hardlink group — the form both sides of a ground-truth test are put in.
func listTree(_ root: String) -> [String: String] {
    var out: [String: String] = [:]
    var inodes: [UInt64: [String]] = [:]
    func walk(_ rel: String) {
        let dir = rel.isEmpty ? root : root + "/" + rel
        for name in directoryEntries(dir) {
            let r = rel.isEmpty ? name : rel + "/" + name
            let p = dir + "/" + name
            guard let m = FileMeta.of(p) else { continue }
            var hash = ""
            if m.kind == .file, let d = FileManager.default.contents(atPath: p) { hash = SHA256.hash(data: d).hexString.prefix(16).description }
            var names = [Int8](repeating: 0, count: 4096)
            let n = llistxattr(p, &names, names.count)
            let xattrs = n > 0 ? names[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
                .filter { $0.hasPrefix("user.") }.sorted().joined(separator: ",") : ""
            let size = m.kind == .directory ? 0 : m.size
            out[r] = "\(m.kind) \(String(m.mode, radix: 8)) \(m.uid):\(m.gid) \(size) \(hash) \(m.linkTarget ?? "") \(xattrs) \(m.kind == .char || m.kind == .block ? String(m.rdev) : "")"
            if m.kind == .file { inodes[m.inode, default: []].append(r) }
            if m.kind == .directory { walk(r) }
        }
    }
    walk("")
    for (_, group) in inodes where group.count > 1 {
        let g = group.sorted().joined(separator: "|")
        for p in group { out[p]! += " links=\(g)" }
    }
    return out
}

enum ContainerFixtures {
    /// An OCI layout (tag `img`) of four layers built with umoci: files, a hardlink pair, a
    /// fifo, device nodes (as root), foreign ownership, sticky, setgid and setuid modes, a
    /// user xattr, a deletion, a directory replaced by a file, the file replaced by a
    /// directory again, and an opaque directory.
    static func richImage(in dir: TempDir) throws -> String {
        let layout = dir.file("rich").path
        try ArchiveFixtures.tar(dir.file("l3.tar").path, [
            (".wh.data", Data()), ("data", Data("now a file\n".utf8)),
        ])
        try ArchiveFixtures.tar(dir.file("l4.tar").path, [
            (".wh.data", Data()), ("data/new", Data("a dir again\n".utf8)),
            ("etc/.wh..wh..opq", Data()), ("etc/only", Data("opaque\n".utf8)),
        ])
        try bash("""
            cd "\(dir.path)"
            umoci init --layout "\(layout)"
            umoci new --image "\(layout):img"
            umoci unpack --image "\(layout):img" b1
            mkdir -p b1/rootfs/etc b1/rootfs/data/sub b1/rootfs/bin
            cp "$(command -v busybox || echo /bin/busybox)" b1/rootfs/bin/busybox
            ln -s busybox b1/rootfs/bin/sh
            echo hello > b1/rootfs/etc/greeting
            echo gone > b1/rootfs/data/old
            mkdir -p b1/rootfs/keep
            echo same > b1/rootfs/keep/h1 && ln b1/rootfs/keep/h1 b1/rootfs/keep/h2
            mkfifo b1/rootfs/keep/fifo
            head -c 70000 /dev/urandom > b1/rootfs/data/sub/blob
            chown 1000:1000 b1/rootfs/data/sub/blob
            mkdir -p b1/rootfs/tmp && chmod 1777 b1/rootfs/tmp
            mkdir -p b1/rootfs/srv && chmod 2775 b1/rootfs/srv && chown 0:50 b1/rootfs/srv
            if [ "$(id -u)" = 0 ]; then mknod b1/rootfs/keep/null c 1 3; mknod b1/rootfs/keep/loop b 7 200; fi
            umoci repack --image "\(layout):img" --history.created_by "layer 1" b1
            rm -rf b1
            umoci unpack --image "\(layout):img" b2
            rm b2/rootfs/data/old
            echo more > b2/rootfs/etc/more
            echo run > b2/rootfs/bin/tool && chmod 4755 b2/rootfs/bin/tool
            setfattr -n user.test -v yes b2/rootfs/etc/more 2>/dev/null || python3 -c "import os; os.setxattr('b2/rootfs/etc/more', 'user.test', b'yes')"
            umoci repack --image "\(layout):img" --history.created_by "layer 2" b2
            rm -rf b2
            umoci raw add-layer --image "\(layout):img" --history.created_by "layer 3" l3.tar
            umoci raw add-layer --image "\(layout):img" --history.created_by "layer 4" l4.tar
            """)
        return layout
    }
}

@Suite(.serialized) struct ContainerTests {
    /// The mounted rootfs equals `umoci unpack` of the same image, with both snapshotters,
    /// for the image as umoci wrote it, as skopeo recompressed it with zstd, and as podman
    /// saved it after loading it.
    @Test(arguments: [SnapshotterKind.overlay, .copy], ["umoci", "skopeo-zstd", "podman"])
    func rootfsMatchesUmociUnpack(_ kind: SnapshotterKind, _ writer: String) async throws {
        guard Peer.require("umoci", "skopeo", "podman") else { return }
        if kind == .overlay && SnapshotterKind.preferred != .overlay { return }
        let dir = try TempDir()
        let layout = try ContainerFixtures.richImage(in: dir)
        try sh(["umoci", "unpack", "--image", "\(layout):img", dir.file("truth").path])
        let truth = listTree(dir.file("truth/rootfs").path)
        #expect(truth["etc/only"] != nil && truth["etc/greeting"] == nil && truth["data/new"] != nil)
        #expect(truth["tmp"]?.contains("directory 1777") == true && truth["bin/tool"]?.contains("file 4755") == true)
        #expect(truth["keep/h1"]?.contains("links=keep/h1|keep/h2") == true && truth["keep/fifo"]?.hasPrefix("fifo") == true)
        if geteuid() == 0 { #expect(truth["keep/null"]?.hasPrefix("char") == true && truth["keep/loop"]?.hasPrefix("block") == true) }
        var input = URL(fileURLWithPath: layout)
        switch writer {
        case "skopeo-zstd":
            try sh(["skopeo", "copy", "-q", "--dest-compress", "--dest-compress-format", "zstd", "oci:\(layout):img", "oci:\(dir.path)/zlayout:img"])
            input = dir.file("zlayout")
        case "podman":
            let p = PodmanInteropTests.podman(dir)
            try sh(["skopeo", "copy", "-q", "oci:\(layout):img", "docker-archive:\(dir.path)/d.tar:rich/img:1"])
            try sh(p + ["load", "-i", dir.file("d.tar").path])
            try sh(p + ["save", "-o", dir.file("p.tar").path, "rich/img:1"])
            input = dir.file("p.tar")
        default:
            break
        }
        let store = try await dir.store()
        let loaded = try await store.load(from: input)
        // The image has device nodes: refused unless the store allows them (LayerApplicationTests).
        try await store.setDeviceNodesAllowed(true)
        let c = try await store.createContainer(from: loaded[0].id.string, options: ContainerOptions(snapshotter: kind))
        let root = try await store.mountContainer(c.id)
        let ours = listTree(root)
        for key in Set(truth.keys).union(ours.keys).sorted() where truth[key] != ours[key] {
            Issue.record("\(kind) \(writer): \(key): umoci \(truth[key] ?? "absent") / strata \(ours[key] ?? "absent")")
        }
        #expect(try await store.changes(in: c.id).isEmpty)
        try await store.unmountContainer(c.id)
        _ = try await store.removeContainer(c.id)
        #expect(!FileManager.default.fileExists(atPath: store.root.appendingPathComponent("containers/\(c.id)").path))
    }

    /// diff and commit, checked against podman: podman loads the committed image and its
    /// own diff of the new layer lists the same changes.
    @Test(arguments: [SnapshotterKind.overlay, .copy])
    func diffAndCommitAgreeWithPodman(_ kind: SnapshotterKind) async throws {
        guard Peer.require("podman", "umoci") else { return }
        if kind == .overlay && SnapshotterKind.preferred != .overlay { return }
        let dir = try TempDir()
        let layout = try Fixtures.umociImage(in: dir)
        let store = try await dir.store()
        let base = try await store.load(from: URL(fileURLWithPath: layout))[0].id
        try await store.tag(base.string, as: "diff/base:1")
        let c = try await store.createContainer(from: "diff/base:1", options: ContainerOptions(command: ["/bin/sh"], snapshotter: kind))
        let root = try await store.mountContainer(c.id)
        // The addition goes in with cp, as a user would.
        try Data("added\n".utf8).write(to: dir.file("added"))
        try await store.copy(intoContainer: c.id, from: dir.file("added").path, to: "/etc/added")
        try bash("""
            echo changed >> '\(root)/etc/greeting'
            rm '\(root)/etc/more'
            mkdir -p '\(root)/newdir/deep' && echo x > '\(root)/newdir/deep/f'
            """)
        let changes = try await store.changes(in: c.id).map(\.description)
        #expect(changes == ["A /etc/added", "C /etc", "C /etc/greeting", "D /etc/more", "A /newdir", "A /newdir/deep", "A /newdir/deep/f"].sorted {
            $0.dropFirst(2) < $1.dropFirst(2)
        })
        let committed = try await store.commit(c.id, options: CommitOptions(message: "msg", author: "Ada", edits: [.env(key: "MODE", value: "prod"), .cmd(["/bin/true"])], reference: "diff/app:1"))
        let details = try await store.inspect("diff/app:1")
        #expect(details.config.config?.Env?.contains("MODE=prod") == true)
        #expect(details.config.config?.Cmd == ["/bin/true"])
        #expect(details.config.history?.last?.comment == "msg")
        #expect(details.config.author == "Ada")
        #expect(try await store.lineage(of: "diff/app:1").map(\.id) == [committed.id, base])
        let hist = try await store.history(of: "diff/app:1")
        #expect(hist.first?.id == committed.id && hist.first?.comment == "msg")
        #expect(hist.dropFirst().first?.id == base)

        // podman agrees: load the save, diff the image against its parent layer.
        try await store.save(["diff/app:1"], to: dir.file("app.tar"))
        let p = PodmanInteropTests.podman(dir)
        try sh(p + ["load", "-i", dir.file("app.tar").path])
        let theirs = try sh(p + ["diff", "diff/app:1"]).stdout.split(separator: "\n").map(String.init).sorted()
        #expect(theirs == changes.sorted(), "podman diff: \(theirs)")
        let podmanHistory = try sh(p + ["history", "--format", "{{.Comment}}", "diff/app:1"]).stdout.split(separator: "\n").first
        #expect(podmanHistory == "msg")

        // An empty diff: a history entry with empty_layer, no new layer.
        let c2 = try await store.createContainer(from: "diff/app:1", options: ContainerOptions(snapshotter: kind))
        let empty = try await store.commit(c2.id, options: CommitOptions(message: "nothing"))
        #expect(try await store.layers(of: empty.id.string).count == (try await store.layers(of: "diff/app:1").count))
        #expect(try await store.history(of: empty.id.string).first?.emptyLayer == true)
        for id in [c.id, c2.id] { _ = try await store.removeContainer(id) }
        #expect(try await store.check().clean)
    }

    /// Unpacking refuses entries that escape the rootfs, and writes nothing outside it.
    @Test func hostileLayersAreRefused() async throws {
        let dir = try TempDir()
        let outside = dir.file("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let cases: [(String, [(String, Data?)])] = [
            ("dotdot", [("../outside/evil", Data("x".utf8))]),
            ("absolute", [("\(outside.path)/evil", Data("x".utf8))]),
            ("symlink", [("link -> \(outside.path)", nil), ("link/evil", Data("x".utf8))]),
            ("relative-symlink", [("link -> ../../../../../../../../\(outside.path)", nil), ("link/evil", Data("x".utf8))]),
        ]
        for (name, members) in cases {
            let layer = dir.file("\(name).tar").path
            try ArchiveFixtures.tar(layer, members)
            let root = dir.file("root-\(name)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            do {
                try LayerUnpacker(root: root, overlayWhiteouts: geteuid() == 0).unpack(layer: layer, name: name)
                Issue.record("\(name): unpacked without error: \(listTree(root))")
            } catch let e as StrataError {
                #expect(e.code == .unsafePath, "\(name): \(e.message)")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "\(name) wrote outside")
        }
        // A hardlink whose target leaves the root.
        try bash("""
            cd '\(dir.path)' && python3 -c "
            import tarfile, io
            with tarfile.open('hard.tar', 'w') as t:
                i = tarfile.TarInfo('h'); i.type = tarfile.LNKTYPE; i.linkname = '../outside/secret'; t.addfile(i)
            "
            """)
        let root = dir.file("root-hard").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        #expect(throws: StrataError.self) {
            try LayerUnpacker(root: root, overlayWhiteouts: false).unpack(layer: dir.file("hard.tar").path, name: "hard")
        }
    }

    @Test func storeSettingChoosesTheSnapshotter() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "cfg/base:1")
        try await store.setDefaultSnapshotter(.copy)
        let c = try await store.createContainer(from: "cfg/base:1")
        #expect(c.snapshotter == .copy)
        #expect(FileManager.default.fileExists(atPath: store.root.appendingPathComponent("containers/\(c.id)/rootfs/bin/busybox").path))
        try await store.setDefaultSnapshotter(nil)
        #expect(try await store.defaultSnapshotter() == SnapshotterKind.preferred)
        _ = try await store.removeContainer(c.id)
    }

    @Test func removingTheSameContainerTwiceAtOnce() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "rm/base:1")
        let c = try await store.createContainer(from: "rm/base:1", options: ContainerOptions(snapshotter: .copy))
        let other = try await dir.store()
        async let a: String? = try? await store.removeContainer(c.id)
        async let b: String? = try? await other.removeContainer(c.id)
        let results = await [a, b]
        #expect(results.compactMap { $0 }.count == 1)
        await #expect { _ = try await store.removeContainer(c.id) } throws: { ($0 as? StrataError)?.code == .containerNotFound }
        #expect(try await store.containers().isEmpty)
    }

    @Test func rmiRefusesAnImageAContainerUses() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let image = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "busy/base:1")
        let c = try await store.createContainer(from: "busy/base:1", options: ContainerOptions(snapshotter: .copy))
        await #expect { _ = try await store.removeImage("busy/base:1") } throws: {
            ($0 as? StrataError)?.message.contains("container \(c.id.prefix(12)) is using its referenced image") == true
        }
        // A second tag goes without force, as in Docker: the image keeps a name.
        try await store.tag("busy/base:1", as: "busy/other:2")
        #expect(try await store.removeImage("busy/other:2") == [.untagged("busy/other:2")])
        #expect(try await store.removeImage("busy/base:1", force: true) == [.untagged("busy/base:1")])
        // The image stays for the container; gc keeps it too.
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await store.images(all: true).map(\.id) == [image.id])
        _ = try await store.removeContainer(c.id)
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await store.images(all: true).isEmpty)
    }
}

@Suite struct CopyTests {
    /// `cp` resolves container paths inside the root: a symlink pointing out leads back in.
    @Test(arguments: [SnapshotterKind.copy, .overlay])
    func copyNeverEscapesTheRoot(_ kind: SnapshotterKind) async throws {
        if kind == .overlay && SnapshotterKind.preferred != .overlay { return }
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "cp/base:1")
        let c = try await store.createContainer(from: "cp/base:1", options: ContainerOptions(snapshotter: kind))
        let root = try await store.mountContainer(c.id)
        let outside = dir.file("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        // Symlinks that would point out of the container on the host.
        #expect(symlink(outside.path, root + "/abs") == 0)
        #expect(symlink("../../../../../../../../../../" + outside.path, root + "/rel") == 0)
        try Data("host file\n".utf8).write(to: dir.file("src.txt"))
        // Where the links lead inside the container: absent first, so the copy fails cleanly.
        await #expect(throws: StrataError.self) { try await store.copy(intoContainer: c.id, from: dir.file("src.txt").path, to: "/abs/evil.txt") }
        try FileManager.default.createDirectory(atPath: root + outside.path, withIntermediateDirectories: true)
        try await store.copy(intoContainer: c.id, from: dir.file("src.txt").path, to: "/abs/evil.txt")
        try await store.copy(intoContainer: c.id, from: dir.file("src.txt").path, to: "/rel/evil2.txt")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
        #expect(FileManager.default.fileExists(atPath: root + outside.path + "/evil.txt"))
        #expect(FileManager.default.fileExists(atPath: root + outside.path + "/evil2.txt"))
        // Into a directory, and back out.
        try await store.copy(intoContainer: c.id, from: dir.file("src.txt").path, to: "/etc")
        #expect(try String(contentsOfFile: root + "/etc/src.txt", encoding: .utf8) == "host file\n")
        try await store.copy(fromContainer: c.id, path: "/etc/passwd", to: dir.file("passwd.out").path)
        #expect(try String(contentsOf: dir.file("passwd.out"), encoding: .utf8).hasPrefix("root:x:0:0"))
        // Out through a symlink: resolved in the container, not on the host.
        #expect(symlink("/etc", root + "/etclink") == 0)
        try await store.copy(fromContainer: c.id, path: "/etclink/passwd", to: dir.file("via-link").path)
        #expect(try String(contentsOf: dir.file("via-link"), encoding: .utf8).hasPrefix("root:x:0:0:root:/root:/bin/sh"))
        #expect(try await store.changes(in: c.id).map(\.description).contains("A /etc/src.txt"))
        _ = try await store.removeContainer(c.id)
    }
}

@Suite struct VolumeTests {
    @Test func volumesOutliveContainersAndGoOnlyWhenUnused() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "vol/base:1")
        let a = try await store.createContainer(from: "vol/base:1", options: ContainerOptions(snapshotter: .copy, volumes: [try VolumeMount(parsing: "shared:/data")]))
        let b = try await store.createContainer(from: "vol/base:1", options: ContainerOptions(snapshotter: .copy, volumes: [try VolumeMount(parsing: "shared:/data"), try VolumeMount(parsing: "mine:/mine")]))
        try Data("kept\n".utf8).write(to: URL(fileURLWithPath: try await store.volume("shared").mountpoint + "/f"))
        #expect(Set(try await store.volumes().map(\.name)) == ["shared", "mine"])
        await #expect { try await store.removeVolumes(["shared"]) } throws: { ($0 as? StrataError)?.code == .conflict }
        #expect(try await store.pruneVolumes().isEmpty)
        // rm -v: named volumes stay, as under dockerd (only anonymous ones go).
        _ = try await store.removeContainer(b.id, removeVolumes: true)
        #expect(try await store.volumes().map(\.name) == ["mine", "shared"])
        _ = try await store.removeContainer(a.id)
        #expect(try String(contentsOfFile: try await store.volume("shared").mountpoint + "/f", encoding: .utf8) == "kept\n")
        // A plain prune keeps named volumes; `all` takes them.
        #expect(try await store.pruneVolumes(VolumePruneOptions()).removed.isEmpty)
        #expect(try await store.pruneVolumes() == ["mine", "shared"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.root.appendingPathComponent("volumes").path).isEmpty)
        #expect(throws: StrataError.self) { try VolumeMount(parsing: "../x:/data") }
        #expect(throws: StrataError.self) { try VolumeMount(parsing: "x:relative") }
    }

    /// A container being created leases its volumes until its row names them: a prune (from
    /// cron, in another process) in between skips them; a `volume rm` that names one takes it
    /// (a lease a killed process left must not keep a volume until it expires).
    @Test func leasedVolumesAreNotPruned() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.createVolume("fresh", labels: [VolumeInfo.anonymousLabel: ""])
        let lease = try await store.createLease("container create", refs: ["fresh"], kind: "volume")
        #expect(try await store.pruneVolumes().isEmpty)
        #expect(try await store.pruneVolumes(VolumePruneOptions()).removed.isEmpty)
        await store.dropLease(lease)
        #expect(try await store.pruneVolumes(VolumePruneOptions()).removed == ["fresh"])
        _ = try await store.createVolume("named")
        _ = try await store.createLease("container create", refs: ["named"], kind: "volume")
        #expect(try await store.pruneVolumes().isEmpty)
        #expect(try await store.removeVolumes(["named"]) == ["named"])
    }

    /// `-v` as docker reads it: `/path` alone is a new anonymous volume, a mode may follow.
    @Test func mountSpecs() throws {
        let anon = try VolumeMount(parsing: "/data/./x/")
        #expect(anon.anonymous == true && anon.source == "" && anon.destination == "/data/x" && !anon.isReadOnly)
        let ro = try VolumeMount(parsing: "/cache:ro")
        #expect(ro.anonymous == true && ro.destination == "/cache" && ro.isReadOnly)
        let bind = try VolumeMount(parsing: "/host/dir:/in:ro,z")
        #expect(bind.isBind && bind.destination == "/in" && bind.mode == "ro,z" && bind.isReadOnly && bind.anonymous == nil)
        let named = try VolumeMount(parsing: "db:/var/lib/db:nocopy")
        #expect(!named.isBind && named.source == "db" && named.isNoCopy && !named.isReadOnly)
        for bad in ["/", "x:/", "relative", "x:/d:rw,ro", "x:/d:shared", "/h:/d:nocopy", ":/d", "x:/d:"] {
            #expect(throws: StrataError.self, "\(bad)") { try VolumeMount(parsing: bad) }
        }
    }

    /// The image's VOLUME paths and `-v /path` get anonymous volumes filled from the image
    /// (owner, mode and content, as dockerd's copy-up); a named volume is filled only while
    /// empty; `rm -v` takes the anonymous ones and leaves named ones; a create refused for
    /// a volume over a file makes no volume.
    @Test func anonymousVolumesAndCopyUp() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        try bash("""
            r=$(mktemp -d "\(dir.path)/r.XXXX")
            mkdir -p "$r/bin" "$r/etc" "$r/srv/sub"
            cp /bin/busybox "$r/bin/busybox"
            echo seed > "$r/srv/f"; ln -s f "$r/srv/link"; ln "$r/srv/f" "$r/srv/hard"
            chown 1000:1001 "$r/srv"; chmod 2750 "$r/srv"; chown 5:6 "$r/srv/sub"
            echo conf > "$r/etc/conf"
            tar -C "$r" -cf "\(dir.path)/vol.tar" .
            """)
        _ = try await store.importRootfs(from: dir.file("vol.tar"), reference: "vol/img:1",
                                         options: ImportOptions(edits: [.volume("/srv/"), .volume("/empty")]))
        let c = try await store.createContainer(from: "vol/img:1", options: ContainerOptions(volumes: [try VolumeMount(parsing: "/extra")]))
        let mounts = try #require(c.volumes)
        #expect(mounts.map(\.destination) == ["/extra", "/empty", "/srv"])
        #expect(mounts.allSatisfy { $0.anonymous == true && $0.source.count == 64 })
        let volumes = try await store.volumes()
        #expect(volumes.count == 3 && volumes.allSatisfy { $0.isAnonymous && $0.containers == [c.id] })
        let srv = try await store.volume(mounts[2].source).mountpoint
        let root = try #require(FileMeta.of(srv))
        #expect((root.uid, root.gid, root.mode & 0o7777) == (1000, 1001, 0o2750))
        #expect(try String(contentsOfFile: srv + "/f", encoding: .utf8) == "seed\n")
        #expect(FileMeta.of(srv + "/link")?.linkTarget == "f" && FileMeta.of(srv + "/sub")?.uid == 5)
        var a = stat(), b = stat()
        #expect(stat(srv + "/f", &a) == 0 && stat(srv + "/hard", &b) == 0 && a.st_ino == b.st_ino)
        #expect(directoryEntries(try await store.volume(mounts[1].source).mountpoint).isEmpty)

        // A named volume: filled while empty, left alone once it holds something.
        let n1 = try await store.createContainer(from: "vol/img:1", options: ContainerOptions(volumes: [try VolumeMount(parsing: "named:/srv")]))
        #expect(n1.volumes?.map(\.destination) == ["/srv", "/empty"])  // the asked-for first
        let named = try await store.volume("named").mountpoint
        #expect(try String(contentsOfFile: named + "/f", encoding: .utf8) == "seed\n")
        try FileManager.default.removeItem(atPath: named + "/f")
        try "mine\n".write(toFile: named + "/own", atomically: true, encoding: .utf8)
        let n2 = try await store.createContainer(from: "vol/img:1", options: ContainerOptions(volumes: [try VolumeMount(parsing: "named:/srv")]))
        #expect(FileMeta.of(named + "/f") == nil)
        // nocopy: an empty volume stays empty.
        _ = try await store.createContainer(from: "vol/img:1", options: ContainerOptions(volumes: [try VolumeMount(parsing: "bare:/srv:nocopy")]))
        #expect(directoryEntries(try await store.volume("bare").mountpoint).isEmpty)

        // rm -v: the anonymous volumes go, the named one stays.
        _ = try await store.removeContainer(c.id, removeVolumes: true)
        _ = try await store.removeContainer(n1.id, removeVolumes: true)
        #expect(Set(try await store.volumes().filter { !$0.containers.isEmpty || !$0.isAnonymous }.map(\.name)).isSuperset(of: ["named", "bare"]))
        #expect(try await store.volumes().contains { $0.name == mounts[0].source } == false)

        // Refused at create: a volume over a file, a mount point twice. Nothing is made.
        let before = try await store.volumes()
        await #expect { try await store.createContainer(from: "vol/img:1", options: ContainerOptions(volumes: [try VolumeMount(parsing: "fresh:/data"), try VolumeMount(parsing: "/etc/conf")])) }
            throws: { ($0 as? StrataError)?.message.contains("cannot mount volume over existing file") == true }
        await #expect { try await store.createContainer(from: "vol/img:1", options: ContainerOptions(volumes: [try VolumeMount(parsing: "x:/d"), try VolumeMount(parsing: "/tmp:/d/")])) }
            throws: { ($0 as? StrataError)?.message.contains("duplicate mount point: /d") == true }
        #expect(try await store.volumes() == before)
        #expect(try await store.containers().count == 2)

        // A build step's container takes no volumes of the store.
        var plain = ContainerOptions()
        plain.imageVolumes = false
        #expect(try await store.createContainer(from: "vol/img:1", options: plain).volumes == nil)

        // Labels, and a prune that takes only unused anonymous volumes unless told `all`: n2's
        // anonymous volume, which a plain rm left.
        _ = try await store.removeContainer(n2.id)
        let left = try #require(n2.volumes?.last?.source)
        _ = try await store.createVolume("labelled", labels: ["team": "db", "tier": ""])
        #expect(try await store.volume("labelled").labels == ["team": "db", "tier": ""])
        #expect(try await store.volumes(filters: VolumeFilters(labels: ["team=db", "tier"])).map(\.name) == ["labelled"])
        #expect(try await store.volumes(filters: VolumeFilters(labels: ["team=web"])).isEmpty)
        let pruned = try await store.pruneVolumes(VolumePruneOptions())
        #expect(pruned.removed == [left], "\(pruned)")
        #expect(try await store.volumes().filter(\.containers.isEmpty).map(\.name) == ["labelled", "named"])
        #expect(try await store.pruneVolumes(VolumePruneOptions(all: true, notLabels: ["team=db"])).removed == ["named"])
        #expect(try await store.pruneVolumes(VolumePruneOptions(all: true, labels: ["team"])).removed == ["labelled"])
    }
}
