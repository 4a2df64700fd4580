import Foundation
import OCI
import Strata
import StrataRegistry

/// `docker pull` and `docker push`: `StrataRegistry` with the request's credentials.
extension EngineRouter {
    /// `POST /images/create?fromImage=&tag=&platform=`: a registry pull, its progress
    /// streamed as Docker's JSON messages. With `fromSrc` the request is an import (``importImage(_:_:)``).
    func pull(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard let from = req.string("fromImage"), !from.isEmpty else {
            throw EngineError.badRequest("fromImage is required")
        }
        let tag = req.string("tag") ?? ""
        let ref = tag.isEmpty ? from : (tag.contains(":") ? "\(from)@\(tag)" : "\(from):\(tag)")
        try Self.checkName(ref)
        let reference: Reference
        let platform: Platform?
        do {
            reference = try Reference(ref)
            platform = try req.string("platform").flatMap { $0.isEmpty ? nil : try Platform(parsing: $0) }
        } catch let e as StrataError {
            throw EngineError.badRequest(e.message)
        }
        let base = try Self.registryOptions(req)
        let store = self.store
        try await res.startStream(contentType: "application/json")
        try await res.message(["status": "Pulling from \(reference.repository)", "id": reference.digest?.string ?? reference.tag ?? "latest"])
        let result = try await streamingProgress(res) { emit in
            var options = base
            options.progress = { emit($0.dockerMessage(verb: "Downloading")) }
            return try await Registry.pull(ref, into: store, options: options, platform: platform)
        }
        try await res.message(["status": "Digest: \(result.digest)"])
        try await res.message(["status": "Status: Downloaded image for \(reference.familiar)"])
        try await res.finish()
    }

    /// `POST /images/{name}/push?tag=`: pushes `name:tag` to the registry its name says.
    func push(_ name: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(name)
        let tag = req.string("tag") ?? ""
        let ref = tag.isEmpty ? name : (tag.contains(":") ? "\(name)@\(tag)" : "\(name):\(tag)")
        let reference: Reference
        do { reference = try Reference(ref) } catch let e as StrataError { throw EngineError.badRequest(e.message) }
        // Resolved before the stream starts: no such image is a 404, as dockerd answers.
        _ = try await store.inspect(ref)
        let base = try Self.registryOptions(req)
        let store = self.store
        try await res.startStream(contentType: "application/json")
        try await res.message(["status": "The push refers to repository [\(reference.registry)/\(reference.repository)]"])
        let result = try await streamingProgress(res) { emit in
            var options = base
            options.progress = { emit($0.dockerMessage(verb: "Pushing")) }
            return try await Registry.pushImage(ref, to: ref, from: store, options: options)
        }
        try await res.message(["status": result.summary])
        try await res.message(["progressDetail": [String: Any](), "aux": ["Tag": result.tag, "Digest": result.digest.string, "Size": result.size] as [String: Any]])
        try await res.finish()
    }

    /// `POST /auth` (`docker login`): checks the body's credentials against the registry and
    /// forgets them; the client stores them and sends them with each pull and push.
    func auth(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard case .data(let body) = req.body, let o = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EngineError.badRequest("expected a JSON object with username, password and serveraddress")
        }
        guard let user = o["username"] as? String, !user.isEmpty, let password = o["password"] as? String else {
            throw EngineError.badRequest("username and password are required")
        }
        var server = (o["serveraddress"] as? String) ?? ""
        for prefix in ["https://", "http://"] where server.hasPrefix(prefix) { server = String(server.dropFirst(prefix.count)) }
        if server.hasSuffix("/v1/") || server.isEmpty || server.contains("index.docker.io") { server = "docker.io" }
        while server.hasSuffix("/") { server.removeLast() }
        var options = RegistryOptions()
        options.readsCredentialsFile = false
        try await Registry.checkLogin(server, Credentials(username: user, password: password), options: options)
        try await res.sendJSON(["Status": "Login Succeeded", "IdentityToken": ""])
    }

    /// `GET /images/search?term=&limit=`: ``Registry/search(_:limit:options:)`` with the
    /// request's credentials (`term` is `REGISTRY/TERM`, or a Docker Hub term). Answers
    /// `[{"name", "description", "star_count", "is_official", "is_automated"}]`, after
    /// ``SearchFilters`` (`stars`, `is-official`, `is-automated`), applied to the `limit`
    /// results as dockerd applies them.
    func search(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard let term = req.string("term"), !term.isEmpty else { throw EngineError.badRequest("term is required") }
        if term.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) { throw EngineError.badRequest("invalid search term") }
        let filters: SearchFilters
        do { filters = try SearchFilters(try req.filters()) } catch let e as StrataError { throw EngineError.badRequest(e.message) }
        var limit = 25
        if let l = req.string("limit"), !l.isEmpty {
            guard let n = Int(l), n >= 1, n <= 100 else { throw EngineError.badRequest("limit \"\(l)\" must be between 1 and 100") }
            limit = n
        }
        let matches = try await Registry.search(term, limit: limit, options: try Self.registryOptions(req)).filter(filters.matches)
        try await res.sendJSON(matches.map { m -> [String: Any] in
            ["name": m.name, "description": m.description ?? "", "star_count": m.stars ?? 0,
             "is_official": m.official ?? false, "is_automated": false]
        })
    }

    /// Runs `work`, writing the messages it emits as they come (from any task), and returns its result.
    func streamingProgress<T: Sendable>(_ res: EngineResponse,
                                        _ work: @escaping @Sendable (@escaping @Sendable ([String: Any]) -> Void) async throws -> T) async throws -> T {
        let (messages, sink) = AsyncStream<Data>.makeStream()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                defer { sink.finish() }
                return try await work { m in if let d = try? EngineResponse.json(m) { sink.yield(d) } }
            }
            for await m in messages { try await res.write(m + Data("\r\n".utf8)) }
            var out: T?
            while let r = try await group.next() { if let r { out = r } }
            guard let out else { throw StrataError(.internalError, "the transfer returned nothing") }
            return out
        }
    }

    /// Registry options for one request: its `X-Registry-Auth` credentials, never the
    /// server's own credentials file.
    static func registryOptions(_ req: EngineRequest) throws -> RegistryOptions {
        var options = RegistryOptions()
        options.readsCredentialsFile = false
        options.credentials = try registryAuth(req)
        return options
    }

    /// `X-Registry-Auth`: base64url of `{"username":…,"password":…,"serveraddress":…}`.
    /// Empty, `{}` or no username: anonymous. Used for this request only; never stored or logged.
    static func registryAuth(_ req: EngineRequest) throws -> Credentials? {
        guard let header = req.headers.first(name: "X-Registry-Auth"), !header.isEmpty else { return nil }
        var b64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw EngineError.badRequest("invalid X-Registry-Auth header: expected base64-encoded JSON")
        }
        if let token = o["identitytoken"] as? String, !token.isEmpty {
            throw EngineError(status: .notImplemented, message: "strata does not support identity tokens in X-Registry-Auth yet")
        }
        guard let user = o["username"] as? String, !user.isEmpty else { return nil }
        return Credentials(username: user, password: (o["password"] as? String) ?? "")
    }
}
