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
    /// `--label K=V`: labels of the built image, set by one more `LABEL` step at the end
    /// of the stage that is built (as the classic builder does).
    public var labels: [String: String] = [:]
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
    /// Where RUN steps' standard error goes, when apart from ``runOutput`` (the engine colours
    /// it, as dockerd does); nil: with the output.
    public var runErrors: FileHandle?
    /// `--cache-from`: when set, a cached step counts only when its image is one of these
    /// images or an ancestor of one, as dockerd's classic builder decides (a name that does
    /// not resolve is skipped; none that resolves: no cache at all). Nil: the whole cache.
    public var cacheFrom: [String]?
    /// `--add-host HOST:IP`: lines added to the /etc/hosts a RUN sees (never to the layer).
    public var extraHosts: [String] = []
    /// `--network`: RUN steps share the host's network (the default, as the classic builder's
    /// bridge reaches out), or get an empty network namespace of their own (`none`).
    public var hostNetwork: Bool = true
    /// Called with the built image's ID once the last step is done, before `Successfully
    /// built` is logged (the engine's `{"aux":{"ID":…}}` message comes there, as dockerd's).
    public var built: (@Sendable (Digest) -> Void)?
    /// `--secret`: by ID, the secrets `RUN --mount=type=secret,id=ID` mounts read-only
    /// (default target /run/secrets/ID) or puts in an environment variable (`env=`). Their
    /// content never enters a layer, the history or a cache key.
    public var secrets: [String: BuildSecret] = [:]
    /// `--ssh`: by ID (`default` when unnamed), the SSH agent socket `RUN --mount=type=ssh`
    /// binds into the step. The agent's keys never enter the build.
    public var sshAgents: [String: String] = [:]

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
    /// `--secret` values as BuildKit reads them: `id=ID,src=PATH` (or `source=`), a file;
    /// `id=ID,env=VAR`, the host variable VAR; `type=file|env` says which when only `id` is
    /// given, and without a type a bare `id=ID` is the variable ID when it is set, else the
    /// file ID. A file must be readable now; a variable must be set.
    public static func parseSecrets(_ specs: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: BuildSecret] {
        var out: [String: BuildSecret] = [:]
        for spec in specs {
            var fields: [String: String] = [:]
            for part in spec.split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                fields[kv[0].trimmingCharacters(in: .whitespaces).lowercased()] = kv.count > 1 ? kv[1] : ""
            }
            guard let id = fields["id"], !id.isEmpty else {
                throw StrataError(.invalidArgument, "invalid --secret \"\(spec)\": use id=ID,src=PATH or id=ID,env=VAR")
            }
            let type = fields["type"]?.lowercased()
            guard type == nil || type == "file" || type == "env" else {
                throw StrataError(.invalidArgument, "invalid --secret \"\(spec)\": type must be file or env")
            }
            let secret: BuildSecret
            if let name = fields["env"], type != "file" {
                secret = .environment(name)
            } else if let src = fields["src"] ?? fields["source"] {
                secret = type == "env" ? .environment(src) : .file(src)
            } else if type == "env" || (type == nil && environment[id] != nil) {
                secret = .environment(id)
            } else {
                secret = .file(id)
            }
            switch secret {
            case .file(let path):
                guard !path.isEmpty, FileManager.default.isReadableFile(atPath: path) else {
                    throw StrataError(.invalidArgument, "--secret \(id): cannot read \(path)")
                }
                out[id] = .file(path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path)
            case .environment(let name):
                guard let value = environment[name] else {
                    throw StrataError(.invalidArgument, "--secret \(id): the environment variable \(name) is not set")
                }
                out[id] = .value(Data(value.utf8))
            case .value:
                out[id] = secret
            }
        }
        return out
    }

    /// `--ssh` values as BuildKit reads them: `default`, or `ID`, is the agent at
    /// `$SSH_AUTH_SOCK`; `ID=SOCKET` names an agent socket. (BuildKit also takes key files;
    /// load them into an agent with `ssh-add` and give its socket.)
    public static func parseSSH(_ specs: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: String] {
        var out: [String: String] = [:]
        for spec in specs {
            let kv = spec.split(separator: "=", maxSplits: 1).map(String.init)
            let id = kv[0].isEmpty ? "default" : kv[0]
            var paths = kv.count > 1 ? kv[1].split(separator: ",").map(String.init) : []
            if paths.isEmpty {
                guard let sock = environment["SSH_AUTH_SOCK"], !sock.isEmpty else {
                    throw StrataError(.invalidArgument, "--ssh \(id): SSH_AUTH_SOCK is not set; start an agent (eval $(ssh-agent); ssh-add) or give --ssh \(id)=SOCKET")
                }
                paths = [sock]
            }
            guard paths.count == 1, let path = paths.first else {
                throw StrataError(.invalidArgument, "--ssh \(id): give one agent socket, not \(paths.count) paths")
            }
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw StrataError(.invalidArgument, "--ssh \(id): cannot reach \(path): \(String(cString: strerror(errno)))")
            }
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw StrataError(.invalidArgument, "--ssh \(id): \(path) is not an agent socket; for a key file, load it into an agent (eval $(ssh-agent); ssh-add \(path)) and use --ssh \(id)")
            }
            out[id] = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        return out
    }
}

/// A build secret's source.
public enum BuildSecret: Sendable, Hashable {
    /// A host file, read when the step runs.
    case file(String)
    /// A host environment variable's name (parsing turns it into its ``value``).
    case environment(String)
    /// The secret's bytes, held in memory.
    case value(Data)

    /// The secret's bytes.
    func read() throws -> Data {
        switch self {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw StrataError(.invalidArgument, "cannot read the secret \(path)")
            }
            return data
        case .value(let data): return data
        case .environment(let name):
            guard let v = ProcessInfo.processInfo.environment[name] else {
                throw StrataError(.invalidArgument, "the secret's environment variable \(name) is not set")
            }
            return Data(v.utf8)
        }
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

/// The cause of a ``StrataError`` with code `buildStepFailed` when a RUN's command exited
/// non-zero: its status, which the engine passes on as dockerd does (`errorDetail.code`, the
/// docker CLI's exit status).
public struct BuildCommandStatus: Error, Sendable {
    /// The command's exit status (128 + the signal when a signal ended it).
    public let status: Int32
}
