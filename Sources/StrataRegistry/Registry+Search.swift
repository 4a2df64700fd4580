import AsyncHTTPClient
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1
import OCI

/// One repository found by ``Registry/search(_:limit:options:)``.
public struct RepositoryMatch: Sendable, Codable, Equatable {
    /// The name to pull, with the registry (`127.0.0.1:5000/team/app`); Docker Hub results
    /// keep Hub's own short names (`nginx`, `bitnami/redis`).
    public var name: String
    /// How many tags the repository has, when the registry lists them (nil otherwise).
    public var tags: Int?
    /// The description, where the registry gives one (Docker Hub's search API does).
    public var description: String?
    /// Docker Hub's star count, where given.
    public var stars: Int?
    /// Docker Hub's "official image" flag, where given.
    public var official: Bool?

    public init(name: String, tags: Int? = nil, description: String? = nil, stars: Int? = nil, official: Bool? = nil) {
        self.name = name
        self.tags = tags
        self.description = description
        self.stars = stars
        self.official = official
    }
}

extension Registry {
    /// Page size asked of `/v2/_catalog` and `/v2/NAME/tags/list` (`n=`); registries may
    /// answer with fewer and a `Link` header to the next page.
    static let pageSize = 100
    /// An upper bound on pages followed, so a registry whose `Link` never ends cannot keep
    /// a search running forever.
    static let maxPages = 100_000

    /// Splits `REGISTRY/TERM` into the registry and the term. A first component with a dot,
    /// a colon or `localhost` is a registry, as in image references; otherwise the registry
    /// is Docker Hub and the whole text is the term.
    public static func splitSearchQuery(_ query: String) -> (registry: String, term: String) {
        if let slash = query.firstIndex(of: "/") {
            let first = String(query[..<slash])
            if first.contains(".") || first.contains(":") || first == "localhost" {
                return (first, String(query[query.index(after: slash)...]))
            }
        }
        return (Reference.defaultRegistry, query)
    }

    /// Finds repositories whose name contains the term of `query` (`REGISTRY/TERM`), at most
    /// `limit`, in the registry's order.
    ///
    /// Docker Hub is asked through its search API (`/v1/search`), which also gives
    /// descriptions and stars. Any other registry is listed through the OCI distribution API:
    /// `/v2/_catalog`, page by page (`n=` and the `Link` header), then `/v2/NAME/tags/list`
    /// for the tag count of each match; a registry without a catalog is asked for
    /// `/v1/search`, and when it has neither the error says the registry does not support
    /// search. Authentication is the same as for pull: Basic, or a Bearer token for the
    /// scope the registry's challenge names (`registry:catalog:*`).
    public static func search(_ query: String, limit: Int = 25, options: RegistryOptions = RegistryOptions()) async throws -> [RepositoryMatch] {
        guard limit > 0 else { throw StrataError(.invalidArgument, "--limit must be at least 1, not \(limit)") }
        let (registry, term) = splitSearchQuery(query)
        let client = RegistryClient(registry: registry, repository: "", options: options, credentials: options.credentials(for: registry))
        if registry == Reference.defaultRegistry {
            return try await hubSearch(term, limit: limit, client: client, url: "https://index.docker.io/v1/search")
        }
        let needle = term.lowercased()
        var names: [String] = []
        var next: String? = "/v2/_catalog?n=\(pageSize)"
        var pages = 0
        var seen = Set<String>()
        while let url = next, names.count < limit {
            pages += 1
            guard pages <= maxPages, seen.insert(url).inserted else {
                throw StrataError(.io, "\(registry) keeps paging its catalog (\(url)); giving up")
            }
            let resp = try await client.send(.GET, url, headers: [("Accept", "application/json")])
            if resp.status == .notFound || resp.status == .methodNotAllowed || resp.status == .notImplemented,
               pages == 1 {
                _ = try? await resp.body.collect(upTo: 1 << 20)
                return try await fallbackSearch(term, limit: limit, client: client, catalogStatus: resp.status)
            }
            let body = try await expectJSON(resp, client: client, what: "GET /v2/_catalog")
            struct Catalog: Decodable { var repositories: [String]? }
            guard let page = try? JSONDecoder().decode(Catalog.self, from: body) else {
                throw StrataError(.invalidJSON, "\(registry) answered /v2/_catalog with something that is not a catalog")
            }
            for name in page.repositories ?? [] where needle.isEmpty || name.lowercased().contains(needle) {
                if names.count < limit { names.append(name) }
            }
            next = nextLink(resp.headers, relativeTo: client.baseURL)
            if (page.repositories ?? []).isEmpty { next = nil }
        }
        // Tag counts, a few repositories at a time; each repository has its own token scope.
        let counts = CountBox()
        try await forEach(Array(names.enumerated()), atMost: 4) { item in
            let tagClient = RegistryClient(registry: registry, repository: item.element, options: options, credentials: options.credentials(for: registry))
            let n = try? await listTags(client: tagClient).count
            counts.set(item.offset, n)
        }
        return names.enumerated().map { RepositoryMatch(name: "\(registry)/\($0.element)", tags: counts.get($0.offset)) }
    }

