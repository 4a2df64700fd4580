import Foundation
import NIOHTTP1
import Strata

/// Maps a request's method and path to the handler that serves it, and says what the
/// handler wants of the body. Image names may hold `/` (`/images/docker.io/library/app:1/json`),
/// so the suffix names the operation.
struct EngineRouter: Sendable {
    /// What a handler needs of the request body before it runs.
    enum BodyPolicy: Sendable {
        /// Read and dropped.
        case none
        /// Read into memory (at most ``EngineRequest/maxJSONBody``).
        case json
        /// Streamed to a file inside the store.
        case file
        /// Handed to the handler as it arrives (``BodyPipe``): the handler runs while the
        /// body is still coming.
        case stream
    }

    struct Route {
        var body: BodyPolicy
        var handler: @Sendable (EngineRequest, EngineResponse) async throws -> Void
    }

    let store: Store
    /// The containers this server runs.
    let runner: ContainerRunner
    /// The exec instances this server made.
    let execs = ExecInstances()
    /// When this server started (the `none` network's creation time, as dockerd's is its own).
    let started = Date()

    init(store: Store) {
        self.store = store
        self.runner = ContainerRunner(store: store)
    }

    func route(_ r: EngineRequest) -> Route {
        let m = r.method, p = r.path
        func serve(_ body: BodyPolicy, _ h: @escaping @Sendable (EngineRequest, EngineResponse) async throws -> Void) -> Route {
            Route(body: body, handler: h)
        }
        func serve(_ h: @escaping @Sendable (EngineRequest, EngineResponse) async throws -> Void) -> Route {
            Route(body: .none, handler: h)
        }
        switch (m, p) {
        case (.GET, "/_ping"), (.HEAD, "/_ping"): return serve(ping)
        case (.GET, "/version"): return serve(version)
        case (.GET, "/info"): return serve(info)
        case (.GET, "/system/df"): return serve(systemDF)
        case (.GET, "/events"): return serve(events)
        case (.POST, "/auth"): return serve(.json, auth)
        case (.GET, "/containers/json"): return serve(listContainers)
        case (.POST, "/containers/create"): return serve(.json, createContainer)
        case (.GET, "/volumes"): return serve(listVolumes)
        case (.POST, "/volumes/create"): return serve(.json, createVolume)
        case (.GET, "/images/json"): return serve(listImages)
        case (.GET, "/images/search"): return serve(search)
        case (.POST, "/commit"): return serve(.json, commit)
        case (.GET, "/images/get"): return serve { req, res in try await save(req.query["names"] ?? [], res) }
        case (.POST, "/images/load"): return serve(.stream, load)
        case (.POST, "/images/create"): return r.query["fromSrc"] != nil ? serve(.file, importImage) : serve(pull)
        case (.POST, "/images/prune"): return serve(pruneImages)
        case (.POST, "/containers/prune"): return serve(pruneContainers)
        case (.POST, "/networks/prune"): return serve(pruneNetworks)
        case (.POST, "/volumes/prune"): return serve(pruneVolumes)
        case (.GET, "/networks"): return serve(listNetworks)
        case (.POST, "/networks/create"):
            return serve { _, _ in
                throw EngineError(status: .notImplemented,
                                  message: "strata has no networks to create: each container gets an empty network namespace of its own (the none network)")
            }
        case (.POST, "/build"): return serve(.file, build)
        case (.POST, "/build/prune"): return serve(pruneBuildCache)
        default: break
        }
        if p.hasPrefix("/images/"), p.count > "/images/".count {
            let rest = String(p.dropFirst("/images/".count))
            func name(_ suffix: String) -> String? {
                guard rest.hasSuffix(suffix), rest.count > suffix.count else { return nil }
                return String(rest.dropLast(suffix.count))
            }
            switch m {
            case .GET:
                if let n = name("/json") { return serve { _, res in try await inspectImage(n, res) } }
                if let n = name("/history") { return serve { _, res in try await history(n, res) } }
                if let n = name("/get") { return serve { _, res in try await save([n], res) } }
            case .POST:
                if let n = name("/tag") { return serve { req, res in try await tag(n, req, res) } }
                if let n = name("/push") { return serve { req, res in try await push(n, req, res) } }
            case .DELETE:
                return serve { req, res in try await removeImage(rest, req, res) }
            default: break
            }
        }
        if p.hasPrefix("/containers/"), p.count > "/containers/".count {
            let rest = String(p.dropFirst("/containers/".count))
            if m == .GET, rest.hasSuffix("/json"), rest.count > 5 {
                let id = String(rest.dropLast(5))
                if !id.contains("/") { return serve { _, res in try await inspectContainer(id, res) } }
            }
            if m == .DELETE, !rest.contains("/") { return serve { req, res in try await removeContainer(rest, req, res) } }
            let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 2, !parts[0].isEmpty {
                let id = parts[0]
                switch (m, parts[1]) {
                case (.POST, "start"): return serve { _, res in try await startContainer(id, res) }
                case (.POST, "exec"): return serve(.json) { req, res in try await createExec(id, req, res) }
                case (.POST, "stop"): return serve { req, res in try await stopContainer(id, req, res) }
                case (.POST, "kill"): return serve { req, res in try await killContainer(id, req, res) }
                case (.POST, "restart"): return serve { req, res in try await restartContainer(id, req, res) }
                case (.POST, "rename"): return serve { req, res in try await renameContainer(id, req, res) }
                case (.POST, "update"): return serve(.json) { req, res in try await updateContainer(id, req, res) }
                case (.POST, "pause"): return serve { _, res in try await pauseContainer(id, paused: true, res) }
                case (.POST, "unpause"): return serve { _, res in try await pauseContainer(id, paused: false, res) }
                case (.POST, "attach"): return serve { req, res in try await attachContainer(id, req, res) }
                case (.POST, "resize"): return serve { req, res in try await resizeContainer(id, req, res) }
                case (.POST, "wait"): return serve { req, res in try await waitContainer(id, req, res) }
                case (.GET, "logs"): return serve { req, res in try await containerLogs(id, req, res) }
                case (.GET, "changes"): return serve { _, res in try await containerChanges(id, res) }
                case (.GET, "top"): return serve { req, res in try await topContainer(id, req, res) }
                case (.GET, "export"): return serve { _, res in try await exportContainer(id, res) }
                case (.GET, "stats"): return serve { req, res in try await containerStats(id, req, res) }
                case (.HEAD, "archive"): return serve { req, res in try await statContainerPath(id, req, res) }
                case (.GET, "archive"): return serve { req, res in try await getContainerArchive(id, req, res) }
                case (.PUT, "archive"): return serve(.file) { req, res in try await putContainerArchive(id, req, res) }
                default: break
                }
            }
        }
        if p.hasPrefix("/exec/") {
            let parts = p.dropFirst("/exec/".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 2, !parts[0].isEmpty {
                let id = parts[0]
                switch (m, parts[1]) {
                case (.POST, "start"): return serve(.json) { req, res in try await startExec(id, req, res) }
                case (.GET, "json"): return serve { _, res in try await inspectExec(id, res) }
                case (.POST, "resize"): return serve { req, res in try await resizeExec(id, req, res) }
                default: break
                }
            }
        }
        if p.hasPrefix("/networks/"), p.count > "/networks/".count, m == .GET {
            let name = String(p.dropFirst("/networks/".count))
            if !name.contains("/") { return serve { _, res in try await inspectNetwork(name, res) } }
        }
        if p.hasPrefix("/volumes/"), p.count > "/volumes/".count {
            let name = String(p.dropFirst("/volumes/".count))
            if m == .GET, !name.contains("/") { return serve { _, res in try await inspectVolume(name, res) } }
            if m == .DELETE, !name.contains("/") { return serve { _, res in try await removeVolume(name, res) } }
        }
        return serve { _, _ in
            throw EngineError(status: .notImplemented, message: "strata does not serve \(m.rawValue) \(p)")
        }
    }

    /// An image name from a path or query: refused before it reaches the store when it
    /// could not be a reference or an ID (`..`, empty, control characters).
    static func checkName(_ name: String) throws {
        if name.isEmpty || name.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0 == "." || $0.isEmpty })
            || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw EngineError.badRequest("invalid reference format: \"\(name)\"")
        }
    }
}
