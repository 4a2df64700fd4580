import Foundation
import OCI
import Strata
import StrataBuild
import StrataRegistry

/// `POST /build`: the classic builder, as `docker build` with `DOCKER_BUILDKIT=0` (or a
/// server whose `_ping` says `Builder-Version: 1`) calls it.
extension EngineRouter {
    /// The query: `t` (repeatable), `dockerfile`, `buildargs` (JSON), `target`, `nocache`,
    /// `q`, `labels` (JSON), `platform`, `remote` (an http(s) URL), `cachefrom` (JSON),
    /// `extrahosts` (repeatable `HOST:IP`), `networkmode` (`default`, `host`, `none`). The
    /// body is the context tar (plain or compressed), spooled into the store. The answer
    /// streams the builder's lines as `{"stream": …}` (a RUN's standard error in red), with
    /// `{"aux":{"ID": …}}` before `Successfully built`; a failure after the first line is an
    /// `errorDetail` message in the stream (with a failed RUN's status as its `code`).
    func build(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard case .file(var context) = req.body else { throw EngineError.badRequest("no build context in the request body") }
        // `remote`: an http(s) URL of a tar or a Dockerfile, fetched into the store's scratch
        // space as `strata build URL` does (git URLs are not served).
        var remoteScratch: ScratchDirectory?
        defer { remoteScratch?.remove() }
        if let remote = req.string("remote"), !remote.isEmpty {
            guard remote.hasPrefix("http://") || remote.hasPrefix("https://") else {
                throw EngineError(status: .notImplemented, message: "strata builds remote contexts from http(s) URLs only, not \(remote)")
            }
            let dir = try store.makeScratchDirectory()
            remoteScratch = dir
            context = dir.url.deletingLastPathComponent().appendingPathComponent("remote-context").path
            do {
                _ = try await Download.fetch(remote, to: context)
            } catch let e as StrataError {
                throw EngineError.badRequest("unable to download the build context: \(e.message)")
            }
        }
        var labels: [String: String] = [:]
        for (k, v) in try req.jsonObject("labels") { labels[k] = v ?? "" }
        let tags = (req.query["t"] ?? []).filter { !$0.isEmpty }
        for t in tags {
            try Self.checkName(t)
            do { _ = try Reference(t) } catch let e as StrataError { throw EngineError.badRequest("invalid tag \"\(t)\": \(e.message)") }
        }
        var args: [String: String] = [:]
        for (k, v) in try req.jsonObject("buildargs") { if let v { args[k] = v } }
        let platform: Platform?
        do {
            platform = try req.string("platform").flatMap { $0.isEmpty ? nil : try Platform(parsing: $0) }
        } catch let e as StrataError {
            throw EngineError.badRequest(e.message)
        }
        let quiet = try req.bool("q")
        let target = req.string("target").flatMap { $0.isEmpty ? nil : $0 }
        let dockerfile = req.string("dockerfile").flatMap { $0.isEmpty ? nil : $0 }

        var cacheFrom: [String]?
        if let raw = req.string("cachefrom"), !raw.isEmpty {
            guard let list = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String] else {
                throw EngineError.badRequest("invalid cachefrom: expected a JSON array of image names")
            }
            cacheFrom = list
        }
        let extraHosts = (req.query["extrahosts"] ?? []).flatMap { $0.split(separator: ",").map(String.init) }
        for h in extraHosts {
            do { _ = try Store.extraHost(h) } catch let e as StrataError { throw EngineError.badRequest(e.message) }
        }
        // The classic builder's networks: its default (a bridge that reaches out) is the
        // host's network here; `none` is an empty namespace; no other network exists.
        let network = req.string("networkmode") ?? ""
        guard ["", "default", "bridge", "host", "none"].contains(network) else {
            throw EngineError(status: .notFound, message: "network \(network) not found")
        }
        let store = self.store

        let (messages, sink) = AsyncStream<BuildMessage>.makeStream()
        // A RUN's output as it comes; its standard error apart, in red as dockerd sends it.
        // ExclusivePipe: a container started meanwhile must not hold the write ends open.
        let runOutput = try ExclusivePipe(), runErrors = try ExclusivePipe()
        for (pipe, isError) in [(runOutput, false), (runErrors, true)] {
            pipe.fileHandleForReading.readabilityHandler = { h in
                let d = h.availableData
                if d.isEmpty { h.readabilityHandler = nil } else if !quiet { sink.yield(.stream(d, error: isError)) }
            }
        }
        var options = BuildOptions(
            tags: tags, buildArgs: args, target: target, noCache: try req.bool("nocache"), platform: platform,
            pull: { name, platform in
                try await Registry.pull(name, into: store, options: RegistryOptions(), platform: platform).image.id
            },
            log: { line in if !quiet { sink.yield(.stream(Data((line + "\n").utf8), error: false)) } },
            runOutput: runOutput.fileHandleForWriting)
        options.labels = labels
        options.runErrors = runErrors.fileHandleForWriting
        options.cacheFrom = cacheFrom
        options.extraHosts = extraHosts
        options.hostNetwork = network != "none"
        options.built = { id in sink.yield(.image(id)) }
        let builder = Builder(store: store), buildOptions = options, contextPath = context
        let writeEnds = [runOutput.fileHandleForWriting, runErrors.fileHandleForWriting]
        try await res.startStream(contentType: "application/json")
        let result: BuildResult?
        do {
            result = try await withThrowingTaskGroup(of: BuildResult?.self) { group in
                group.addTask {
                    defer {
                        for h in writeEnds { try? h.close() }
                        sink.finish()
                    }
                    return try await builder.build(contextTar: contextPath, dockerfilePath: dockerfile, options: buildOptions)
                }
                for await message in messages {
                    switch message {
                    case .stream(let chunk, false):
                        try await res.message(["stream": String(decoding: chunk, as: UTF8.self)])
                    case .stream(let chunk, true):
                        try await res.message(["stream": "\u{1B}[91m" + String(decoding: chunk, as: UTF8.self) + "\u{1B}[0m"])
                    case .image(let id):
                        // As dockerd: the ID before `Successfully built`, so `Successfully
                        // tagged` is the last line.
                        try await res.message(["aux": ["ID": id.string]])
                    }
                }
                var built: BuildResult?
                while let r = try await group.next() { if let r { built = r } }
                return built
            }
        } catch let e as StrataError where e.code == .buildStepFailed {
            for p in [runOutput, runErrors] { p.fileHandleForReading.readabilityHandler = nil }
            // As dockerd: the command's status is the error's code (the docker CLI exits with it).
            try await res.streamError(e.message, code: (e.cause as? BuildCommandStatus).map { Int($0.status) })
            try await res.finish()
            return
        }
        for p in [runOutput, runErrors] { p.fileHandleForReading.readabilityHandler = nil }
        guard let result else { throw StrataError(.internalError, "the build returned no image") }
        if quiet { try await res.message(["stream": result.imageID.string + "\n"]) }
        try await res.finish()
    }

    /// What the build sends on: output (`error`: a RUN's standard error), or the built image.
    private enum BuildMessage: Sendable {
        case stream(Data, error: Bool)
        case image(Digest)
    }
}
