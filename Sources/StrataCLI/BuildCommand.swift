import ArgumentParser
import Foundation
import Strata
import StrataBuild
import StrataRegistry

struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an image from a Dockerfile, step by step, with a layer cache.",
        discussion: """
            The classic builder: every instruction runs in a temporary container made from the \
            previous step's image, is committed as a new image (a layer, or an empty_layer history \
            entry for metadata-only steps) and the container is removed. An unchanged step reuses \
            its cached image (---> Using cache); a changed instruction, source file or build-arg \
            rebuilds that step and every step after it.

            CONTEXT is a directory, or - for a tar archive (plain, gzip or zstd) on stdin; a \
            Dockerfile on stdin builds with an empty context. With SOURCE_DATE_EPOCH or \
            --timestamp, the same inputs give the same image ID in any store.

            Examples:
              strata build -t app:1 .
              strata build -f build/Dockerfile --build-arg VERSION=1.2 -t app:1.2 .
              strata build --target build --no-cache -q .
              strata build --label org.opencontainers.image.version=1.2 -t app:1.2 .
              tar -C src -c . | strata build -t app:1 -
              strata build -f ctx/Dockerfile http://server/ctx.tar.gz
              SOURCE_DATE_EPOCH=1700000000 strata build -t app:repro .
            """)

    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Name and optionally a tag (NAME:TAG); repeatable.")
    var tag: [String] = []
    @Option(name: .shortAndLong, help: "The Dockerfile (default: CONTEXT/Dockerfile; with -, a path inside the tar).")
    var file: String?
    @Option(name: .customLong("build-arg"), help: "A build-time variable (KEY=VALUE, or KEY to take it from the environment).")
    var buildArg: [String] = []
    @Option(help: "Set a label on the image (KEY=VALUE); repeatable.")
    var label: [String] = []
    @Option(help: "A secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR; repeatable.")
    var secret: [String] = []

    @Option(help: "An SSH agent for RUN --mount=type=ssh: default (from SSH_AUTH_SOCK) or ID=SOCKET; repeatable.")
    var ssh: [String] = []
    @Option(help: "Build up to this stage.")
    var target: String?
    @ArgumentParser.Flag(name: .customLong("no-cache"), help: "Do not use the cache.")
    var noCache = false
    @Option(help: "Platform for FROM scratch and pulls (os/arch[/variant]).")
    var platform: String?
    @Option(help: "Creation time of every image and clamp of layer mtimes, in unix seconds (default: $SOURCE_DATE_EPOCH).")
    var timestamp: Int64?
    @ArgumentParser.Flag(name: .shortAndLong, help: "Print only the image ID.")
    var quiet = false
    @Option(name: .customLong("cache-from"), help: "Use as cache only steps whose image is this image or one of its ancestors; repeatable.")
    var cacheFrom: [String] = []
    @Option(name: .customLong("add-host"), help: "Add HOST:IP to the /etc/hosts RUN steps see (never to the image); repeatable.")
    var addHost: [String] = []
    @Option(help: "RUN steps' network: host (default) or none (an empty network namespace).")
    var network: String?
    @Option(name: .customLong("max-context-size"), help: "Largest remote context to download (e.g. 500MB; default 2GB).",
            transform: { v in
                guard let n = AnalyzeRules.parseBytes(v), n > 0 else { throw ValidationError("--max-context-size: invalid size \"\(v)\"") }
                return n
            })
    var maxContextSize: Int64 = Download.defaultMaxSize
    @Argument(help: "The context: a directory, an http(s) URL of a tar (plain, gzip or zstd) or a Dockerfile, or - for a tar on stdin.")
    var context: String

    func validate() throws {
        for t in tag {
            do { _ = try Reference(t) } catch let e as StrataError { throw ValidationError("invalid tag \"\(t)\": \(e.message)") }
        }
        if let platform { do { _ = try Platform(parsing: platform) } catch let e as StrataError { throw ValidationError(e.message) } }
        for h in addHost { do { _ = try Store.extraHost(h) } catch let e as StrataError { throw ValidationError(e.message) } }
        if let network, !["host", "none", "default"].contains(network) {
            throw ValidationError("invalid --network \"\(network)\": use host or none")
        }
    }

    func run() async throws {
        var args: [String: String] = [:]
        let env = ProcessInfo.processInfo.environment
        for a in buildArg {
            if let eq = a.firstIndex(of: "=") {
                args[String(a[..<eq])] = String(a[a.index(after: eq)...])
            } else if let v = env[a] {
                args[a] = v
            }
        }
        var stamp = timestamp
        if stamp == nil, let s = env["SOURCE_DATE_EPOCH"], !s.isEmpty {
            guard let v = Int64(s), v >= 0 else { throw StrataError(.invalidArgument, "SOURCE_DATE_EPOCH=\(s) is not a number of seconds") }
            stamp = v
        }
        let p = try platform.map { try Platform(parsing: $0) }
        let store = try await global.openStore()
        let quiet = self.quiet
        @Sendable func line(_ s: String) { if !quiet { FileHandle.standardOutput.write(Data((s + "\n").utf8)) } }
        var options = BuildOptions(
            tags: tag, buildArgs: args, target: target, noCache: noCache, platform: p, timestamp: stamp,
            pull: { name, platform in
                FileHandle.standardError.write(Data("Pulling \(name)\n".utf8))
                return try await Registry.pull(name, into: store, options: RegistryOptions(), platform: platform).image.id
            },
            log: line, runOutput: quiet ? nil : FileHandle.standardOutput)
        options.cacheFrom = cacheFrom.isEmpty ? nil : cacheFrom
        options.extraHosts = addHost
        options.hostNetwork = network != "none"
        for l in label {
            let kv = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard !kv[0].isEmpty else { throw StrataError(.invalidArgument, "invalid --label \"\(l)\": use KEY=VALUE") }
            options.labels[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        options.secrets = try BuildOptions.parseSecrets(secret)
        options.sshAgents = try BuildOptions.parseSSH(ssh)
        let builder = Builder(store: store)
        let result: BuildResult
        if context.hasPrefix("http://") || context.hasPrefix("https://") {
            // A remote context: a tar (plain, gzip or zstd, sniffed from the bytes) or a bare
            // Dockerfile, downloaded into the store's scratch space, which goes afterwards.
            let dir = try store.makeBuildScratchFile()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let spool = dir + "/context"
            let progress = ContextProgress(url: context)
            try await Download.fetch(context, to: spool, maxSize: maxContextSize, progress: quiet ? nil : progress.callback)
            if !quiet { progress.finish() }
            result = try await builder.build(contextTar: spool, dockerfilePath: file, options: options)
        } else if context == "-" {
            let dir = try store.makeBuildScratchFile()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let spool = dir + "/context"
            guard FileManager.default.createFile(atPath: spool, contents: nil), let out = FileHandle(forWritingAtPath: spool) else {
                throw StrataError(.io, "cannot spool the context from stdin")
            }
            while let chunk = try FileHandle.standardInput.read(upToCount: 1 << 20), !chunk.isEmpty { try out.write(contentsOf: chunk) }
            try out.close()
            result = try await builder.build(contextTar: spool, dockerfilePath: file, options: options)
        } else {
            var text: String?
            if let file {
                guard let t = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw StrataError(.invalidArgument, "cannot read the Dockerfile \(file)")
                }
                text = t
            }
            result = try await builder.build(context: context, dockerfile: text, options: options)
        }
        if quiet { print(result.imageID.string) }
    }
}
