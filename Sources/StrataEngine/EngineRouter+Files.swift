import Foundation
import OCI
import Strata

/// `docker cp` (the archive endpoints), `docker diff` and `docker commit`: each calls the
/// store (``Store/statPath(inContainer:path:)``, ``Store/resolveArchive(fromContainer:path:)``, ``Store/archive(_:to:name:)``,
/// ``Store/extractArchive(_:intoContainer:at:)``, ``Store/changes(in:)``,
/// ``Store/commit(_:options:)``) and formats its answer as dockerd does.
extension EngineRouter {
    /// `HEAD /containers/{id}/archive?path=`: 200 with the path's stat in
    /// `X-Docker-Container-Path-Stat`, 404 when nothing is there.
    func statContainerPath(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let stat = try await store.statPath(inContainer: ref, path: try Self.containerPath(req))
        try await res.send(.ok, headers: [("X-Docker-Container-Path-Stat", try Self.statHeader(stat))])
    }

    /// `GET /containers/{id}/archive?path=`: a tar of the path (entries named from its last
    /// component), with its stat header, streamed as it is made (``streamTar(_:headers:_:)``).
    /// The path is resolved before the head goes out, so a missing one answers 404; a failure
    /// after that cuts the tar short.
    func getContainerArchive(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let path = try Self.containerPath(req)
        let resolved: ContainerPathArchive
        do {
            resolved = try await store.resolveArchive(fromContainer: ref, path: path)
        } catch let e as StrataError where e.code == .fileNotFound {
            // dockerd's words, which the docker CLI shows as they are.
            throw EngineError(status: .notFound, message: "Could not find the file \(path) in container \(ref)")
        }
        let store = self.store
        try await streamTar(res, headers: [("X-Docker-Container-Path-Stat", try Self.statHeader(resolved.stat))]) { pipe in
            try await store.archive(resolved, to: pipe, name: "the response")
        }
    }

    /// `GET /containers/{id}/export` (`docker export`): a tar of the container's whole root
    /// filesystem (entries `./…`), streamed as it is made; volumes are not in it.
    func exportContainer(_ ref: String, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let resolved = try await store.resolveArchive(fromContainer: ref, path: "/.")
        let store = self.store
        try await streamTar(res) { pipe in
            try await store.archive(resolved, to: pipe, name: "the response")
        }
    }

    /// `PUT /containers/{id}/archive?path=&copyUIDGID=`: the body, a tar, extracted into the
    /// directory `path` of the container; with `copyUIDGID` (`docker cp -a`) owned by the
    /// container's user. `noOverwriteDirNonDir` is not enforced.
    func putContainerArchive(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        guard case .file(let body) = req.body else { throw EngineError.badRequest("no archive in the request body") }
        try await store.extractArchive(URL(fileURLWithPath: body), intoContainer: ref, at: try Self.containerPath(req),
                                       asContainerUser: try req.bool("copyUIDGID"))
        try await res.send(.ok)
    }

    /// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]`, Kind 0 changed, 1 added, 2 deleted.
    func containerChanges(_ ref: String, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let changes = try await store.changes(in: ref)
        try await res.sendJSON(changes.map { c -> [String: Any] in
            let kind: Int
            switch c.kind {
            case .changed: kind = 0
            case .added: kind = 1
            case .deleted: kind = 2
            }
            return ["Path": c.path, "Kind": kind]
        })
    }

