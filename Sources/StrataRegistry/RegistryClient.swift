import AsyncHTTPClient
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1
import OCI

/// Options shared by pull and push.
public struct RegistryOptions: Sendable {
    /// Hosts (`host:port`) reached over plain HTTP. Loopback hosts always are.
    public var insecureRegistries: Set<String> = []
    /// Blobs transferred at once.
    public var parallelism = 3
    /// Called with progress events (`-q` passes nil). Must be cheap: it runs on transfer tasks.
    public var progress: (@Sendable (TransferEvent) -> Void)?
    /// Where credentials are read from (Docker's config.json).
    public var credentialsFile: URL = Credentials.configFile()
    /// Credentials for this operation only (the Engine API's `X-Registry-Auth`): when set,
    /// ``credentialsFile`` is not read. Never stored or logged.
    public var credentials: Credentials?
    /// Whether ``credentialsFile`` is read when ``credentials`` is nil. The Engine API server
    /// sets false: a request carries its client's credentials, the server's own file is not
    /// lent to whoever can reach the socket.
    public var readsCredentialsFile = true

    /// The credentials for a registry host: ``credentials``, else the file's entry.
    func credentials(for registry: String) -> Credentials? {
        if let credentials { return credentials }
        return readsCredentialsFile ? Credentials.lookup(registry, file: credentialsFile) : nil
    }
    /// Blobs larger than this are uploaded in chunks (PATCH with Content-Range) of this size.
    public var chunkSize: Int64 = 64 << 20
    /// How uncompressed layers are compressed for push (`gzip` or `zstd`).
    public var compression: Compression = .gzip

    public init(insecureRegistries: Set<String> = [], parallelism: Int = 3, progress: (@Sendable (TransferEvent) -> Void)? = nil) {
        self.insecureRegistries = insecureRegistries
        self.parallelism = parallelism
        self.progress = progress
    }
}

/// A small OCI distribution client: challenge-driven Basic and Bearer auth with tokens
/// reused per scope, plain HTTP only for loopback or explicitly insecure registries.
final class RegistryClient: Sendable {
    let registry: String
    let repository: String
    let baseURL: String
    private let http: HTTPClient
    private let credentials: Credentials?
    /// The Authorization header sent with every request (after the first challenge).
    private let authorization = Mutex<String?>(nil)
    private let tokens = TokenCache()