    /// Every tag of `repository` (`REGISTRY/NAME`), in the registry's order, following
    /// `/v2/NAME/tags/list` pagination.
    public static func listTags(_ repository: String, options: RegistryOptions = RegistryOptions()) async throws -> [String] {
        let reference = try Reference(repository, defaultTag: false)
        guard reference.tag == nil, reference.digest == nil else {
            throw StrataError(.invalidArgument, "--list-tags takes a repository without a tag or digest, not \(repository)")
        }
        return try await listTags(client: RegistryClient(reference: reference, options: options))
    }

    static func listTags(client: RegistryClient) async throws -> [String] {
        var tags: [String] = []
        var next: String? = "/v2/\(client.repository)/tags/list?n=\(pageSize)"
        var seen = Set<String>()
        while let url = next {
            guard seen.count < maxPages, seen.insert(url).inserted else {
                throw StrataError(.io, "\(client.registry) keeps paging the tags of \(client.repository) (\(url)); giving up")
            }
            let resp = try await client.send(.GET, url, headers: [("Accept", "application/json")])
            if resp.status == .notFound {
                _ = try? await resp.body.collect(upTo: 1 << 20)
                throw StrataError(.imageNotFound, "repository \(client.repository) not found on \(client.registry) (HTTP 404)")
            }
            let body = try await expectJSON(resp, client: client, what: "GET tags of \(client.repository)")
            struct TagList: Decodable { var tags: [String]? }
            guard let page = try? JSONDecoder().decode(TagList.self, from: body) else {
                throw StrataError(.invalidJSON, "\(client.registry) answered the tag list of \(client.repository) with something that is not a tag list")
            }
            tags += page.tags ?? []
            next = (page.tags ?? []).isEmpty ? nil : nextLink(resp.headers, relativeTo: client.baseURL)
        }
        return tags
    }

    /// A registry without `/v2/_catalog`: Docker Hub's search API on the same host, or a
    /// plain error.
    static func fallbackSearch(_ term: String, limit: Int, client: RegistryClient, catalogStatus: HTTPResponseStatus) async throws -> [RepositoryMatch] {
        do {
            return try await hubSearch(term, limit: limit, client: client, url: client.baseURL + "/v1/search")
        } catch let e as StrataError where e.code == .notSupported {
            throw StrataError(.notSupported, "\(client.registry) does not support search: /v2/_catalog answered HTTP \(catalogStatus.code) \(catalogStatus.reasonPhrase) and there is no /v1/search")
        }
    }

    /// Docker Hub's search API: `GET /v1/search?q=TERM&n=LIMIT`.
    static func hubSearch(_ term: String, limit: Int, client: RegistryClient, url: String) async throws -> [RepositoryMatch] {
        var comps = URLComponents(string: url)
        comps?.queryItems = [URLQueryItem(name: "q", value: term), URLQueryItem(name: "n", value: String(min(limit, 100)))]
        guard let full = comps?.string else { throw StrataError(.invalidArgument, "cannot search for \(term)") }
        let resp = try await client.send(.GET, full, headers: [("Accept", "application/json")])
        if resp.status == .notFound || resp.status == .methodNotAllowed {
            _ = try? await resp.body.collect(upTo: 1 << 20)
            throw StrataError(.notSupported, "\(client.registry) has no search API (HTTP \(resp.status.code))")
        }
        let body = try await expectJSON(resp, client: client, what: "GET /v1/search")
        struct Hit: Decodable { var name: String; var description: String?; var star_count: Int?; var is_official: Bool? }
        struct Results: Decodable { var results: [Hit]? }
        guard let parsed = try? JSONDecoder().decode(Results.self, from: body) else {
            throw StrataError(.invalidJSON, "\(client.registry) answered /v1/search with something that is not a search result")
        }
        return (parsed.results ?? []).prefix(limit).map {
            RepositoryMatch(name: $0.name, description: $0.description, stars: $0.star_count, official: $0.is_official)
        }
    }

