import Foundation
import OCI
import Strata
import StrataBuild
import StrataRegistry

/// `POST /build`: the classic builder, as `docker build` with `DOCKER_BUILDKIT=0` (or a
/// server whose `_ping` says `Builder-Version: 1`) calls it.
extension EngineRouter {
    /// The query: `t` (repeatable), `dockerfile`, `buildargs` (JSON), `target`, `nocache`,
    /// `q`, `labels` (JSON), `platform`, `remote` (an http(s) URL). The body is the context
    /// tar (plain or compressed), spooled into the store. The answer streams the builder's
    /// lines as `{"stream": …}`, then `{"aux":{"ID": …}}`; a failure after the first line
    /// is an `errorDetail` message in the stream.
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
        let store = self.store

        let (lines, sink) = AsyncStream<Data>.makeStream()
        let runOutput = Pipe()
        runOutput.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            if d.isEmpty { h.readabilityHandler = nil } else if !quiet { sink.yield(d) }
        }
        var options = BuildOptions(
            tags: tags, buildArgs: args, target: target, noCache: try req.bool("nocache"), platform: platform,
            pull: { name, platform in
                try await Registry.pull(name, into: store, options: RegistryOptions(), platform: platform).image.id
            },
            log: { line in if !quiet { sink.yield(Data((line + "\n").utf8)) } },
            runOutput: runOutput.fileHandleForWriting)
        options.labels = labels
        let builder = Builder(store: store), buildOptions = options, writeEnd = runOutput.fileHandleForWriting, contextPath = context
        try await res.startStream(contentType: "application/json")
        let result = try await withThrowingTaskGroup(of: BuildResult?.self) { group in
            group.addTask {
                defer {
                    try? writeEnd.close()
                    sink.finish()
                }
                return try await builder.build(contextTar: contextPath, dockerfilePath: dockerfile, options: buildOptions)
            }
            for await chunk in lines {
                try await res.message(["stream": String(decoding: chunk, as: UTF8.self)])
            }
            var built: BuildResult?
            while let r = try await group.next() { if let r { built = r } }
            return built
        }
        runOutput.fileHandleForReading.readabilityHandler = nil
        guard let result else { throw StrataError(.internalError, "the build returned no image") }
        try await res.message(["aux": ["ID": result.imageID.string]])
        if quiet { try await res.message(["stream": result.imageID.string + "\n"]) }
        try await res.finish()
    }
}