    /// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`: 201 `{"Id": …}`.
    /// `changes` are Dockerfile instructions, as `docker commit -c`. A config in the body
    /// (other than an empty one) is not served: dockerd merges it, strata takes `changes`.
    func commit(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard let ref = req.string("container"), !ref.isEmpty else { throw EngineError.badRequest("container is required") }
        try Self.checkName(ref)
        if case .data(let body) = req.body, !body.isEmpty {
            guard let value = try? JSONSerialization.jsonObject(with: body, options: .fragmentsAllowed) else {
                throw EngineError.badRequest("invalid commit config: expected a JSON object")
            }
            if let o = value as? [String: Any], o.values.contains(where: { !Self.isEmptyJSON($0) }) {
                throw EngineError(status: .notImplemented, message: "strata does not serve POST /commit with a container config in the body: use changes (docker commit -c)")
            } else if !(value is NSNull) && !(value is [String: Any]) {
                throw EngineError.badRequest("invalid commit config: expected a JSON object")
            }
        }
        var reference: String?
        if let repo = req.string("repo"), !repo.isEmpty {
            let tag = req.string("tag") ?? ""
            let r = tag.isEmpty ? repo : "\(repo):\(tag)"
            try Self.checkName(r)
            do { _ = try Reference(r) } catch let e as StrataError { throw EngineError.badRequest(e.message) }
            reference = r
        }
        let changes = (req.query["changes"] ?? []).filter { !$0.isEmpty }
        let edits: [ConfigEdit]
        do {
            edits = try await ConfigEdit.parse(changes: changes, forContainer: ref, in: store)
        } catch let e as StrataError where e.code == .invalidArgument || e.code == .dockerfileSyntax {
            throw EngineError.badRequest(e.message)
        }
        let comment = req.string("comment").flatMap { $0.isEmpty ? nil : $0 }
        let author = req.string("author").flatMap { $0.isEmpty ? nil : $0 }
        // As dockerd: a running container is frozen while its layer is read, unless pause=0.
        let pause = (req.string("pause") ?? "").isEmpty ? true : try req.bool("pause")
        let image = try await store.commit(ref, options: CommitOptions(message: comment, author: author, edits: edits, reference: reference, pause: pause))
        try await res.sendJSON(["Id": image.id.string], status: .created)
    }

    /// The `path` query parameter: an absolute or relative path inside the container.
    static func containerPath(_ req: EngineRequest) throws -> String {
        guard let p = req.string("path"), !p.isEmpty else { throw EngineError.badRequest("path is required") }
        if p.unicodeScalars.contains(where: { $0.value == 0 }) { throw EngineError.badRequest("invalid path") }
        return p.hasPrefix("/") ? p : "/" + p
    }

    /// Docker's `X-Docker-Container-Path-Stat`: base64 of `{"name","size","mode","mtime","linkTarget"}`,
    /// the mode as Go's `os.FileMode` (type bits high, permissions low).
    static func statHeader(_ s: ContainerPathStat) throws -> String {
        let json = try EngineResponse.json([
            "name": s.name, "size": s.size, "mode": goFileMode(s.mode),
            "mtime": RFC3339.format(s.modified), "linkTarget": s.linkTarget,
        ] as [String: Any])
        return json.base64EncodedString()
    }

    /// A POSIX mode as Go's `os.FileMode`.
    static func goFileMode(_ mode: UInt32) -> UInt32 {
        var m = mode & 0o777
        switch mode & ContainerPathStat.typeMask {
        case ContainerPathStat.directory: m |= 1 << 31
        case ContainerPathStat.symlink: m |= 1 << 27
        case ContainerPathStat.blockDevice: m |= 1 << 26
        case ContainerPathStat.charDevice: m |= 1 << 26 | 1 << 21
        case ContainerPathStat.fifo: m |= 1 << 25
        case ContainerPathStat.socket: m |= 1 << 24
        default: break
        }
        if mode & 0o4000 != 0 { m |= 1 << 23 }  // setuid
        if mode & 0o2000 != 0 { m |= 1 << 22 }  // setgid
        if mode & 0o1000 != 0 { m |= 1 << 20 }  // sticky
        return m
    }

    private static func isEmptyJSON(_ v: Any) -> Bool {
        switch v {
        case is NSNull: return true
        case let s as String: return s.isEmpty
        case let a as [Any]: return a.isEmpty
        case let o as [String: Any]: return o.isEmpty
        case let n as NSNumber: return n == 0
        default: return false
        }
    }
}