    /// The body of a 200 answer (at most 16 MB), or an error naming the registry and status.
    static func expectJSON(_ resp: HTTPClientResponse, client: RegistryClient, what: String) async throws -> Data {
        guard resp.status == .ok else {
            _ = try? await resp.body.collect(upTo: 1 << 20)
            let hint = resp.status == .unauthorized || resp.status == .forbidden ? " (run strata login \(client.registry))" : ""
            throw StrataError(.io, "\(what) on \(client.registry) failed: HTTP \(resp.status.code) \(resp.status.reasonPhrase)\(hint)")
        }
        do {
            return Data(try await resp.body.collect(upTo: 16 << 20).readableBytesView)
        } catch {
            throw StrataError(.io, "\(what) on \(client.registry): the answer is too large or broke off", cause: error)
        }
    }

    /// The `rel="next"` target of a `Link` header (RFC 8288), made absolute against `base`
    /// when it is a path. Only same-origin links are followed.
    static func nextLink(_ headers: HTTPHeaders, relativeTo base: String) -> String? {
        for value in headers["Link"] {
          for header in value.components(separatedBy: ", <").map({ $0.hasPrefix("<") ? $0 : "<" + $0 }) {
            let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let target = parts.first, target.hasPrefix("<"), target.hasSuffix(">") else { continue }
            let isNext = parts.dropFirst().contains { p in
                let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return kv.count == 2 && kv[0].lowercased() == "rel" && kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")).split(separator: " ").contains("next")
            }
            guard isNext else { continue }
            let url = String(target.dropFirst().dropLast())
            if url.hasPrefix("/") { return base + url }
            if url.hasPrefix(base + "/") { return url }
            return nil
          }
        }
        return nil
    }
}

/// Results written by concurrent tasks, by position.
private final class CountBox: Sendable {
    private let values = Mutex<[Int: Int]>([:])
    func set(_ i: Int, _ v: Int?) { values.withLock { $0[i] = v } }
    func get(_ i: Int) -> Int? { values.withLock { $0[i] } }
}

/// `search --filter`, as `docker search` has them: `stars=N` (at least N stars),
/// `is-official=true|false`, `is-automated=true|false`. Only Docker Hub gives stars and an
/// official flag; a repository of any other registry has 0 stars and is neither official nor
/// automated (Hub's search API no longer marks anything automated either).
///
/// ```swift
/// let filters = try SearchFilters(parsing: ["stars=3", "is-official=true"])
/// let found = try await Registry.search("nginx").filter(filters.matches)
/// ```
public struct SearchFilters: Sendable, Hashable {
    /// Keep repositories with at least this many stars.
    public var minimumStars: Int?
    /// Keep only official (true) or only unofficial (false) repositories.
    public var official: Bool?
    /// Keep only automated (true) or only non-automated (false) repositories.
    public var automated: Bool?

    public init(minimumStars: Int? = nil, official: Bool? = nil, automated: Bool? = nil) {
        self.minimumStars = minimumStars
        self.official = official
        self.automated = automated
    }

    /// Docker's filters as key → values (the Engine API's `filters`); an unknown key or a
    /// value that is not a number (`stars`) or a boolean is an `.invalidArgument` error.
    public init(_ filters: [String: [String]]) throws {
        for (key, values) in filters {
            for v in values {
                switch key {
                case "stars":
                    guard let n = Int(v), n >= 0 else { throw StrataError(.invalidArgument, "invalid filter 'stars=\(v)': expected a number") }
                    minimumStars = max(minimumStars ?? 0, n)
                case "is-official": official = try Self.bool(key, v)
                case "is-automated": automated = try Self.bool(key, v)
                default: throw StrataError(.invalidArgument, "invalid filter '\(key)': use stars, is-official or is-automated")
                }
            }
        }
    }

    /// `KEY=VALUE` strings, as `--filter` gives them.
    public init(parsing pairs: [String]) throws {
        var filters: [String: [String]] = [:]
        for p in pairs {
            guard let eq = p.firstIndex(of: "=") else { throw StrataError(.invalidArgument, "invalid filter '\(p)': expected KEY=VALUE") }
            filters[String(p[..<eq]), default: []].append(String(p[p.index(after: eq)...]))
        }
        try self.init(filters)
    }

    /// Whether a repository passes every filter.
    public func matches(_ m: RepositoryMatch) -> Bool {
        if let n = minimumStars, (m.stars ?? 0) < n { return false }
        if let o = official, (m.official ?? false) != o { return false }
        if let a = automated, a { return false }
        return true
    }

    private static func bool(_ key: String, _ v: String) throws -> Bool {
        switch v.lowercased() {
        case "1", "true": return true
        case "0", "false": return false
        default: throw StrataError(.invalidArgument, "invalid filter '\(key)=\(v)': expected true or false")
        }
    }
}
