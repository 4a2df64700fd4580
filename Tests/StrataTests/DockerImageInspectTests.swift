import Foundation
import Testing
@testable import Strata

/// `docker image inspect` fields whose rule is dockerd's own, not a copy of the config:
/// moby's image route takes `Comment` from the config's top-level `comment` and falls back to
/// the last history step's comment, and leaves `RootFS.Layers` out when there is none.
/// (podman 4.3's compat API gets both wrong, so tools/engine-parity cannot be the judge.)
@Suite struct DockerImageInspectTests {
    static func details(_ configJSON: String) throws -> ImageDetails {
        let config = try JSONDecoder().decode(ImageConfig.self, from: Data(configJSON.utf8))
        let id = Digest.sha256(Data(configJSON.utf8))
        return ImageDetails(id: id, repoTags: [], repoDigests: [], parent: nil, manifestDigest: id, indexDigest: nil,
                            size: 0, configData: Data(configJSON.utf8), config: config)
    }

    static func json(_ d: ImageDetails) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(d.docker)) as? [String: Any])
    }

    @Test func commentIsTheConfigsOwnThenTheLastStep() throws {
        // docker import -m sets both; a later step keeps the config's own.
        let own = try Self.details("""
            {"comment":"imported from x","rootfs":{"type":"layers","diff_ids":[]},
             "history":[{"comment":"imported from x"},{"created_by":"RUN true","comment":"buildkit.dockerfile.v0"}]}
            """)
        #expect(try Self.json(own)["Comment"] as? String == "imported from x")
        // BuildKit and docker commit -m: only the history has one; the last step's is shown.
        let step = try Self.details("""
            {"rootfs":{"type":"layers","diff_ids":[]},
             "history":[{"comment":"first"},{"created_by":"RUN true","comment":"buildkit.dockerfile.v0"}]}
            """)
        #expect(try Self.json(step)["Comment"] as? String == "buildkit.dockerfile.v0")
        // An empty own comment falls back too; no history: empty.
        let empty = try Self.details(#"{"comment":"","rootfs":{"type":"layers","diff_ids":[]},"history":[{"comment":"c"}]}"#)
        #expect(try Self.json(empty)["Comment"] as? String == "c")
        let none = try Self.details(#"{"rootfs":{"type":"layers","diff_ids":[]}}"#)
        #expect(try Self.json(none)["Comment"] as? String == "")
    }

    @Test func noLayersLeavesLayersOut() throws {
        let empty = try Self.json(Self.details(#"{"rootfs":{"type":"layers","diff_ids":[]}}"#))
        let rootfs = try #require(empty["RootFS"] as? [String: Any])
        #expect(rootfs["Type"] as? String == "layers")
        #expect(rootfs["Layers"] == nil)
        let diff = "sha256:" + String(repeating: "a", count: 64)
        let one = try Self.json(Self.details(#"{"rootfs":{"type":"layers","diff_ids":["\#(diff)"]}}"#))
        #expect((one["RootFS"] as? [String: Any])?["Layers"] as? [String] == [diff])
    }
}