    static let manifestAccept = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].joined(separator: ", ")

    convenience init(reference: Reference, options: RegistryOptions) {
        self.init(registry: reference.registry, repository: reference.repository, options: options,
                  credentials: options.credentials(for: reference.registry))
    }

    /// - Parameter credentials: used to answer challenges; nil for anonymous access.
    init(registry: String, repository: String, options: RegistryOptions, credentials: Credentials?) {
        self.registry = registry
        self.repository = repository
        let host = registry == Reference.defaultRegistry ? "registry-1.docker.io" : registry
        let hostOnly = host.split(separator: ":").first.map(String.init) ?? host
        let loopback = ["localhost", "127.0.0.1", "[::1]"].contains(hostOnly) || hostOnly.hasPrefix("127.")
        let scheme = loopback || options.insecureRegistries.contains(host) ? "http" : "https"
        baseURL = "\(scheme)://\(host)"
        http = HTTPClient.registry
        self.credentials = credentials
    }

    /// The final error of a request: names the registry, the repository and the HTTP status,
    /// plus the registry's own error message when it sent one (OCI `errors[].message`).
    func fail(_ what: String, _ status: HTTPResponseStatus, code: StrataError.Code? = nil, detail: String = "") -> StrataError {
        let code = code ?? (status == .unauthorized || status == .forbidden ? .unauthorized : .io)
        var message = "\(what) on \(registry)/\(repository) failed: HTTP \(status.code) \(status.reasonPhrase)"
        if let data = detail.data(using: .utf8), let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let errors = json["errors"] as? [[String: Any]] {
            let texts = errors.compactMap { e -> String? in
                guard let m = e["message"] as? String ?? e["code"] as? String else { return nil }
                return String(m.prefix(200))
            }
            if !texts.isEmpty { message += " (\(texts.joined(separator: "; ")))" }
        }
        if status == .unauthorized { message += "; check the credentials: strata login \(registry)" }
        return StrataError(code, message)
    }

    /// A Location header (absolute, or a path on this registry) as a full URL.
    func absolute(_ location: String) -> String {
        location.hasPrefix("http://") || location.hasPrefix("https://") ? location : baseURL + (location.hasPrefix("/") ? "" : "/") + location
    }

    /// Retries after connection errors, 5xx and 429 (honouring Retry-After), at most this many.
    static let maxRetries = 3

    /// Sends a request, answering one auth challenge and retrying transient failures with
    /// backoff. `body` is called anew for every attempt.
    func send(_ method: HTTPMethod, _ urlOrPath: String, headers: [(String, String)] = [],
              body: (@Sendable () throws -> HTTPClientRequest.Body)? = nil) async throws -> HTTPClientResponse {
        let url = urlOrPath.hasPrefix("http") ? urlOrPath : baseURL + urlOrPath
        var authTried = false
        var retries = 0
        while true {
            var req = HTTPClientRequest(url: url)
            req.method = method
            for (k, v) in headers { req.headers.add(name: k, value: v) }
            if let a = authorization.withLock({ $0 }) { req.headers.replaceOrAdd(name: "Authorization", value: a) }
            if let body { req.body = try body() }
            let resp: HTTPClientResponse
            do {
                resp = try await http.execute(req, timeout: .seconds(600))
            } catch {
                if retries < Self.maxRetries {
                    retries += 1
                    try await Task.sleep(nanoseconds: UInt64(250_000_000) << retries)
                    continue
                }
                throw StrataError(.io, "cannot reach \(registry)\(repository.isEmpty ? "" : " for \(repository)") after \(retries + 1) attempts: \(HTTPClient.describe(error))", cause: error)
            }
            if resp.status == .unauthorized, !authTried, let challenge = resp.headers.first(name: "WWW-Authenticate") {
                _ = try? await resp.body.collect(upTo: 1 << 20)
                try await authenticate(challenge, refused: req.headers.first(name: "Authorization"))
                authTried = true
                continue
            }
            if resp.status.code >= 500 || resp.status == .tooManyRequests, retries < Self.maxRetries {
                _ = try? await resp.body.collect(upTo: 1 << 20)
                retries += 1
                let after = resp.headers.first(name: "Retry-After").flatMap(Double.init).map { min($0, 30) }
                try await Task.sleep(nanoseconds: UInt64((after ?? 0.25 * Double(1 << retries)) * 1_000_000_000))
                continue
            }
            return resp
        }
    }

    /// Answers a challenge. Basic: the stored credentials. Bearer: a token from the realm for
    /// the challenge's service and scope, fetched once per scope and reused (a token that was
    /// just refused is fetched again once).
    private func authenticate(_ challenge: String, refused: String?) async throws {
        let (scheme, params) = Self.parseChallenge(challenge)
        if scheme == "basic" {
            guard let c = credentials else {
                throw StrataError(.unauthorized, "\(registry)/\(repository) needs credentials (HTTP 401 Unauthorized): run strata login \(registry)")
            }
            authorization.withLock { $0 = "Basic " + Data("\(c.username):\(c.password)".utf8).base64EncodedString() }
            return
        }
        guard scheme == "bearer", let realm = params["realm"] else {
            throw StrataError(.unauthorized, "\(registry) asked for unsupported authentication \"\(scheme)\"")
        }
        let key = [realm, params["service"] ?? "", params["scope"] ?? ""].joined(separator: " ")
        if let refused, refused.hasPrefix("Bearer ") { await tokens.forget(key, ifToken: String(refused.dropFirst(7))) }
        let token = try await tokens.token(for: key) { [self] in try await fetchToken(realm: realm, params: params) }
        authorization.withLock { $0 = "Bearer " + token }
    }

    private func fetchToken(realm: String, params: [String: String]) async throws -> String {
        var comps = URLComponents(string: realm)
        var items = comps?.queryItems ?? []
        if let s = params["service"] { items.append(URLQueryItem(name: "service", value: s)) }
        for scope in (params["scope"] ?? "").split(separator: " ") { items.append(URLQueryItem(name: "scope", value: String(scope))) }
        comps?.queryItems = items
        guard let tokenURL = comps?.string, comps?.scheme == "https" || comps?.scheme == "http" else {
            throw StrataError(.unauthorized, "\(registry) sent an invalid auth realm")
        }
        var req = HTTPClientRequest(url: tokenURL)
        if let c = credentials {
            req.headers.add(name: "Authorization", value: "Basic " + Data("\(c.username):\(c.password)".utf8).base64EncodedString())
        }
        let resp: HTTPClientResponse
        do { resp = try await http.execute(req, timeout: .seconds(60)) } catch {
            throw StrataError(.io, "cannot reach the token service of \(registry) (\(comps?.host ?? "?")): \(error)", cause: error)
        }
        let body = try await resp.body.collect(upTo: 1 << 20)
        guard resp.status == .ok else {
            let hint = resp.status == .unauthorized || resp.status == .forbidden ? "; check the credentials: strata login \(registry)" : ""
            throw StrataError(.unauthorized, "the token service of \(registry) refused access to \(repository): HTTP \(resp.status.code) \(resp.status.reasonPhrase)\(hint)")
        }
        guard let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
              let token = (json["token"] ?? json["access_token"]) as? String, !token.isEmpty else {
            throw StrataError(.unauthorized, "the token service of \(registry) sent no token for \(repository)")
        }
        return token
    }

    /// `Bearer realm="…",service="…",scope="…"` → ("bearer", params).
    static func parseChallenge(_ header: String) -> (String, [String: String]) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        let scheme = String(trimmed.prefix { $0 != " " }).lowercased()
        var params: [String: String] = [:]
        var rest = Substring(trimmed.dropFirst(scheme.count))
        while let eq = rest.firstIndex(of: "=") {
            let key = rest[..<eq].trimmingCharacters(in: CharacterSet(charactersIn: " ,")).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<end])
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            params[key] = value
        }
        return (scheme, params)
    }

    /// GETs a manifest or index by tag or digest, verifying its digest.
    func manifest(_ reference: String, expected: Digest?) async throws -> (Data, String, Digest) {
        let resp = try await send(.GET, "/v2/\(repository)/manifests/\(reference)", headers: [("Accept", Self.manifestAccept)])
        guard resp.status == .ok else {
            _ = try? await resp.body.collect(upTo: 1 << 20)
            throw fail("GET manifest \(reference)", resp.status, code: resp.status == .notFound ? .imageNotFound : nil)
        }
        let body = try await resp.body.collect(upTo: 8 << 20)
        let data = Data(body.readableBytesView)
        let digest = Digest.sha256(data)
        if let expected, expected != digest {
            throw StrataError(.digestMismatch, "manifest \(reference) from \(registry)/\(repository) hashes to \(digest), expected \(expected)")
        }
        if let header = resp.headers.first(name: "Docker-Content-Digest"), let d = try? Digest(header), d.algorithm == "sha256", d != digest {
            throw StrataError(.digestMismatch, "manifest \(reference) from \(registry)/\(repository) hashes to \(digest), the registry says \(d)")
        }
        let type = resp.headers.first(name: "Content-Type")?.split(separator: ";").first.map(String.init) ?? ""
        return (data, type, digest)
    }
}

/// Bearer tokens by challenge scope. Several requests that meet the same challenge at once
/// share one token request.
actor TokenCache {
    private var tokens: [String: Task<String, Error>] = [:]

    func token(for key: String, fetch: @escaping @Sendable () async throws -> String) async throws -> String {
        if let t = tokens[key] { return try await t.value }
        let t = Task { try await fetch() }
        tokens[key] = t
        do { return try await t.value } catch {
            tokens[key] = nil
            throw error
        }
    }

    /// Drops a token the registry refused, so the next request fetches a new one.
    func forget(_ key: String, ifToken token: String) async {
        guard let t = tokens[key], (try? await t.value) == token else { return }
        tokens[key] = nil
    }
}
