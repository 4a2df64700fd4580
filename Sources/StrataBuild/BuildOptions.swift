import Foundation
import OCI
import Strata

/// How ``Builder/build(context:dockerfile:options:)`` builds, as `strata build`'s flags.
///
/// ```swift
/// var options = BuildOptions(tags: ["app:1"])
/// options.buildArgs = ["VERSION": "1.2"]
/// options.timestamp = 1_700_000_000          // reproducible: SOURCE_DATE_EPOCH
/// let result = try await Builder(store: store).build(context: "/src/app", options: options)
/// ```
public struct BuildOptions: Sendable {
    /// Names to tag the result with (`-t`).
    public var tags: [String]
    /// `--build-arg K=V` values.
    public var buildArgs: [String: String]
    /// Build up to this stage (`--target`): a stage name or index.
    public var target: String?
    /// Never use the cache (`--no-cache`); results are still recorded.
    public var noCache: Bool
    /// The platform of `FROM scratch` images and of images to pull (default: the host's).
    public var platform: Platform?
    /// SOURCE_DATE_EPOCH / `--timestamp`: every image and history entry gets this creation
    /// time and no layer entry is newer, so the same inputs give the same image ID.
    public var timestamp: Int64?
    /// Fetches an image `FROM` names that the store lacks (the CLI passes a registry pull);
    /// nil: a missing image is an error that says how to pull it.
    public var pull: (@Sendable (String, Platform?) async throws -> Digest)?
    /// Receives the classic output lines (`Step 1/4 : FROM busybox`, ` ---> 3286931702ad`, …).
    public var log: @Sendable (String) -> Void
    /// Where RUN steps' output goes (nil: discarded, as `-q`).
    public var runOutput: FileHandle?
    /// `--secret id=ID,src=PATH`: host files `RUN --mount=type=secret,id=ID` mounts read-only
    /// (default target /run/secrets/ID). Their content never enters a layer, the history or a
    /// cache key.
    public var secrets: [String: String] = [:]

    public init(tags: [String] = [], buildArgs: [String: String] = [:], target: String? = nil, noCache: Bool = false,
                platform: Platform? = nil, timestamp: Int64? = nil,
                pull: (@Sendable (String, Platform?) async throws -> Digest)? = nil,
                log: @escaping @Sendable (String) -> Void = { _ in }, runOutput: FileHandle? = nil) {
        self.tags = tags
        self.buildArgs = buildArgs
        self.target = target
        self.noCache = noCache
        self.platform = platform
        self.timestamp = timestamp
        self.pull = pull
        self.log = log
        self.runOutput = runOutput
    }
}

extension BuildOptions {
    /// `--secret` values (`id=ID,src=PATH`, `source=` too) as ``secrets``; the file must exist.
    public static func parseSecrets(_ specs: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for spec in specs {
            var fields: [String: String] = [:]
            for part in spec.split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                fields[kv[0].lowercased()] = kv.count > 1 ? kv[1] : ""
            }
            guard let id = fields["id"], !id.isEmpty, let src = fields["src"] ?? fields["source"], !src.isEmpty else {
                throw StrataError(.invalidArgument, "invalid --secret \"\(spec)\": use id=ID,src=PATH")
            }
            guard FileManager.default.isReadableFile(atPath: src) else {
                throw StrataError(.invalidArgument, "--secret \(id): cannot read \(src)")
            }
            out[id] = src.hasPrefix("/") ? src : FileManager.default.currentDirectoryPath + "/" + src
        }
        return out
    }
}

/// What a build made.
public struct BuildResult: Sendable, Codable, Hashable {
    /// The final image's ID.
    public var imageID: Digest
    /// The tags now naming it, in familiar form.
    public var tags: [String]
    /// Steps run, and of those how many came from the cache.
    public var steps: Int
    public var cachedSteps: Int
    /// `--build-arg` names no ARG consumed.
    public var unusedBuildArgs: [String]
}

/// Docker's predefined build args: usable with `--build-arg` without an `ARG`, passed to
/// RUN, and left out of the history and cache key.
let predefinedArgs: Set<String> = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"]
