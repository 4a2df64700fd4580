import Foundation
import Testing
@testable import Strata

/// Ground truth from real peers: umoci builds the image, skopeo converts it.
@Suite struct InteropTests {
    struct SourceImage {
        var config: ImageConfig
        var configDigest: Digest
    }

    /// Reads the config that umoci wrote for tag `img` in an OCI layout.
    static func sourceImage(layout: String) throws -> SourceImage {
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json")))
        let md = try #require(index.manifests.first?.digest)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + md.encoded)))
        let configData = try Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + manifest.config.digest.encoded))
        return SourceImage(config: try ImageConfig.decode(configData), configDigest: manifest.config.digest)
    }

    @Test func umociImageThroughSkopeoLoadsWithSameDiffIDsConfigAndHistory() async throws {
        guard Peer.require("umoci", "skopeo") else { return }
        let dir = try TempDir()
        let layout = try Fixtures.umociImage(in: dir)
        let src = try Self.sourceImage(layout: layout)
        #expect(src.config.rootfs.diffIDs.count == 2)
        try sh(["skopeo", "copy", "-q", "oci:\(layout):img", "docker-archive:\(dir.path)/d.tar:umoci/app:1"])
        try sh(["skopeo", "copy", "-q", "oci:\(layout):img", "oci-archive:\(dir.path)/o.tar:umoci/app:2"])
        try sh(["skopeo", "copy", "-q", "--dest-compress-format", "zstd", "--dest-compress", "oci:\(layout):img", "oci:\(dir.path)/zlayout:z"])

        for (input, tag) in [("d.tar", "umoci/app:1"), ("o.tar", nil), ("zlayout", nil), ("layout", nil)] {
            let store = try await dir.store("s-\(input)")
            let loaded = try await store.load(from: dir.file(input))
            #expect(loaded.count == 1)
            let image = try #require(loaded.first)
            // Same config bytes ⇒ same image ID as the source.
            #expect(image.id == src.configDigest, "\(input)")
            if let tag { #expect(image.tags == [tag]) }
            let layers = try await store.layers(of: image.id.string)
            #expect(layers.map(\.diffID) == src.config.rootfs.diffIDs, "\(input)")
            let details = try await store.inspect(image.id.string)
            #expect(details.config == src.config)
            let history = try await store.history(of: image.id.string)
            #expect(history.map(\.createdBy) == (src.config.history ?? []).reversed().map { $0.createdBy ?? "" })
            #expect(history.map(\.emptyLayer) == (src.config.history ?? []).reversed().map { $0.emptyLayer ?? false })
            if input == "zlayout" { #expect(layers.allSatisfy { $0.blobs.first?.compression == "zstd" }) }
        }
    }

    @Test func strataSaveLoadsIntoSkopeoAndUmociUnpacksIt() async throws {
        guard Peer.require("umoci", "skopeo") else { return }
        let dir = try TempDir()
        let layout = try Fixtures.umociImage(in: dir)
        let src = try Self.sourceImage(layout: layout)
        let store = try await dir.store()
        _ = try await store.load(from: URL(fileURLWithPath: layout))
        try await store.tag(src.configDigest.string, as: "example/app:1")

        for format in [ArchiveFormat.docker, .ociArchive] {
            let out = dir.file("out-\(format.rawValue).tar")
            try await store.save(["example/app:1"], to: out, format: format)
            let transport = format == .docker ? "docker-archive:\(out.path)" : "oci-archive:\(out.path)"
            let copy = dir.file("copy-\(format.rawValue)").path
            try sh(["skopeo", "copy", "-q", transport, "oci:\(copy):x"])
            let got = try Self.sourceImage(layout: copy)
            // skopeo re-encodes a Docker config when it writes OCI, so compare content there.
            if format == .ociArchive { #expect(got.configDigest == src.configDigest) }
            #expect(got.config.rootfs == src.config.rootfs, "\(format)")
            #expect(got.config.history == src.config.history, "\(format)")
            try sh(["umoci", "unpack", "--image", "\(copy):x", dir.file("unpacked-\(format.rawValue)").path])
            let greeting = try String(contentsOf: dir.file("unpacked-\(format.rawValue)/rootfs/etc/greeting"), encoding: .utf8)
            #expect(greeting == "hello\n")
            #expect(!FileManager.default.fileExists(atPath: dir.file("unpacked-\(format.rawValue)/rootfs/data/old").path))
        }
        // oci-dir is a layout umoci reads directly; the ref name is the full reference.
        let ociDir = dir.file("ocidir")
        try await store.save(["example/app:1"], to: ociDir, format: .ociDirectory)
        try sh(["umoci", "unpack", "--image", "\(ociDir.path):docker.io/example/app:1", dir.file("unpacked-dir").path])
        #expect(FileManager.default.fileExists(atPath: dir.file("unpacked-dir/rootfs/etc/more").path))
    }
}
