import Foundation
import Testing
@testable import Strata
@testable import StrataBuild

/// Ground truth: the same context built by `buildah bud --isolation chroot` gives the same
/// root filesystem (both unpacked by umoci) and the same runtime config.
@Suite("BuilderInterop", .serialized)
struct BuilderInteropTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var files: [String: String]
        var setup: String = ""
        var dockerfile: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "copy-env-workdir-user-label", files: ["f": "hello\n", "d/one": "1\n", "d/sub/two": "2\n", "x.txt": "x\n", "y.txt": "y\n"],
             dockerfile: """
                FROM base:1
                ENV A=b C="d e"
                WORKDIR /app
                COPY f .
                COPY d /data/
                COPY *.txt /texts/
                COPY --chown=app:staff f /owned
                USER app
                LABEL k=v "x y"=z
                EXPOSE 80 53/udp
                VOLUME /vol
                STOPSIGNAL SIGKILL
                ENTRYPOINT ["/bin/sh", "-c"]
                CMD ["echo $A"]
                """),
        Case(name: "add-archives", files: ["t/a/one": "1\n", "t/two": "2\n", "plain": "p\n"],
             setup: "tar -C t -czf t.tar.gz . && rm -rf t",
             dockerfile: """
                FROM base:1
                ADD t.tar.gz /x/
                ADD plain /p
                WORKDIR /w
                CMD sh
                """),
        Case(name: "chown-chmod-directories", files: ["f": "a\n", "d/sub/g": "b\n", "d/h": "c\n"],
             setup: "chmod 750 d && chmod 600 d/h",
             dockerfile: """
                FROM base:1
                COPY --chmod=640 f /m/f
                COPY --chown=1:2 d /dd
                COPY d /e/
                COPY --chown=app f d/h /multi/
                RUN mkdir -p /e/new && touch /e/new/file && rm /e/h
                """),
        Case(name: "dockerignore-globs-expansion",
             files: ["a.md": "a\n", "README.md": "r\n", "README-secret.md": "s\n", "src/x.go": "x\n", "src/y.txt": "y\n",
                     "tmp/junk": "j\n", "keep/tmp/kept": "k\n", ".dockerignore": "*.md\n!README*.md\nREADME-secret.md\ntmp\n**/*.txt\n"],
             dockerfile: """
                FROM base:1
                ARG DEST=/ctx
                ENV SUB=src
                COPY . $DEST/
                COPY ${SUB}/*.go /go/
                COPY R*.md /docs/
                WORKDIR ${DEST}/w
                LABEL dest=$DEST sub=${SUB:-none} other=${NOPE:-dflt}
                """),
        Case(name: "multistage-run", files: ["src": "source\n"],
             dockerfile: """
                FROM base:1 AS build
                ARG V=7
                COPY src /src
                RUN mkdir -p /out && cat /src > /out/built && echo $V >> /out/built && chmod 700 /out
                FROM base:1
                ENV P=/opt
                RUN mkdir -p $P/bin && echo run > $P/bin/tool && rm /bin/ls
                COPY --from=build /out /opt/out
                WORKDIR $P
                USER 1000:1000
                ENTRYPOINT /opt/bin/tool
                """),
    ]

    @Test(arguments: cases)
    func sameResultAsBuildah(_ c: Case) async throws {
        guard BuildPeer.canRun, BuildPeer.require("buildah", "umoci") else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(c.files.merging(["Dockerfile": c.dockerfile]) { $1 }, in: "ctx")
        if !c.setup.isEmpty { try buildShell(c.setup, cwd: dir.file("ctx")) }

        // buildah: the same base rootfs, then bud with chroot isolation; export as an OCI layout.
        let b = "buildah --root '\(dir.file("bh-root"))' --runroot '\(dir.file("bh-run"))' --storage-driver vfs"
        try buildShell("""
            c=$(\(b) from scratch)
            \(b) add "$c" '\(dir.file("base-rootfs.tar"))' / >/dev/null
            \(b) commit -q "$c" base:1 >/dev/null
            \(b) bud --isolation chroot -q -t out:1 '\(dir.file("ctx"))' >/dev/null
            \(b) push -q out:1 oci:'\(dir.file("bh-layout"))':out
            umoci unpack --image '\(dir.file("bh-layout"))':out '\(dir.file("bh-bundle"))' >/dev/null
            """)
        // strata: build, save as an OCI layout, unpack with the same umoci.
        let result = try await Builder(store: store).build(dir.file("ctx"), c.dockerfile, log: BuildLog(), tags: ["out:1"])
        try await store.save(["out:1"], to: URL(fileURLWithPath: dir.file("st-layout")), format: .ociDirectory)
        let refName = try Self.refName(dir.file("st-layout"))
        try buildShell("umoci unpack --image '\(dir.file("st-layout"))':'\(refName)' '\(dir.file("st-bundle"))' >/dev/null")

        let ours = try Self.tree(dir.file("st-bundle/rootfs"))
        let theirs = try Self.tree(dir.file("bh-bundle/rootfs"))
        for (path, entry) in theirs.sorted(by: { $0.key < $1.key }) where ours[path] != entry {
            Issue.record("\(c.name): \(path): buildah \(entry), strata \(ours[path] ?? "missing")")
        }
        for path in ours.keys.sorted() where theirs[path] == nil {
            Issue.record("\(c.name): \(path): only in strata (\(ours[path] ?? ""))")
        }

        let mine = try Self.config(try await store.imageConfigData(result.imageID))
        let bh = try Self.config(try Data(contentsOf: URL(fileURLWithPath: try Self.configPath(dir.file("bh-layout")))))
        for key in ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes", "StopSignal"] {
            #expect(mine[key] == bh[key], "\(c.name): config \(key): buildah \(bh[key] ?? "nil"), strata \(mine[key] ?? "nil")")
        }
    }

    /// path → "type mode uid:gid size content-hash|link-target", minus what chroot isolation leaves.
    static func tree(_ root: String) throws -> [String: String] {
        var out: [String: String] = [:]
        let ignoredDirs: Set<String> = ["dev", "proc", "sys", "run"]
        let ignoredEmpty: Set<String> = ["etc/hosts", "etc/resolv.conf", "etc/hostname"]
        func walk(_ rel: String) throws {
            let full = rel.isEmpty ? root : root + "/" + rel
            for name in try FileManager.default.contentsOfDirectory(atPath: full).sorted() {
                let r = rel.isEmpty ? name : rel + "/" + name
                if ignoredDirs.contains(r) { continue }
                guard let m = FileMeta.of(root + "/" + r) else { continue }
                if ignoredEmpty.contains(r), m.kind == .file, m.size == 0 { continue }
                var line = "\(m.kind) \(String(m.mode, radix: 8)) \(m.uid):\(m.gid)"
                switch m.kind {
                case .file: line += " \(m.size) " + (try SourceTree.fileHash(root + "/" + r))
                case .symlink: line += " -> " + (m.linkTarget ?? "")
                default: break
                }
                out[r] = line
                if m.kind == .directory { try walk(r) }
            }
        }
        try walk("")
        return out
    }

    /// The runtime config's fields as comparable JSON text (io.buildah.version label dropped).
    static func config(_ data: Data) throws -> [String: String] {
        let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        var c = root["config"] as? [String: Any] ?? [:]
        if var labels = c["Labels"] as? [String: Any] {
            labels.removeValue(forKey: "io.buildah.version")
            c["Labels"] = labels.isEmpty ? nil : labels
        }
        var out: [String: String] = [:]
        for (k, v) in c {
            if let s = v as? String, s.isEmpty { continue }
            if let a = v as? [Any], a.isEmpty { continue }
            if let o = v as? [String: Any], o.isEmpty { continue }
            let d = try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed])
            out[k] = String(decoding: d, as: UTF8.self)
        }
        return out
    }

    /// The ref name of the single image in an OCI layout's index.json.
    static func refName(_ layout: String) throws -> String {
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let m = (index?["manifests"] as? [[String: Any]])?.first
        return (m?["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] ?? "latest"
    }

    /// The config blob path of the single image in an OCI layout.
    static func configPath(_ layout: String) throws -> String {
        func blob(_ digest: String) -> String { layout + "/blobs/sha256/" + digest.dropFirst("sha256:".count) }
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let md = ((index?["manifests"] as? [[String: Any]])?.first?["digest"] as? String) ?? ""
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: blob(md)))) as? [String: Any]
        return blob(((manifest?["config"] as? [String: Any])?["digest"] as? String) ?? "")
    }
}
