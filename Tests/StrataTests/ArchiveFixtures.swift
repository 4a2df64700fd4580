import Foundation
@testable import Strata

/// Hand-built archives for formats and hostile inputs, written with python's tarfile so
/// the bytes come from an implementation other than strata's.
enum ArchiveFixtures {
    /// Writes a tar whose members are given as (name, bytes) or ("name -> target", nil) symlinks.
    static func tar(_ path: String, _ members: [(String, Data?)], compress: String? = nil) throws {
        let dir = path + ".members"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var spec: [[String: String]] = []
        for (i, (name, data)) in members.enumerated() {
            if let data {
                let f = "\(dir)/\(i)"
                try data.write(to: URL(fileURLWithPath: f))
                spec.append(["name": name, "file": f])
            } else {
                let parts = name.components(separatedBy: " -> ")
                spec.append(["name": parts[0], "link": parts[1]])
            }
        }
        let specPath = dir + "/spec.json"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specPath))
        try sh(["python3", "-c", """
            import io, json, sys, tarfile
            spec = json.load(open(sys.argv[1]))
            with tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as t:
                for m in spec:
                    if "link" in m:
                        i = tarfile.TarInfo(m["name"]); i.type = tarfile.SYMTYPE; i.linkname = m["link"]
                        t.addfile(i)
                    else:
                        data = open(m["file"], "rb").read()
                        i = tarfile.TarInfo(m["name"]); i.size = len(data); i.mode = 0o644
                        t.addfile(i, io.BytesIO(data))
            """, specPath, path])
        if let compress {
            try sh([compress, "-q", "-f", path])
        }
    }

    /// A small layer tar holding one file.
    static func layer(_ name: String, _ content: String, in dir: TempDir) throws -> Data {
        let p = dir.file("layer-\(UUID().uuidString.prefix(8)).tar").path
        try tar(p, [(name, Data(content.utf8))])
        return try Data(contentsOf: URL(fileURLWithPath: p))
    }

    static func config(diffIDs: [Digest], history: [HistoryEntry]? = nil, arch: String = "amd64", created: String = "2024-01-02T03:04:05Z") throws -> Data {
        try CanonicalJSON.encode(ImageConfig(created: created, architecture: arch, os: "linux",
                                             rootfs: RootFS(diffIDs: diffIDs),
                                             history: history ?? diffIDs.map { HistoryEntry(created: created, createdBy: "ADD \($0.shortHex)") }))
    }

    /// A legacy docker-archive (`<id>/layer.tar`, `<hex>.json`, repositories) with two images
    /// sharing their base layer; the second image's base is a symlink, as `docker save` writes.
    static func legacyDockerArchive(_ path: String, in dir: TempDir) throws -> (base: Digest, app: Digest) {
        let l1 = try layer("etc/base", "base", in: dir)
        let l2 = try layer("etc/app", "app", in: dir)
        let d1 = Digest.sha256(l1), d2 = Digest.sha256(l2)
        let c1 = try config(diffIDs: [d1])
        let c2 = try config(diffIDs: [d1, d2], history: [
            HistoryEntry(created: "2024-01-02T03:04:05Z", createdBy: "ADD \(d1.shortHex)"),
            HistoryEntry(created: "2024-02-02T03:04:05Z", createdBy: "ADD \(d2.shortHex)"),
        ], created: "2024-02-02T03:04:05Z")
        let id1 = Digest.sha256(c1), id2 = Digest.sha256(c2)
        let manifest = """
            [{"Config":"\(id1.encoded).json","RepoTags":["base:1"],"Layers":["aaa/layer.tar"]},
             {"Config":"\(id2.encoded).json","RepoTags":["app:1","app:latest"],"Layers":["bbb/layer.tar","ccc/layer.tar"]}]
            """
        try tar(path, [
            ("aaa/layer.tar", l1), ("aaa/VERSION", Data("1.0".utf8)),
            ("bbb/layer.tar -> ../aaa/layer.tar", nil),
            ("ccc/layer.tar", l2),
            ("\(id1.encoded).json", c1), ("\(id2.encoded).json", c2),
            ("manifest.json", Data(manifest.utf8)),
            ("repositories", Data(#"{"base":{"1":"aaa"}}"#.utf8)),
        ])
        return (id1, id2)
    }

    /// An OCI layout tar whose index.json points at an image index with two platforms.
    static func multiPlatformArchive(_ path: String, in dir: TempDir) throws -> (amd64: Digest, arm64: Digest, index: Digest) {
        var members: [(String, Data?)] = [("oci-layout", Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))]
        var manifests: [Descriptor] = []
        var ids: [Digest] = []
        for arch in ["amd64", "arm64"] {
            let l = try layer("arch", arch, in: dir)
            let gz = dir.file("\(arch).tar").path
            try l.write(to: URL(fileURLWithPath: gz))
            try sh(["gzip", "-n", "-f", gz])
            let lgz = try Data(contentsOf: URL(fileURLWithPath: gz + ".gz"))
            let c = try config(diffIDs: [Digest.sha256(l)], arch: arch)
            let m = try CanonicalJSON.encode(Manifest(
                config: Descriptor(mediaType: MediaType.ociConfig, digest: .sha256(c), size: Int64(c.count)),
                layers: [Descriptor(mediaType: MediaType.ociLayerGzip, digest: .sha256(lgz), size: Int64(lgz.count))]))
            members += [("blobs/sha256/\(Digest.sha256(lgz).encoded)", lgz), ("blobs/sha256/\(Digest.sha256(c).encoded)", c),
                        ("blobs/sha256/\(Digest.sha256(m).encoded)", m)]
            manifests.append(Descriptor(mediaType: MediaType.ociManifest, digest: .sha256(m), size: Int64(m.count),
                                        platform: Platform(os: "linux", architecture: arch, variant: arch == "arm64" ? "v8" : nil)))
            ids.append(.sha256(c))
        }
        let index = try CanonicalJSON.encode(Index(manifests: manifests))
        members.append(("blobs/sha256/\(Digest.sha256(index).encoded)", index))
        let top = try CanonicalJSON.encode(Index(manifests: [Descriptor(
            mediaType: MediaType.ociIndex, digest: .sha256(index), size: Int64(index.count),
            annotations: [AnnotationKey.containerdImageName: "docker.io/library/multi:1", AnnotationKey.refName: "1"])]))
        members.append(("index.json", top))
        try tar(path, members)
        return (ids[0], ids[1], .sha256(index))
    }
}
