import Foundation
@testable import Strata

/// Layers made by GNU tar from real directories (whiteouts are `.wh.` files, as the OCI spec
/// writes them), wrapped in a legacy docker-archive that strata, dive and skopeo all read.
enum IndexFixtures {
    /// Runs `script` (bash, as root) in an empty directory and tars the result with GNU tar:
    /// entries sorted, no `./` prefix, owners numeric. `format`: gnu, pax, ustar.
    static func layer(_ dir: TempDir, _ script: String, format: String = "gnu") throws -> URL {
        let name = "layer-\(UUID().uuidString.prefix(8))"
        let src = dir.file(name).path
        let out = dir.file(name + ".tar")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        _ = try bash(script, cwd: src)
        _ = try bash("""
            cd "\(src)"
            find . -mindepth 1 | sed 's|^\\./||' | LC_ALL=C sort > "\(src).list"
            tar --format=\(format) --numeric-owner --no-recursion -cf "\(out.path)" -T "\(src).list"
            """)
        return out
    }

    /// A legacy docker-archive (`manifest.json`, `<hex>.json`, `<n>.tar`) of these layers.
    static func dockerArchive(_ dir: TempDir, layers: [URL], tag: String, steps: [String]? = nil) throws -> URL {
        let name = "archive-\(UUID().uuidString.prefix(8))"
        let stage = dir.file(name)
        try FileManager.default.createDirectory(at: stage, withIntermediateDirectories: true)
        var diffIDs: [String] = []
        var names: [String] = []
        for (i, l) in layers.enumerated() {
            let data = try Data(contentsOf: l)
            diffIDs.append(Digest.sha256(data).string)
            names.append("\(i).tar")
            try data.write(to: stage.appendingPathComponent("\(i).tar"))
        }
        let history = (steps ?? layers.indices.map { "RUN step \($0)" }).map { ["created": "2024-01-02T03:04:05Z", "created_by": $0] }
        let config: [String: Any] = [
            "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z", "config": [String: Any](),
            "rootfs": ["type": "layers", "diff_ids": diffIDs], "history": history,
        ]
        let cdata = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
        let chex = Digest.sha256(cdata).encoded
        try cdata.write(to: stage.appendingPathComponent("\(chex).json"))
        let manifest: [[String: Any]] = [["Config": "\(chex).json", "RepoTags": [tag], "Layers": names]]
        try JSONSerialization.data(withJSONObject: manifest).write(to: stage.appendingPathComponent("manifest.json"))
        let out = dir.file(name + ".tar")
        try sh(["tar", "-C", stage.path, "-cf", out.path, "manifest.json", "\(chex).json"] + names)
        return out
    }

    /// What `dive --source docker-archive --ci --json` says about an archive.
    struct DiveReport: Decodable {
        struct Image: Decodable {
            var sizeBytes: Int64
            var inefficientBytes: Int64
            var efficiencyScore: Double
            var fileReference: [File]
        }
        struct File: Decodable, Hashable {
            var count: Int
            var sizeBytes: Int64
            var file: String
        }
        var image: Image
    }

    static func dive(_ archive: URL, in dir: TempDir) throws -> DiveReport {
        let out = dir.file("dive-\(UUID().uuidString.prefix(8)).json")
        try sh(["dive", "--source", "docker-archive", "--ci", "--json", out.path, archive.path], env: ["CI": "true"])
        return try JSONDecoder().decode(DiveReport.self, from: Data(contentsOf: out))
    }
}
