import Foundation
import NIOHTTP1
import OCI

/// One Docker Engine API request, parsed: the method, the path without its `/vX.Y` prefix
/// (percent-decoded), the query and the headers. The body, when the endpoint takes one, has
/// been read before the request reaches its handler (``body``).
struct EngineRequest: Sendable {
    /// What the request carried as its body.
    enum Body: Sendable {
        case none
        /// A small JSON body, read whole (at most ``EngineRequest/maxJSONBody`` bytes).
        case data(Data)
        /// A body spooled to a file inside the store (a build context, an archive to put).
        case file(String)
        /// A body that is still arriving (an archive to load), read in order.
        case stream(BodyPipe)
    }

    var method: HTTPMethod
    /// The path without the version prefix, percent-decoded: `/images/app:1/json`.
    var path: String
    /// The API version the client asked for (`/v1.43/…`), nil for an unversioned path.
    var apiVersion: String?
    /// Query values by name; a name given several times keeps every value in order.
    var query: [String: [String]]
    var headers: HTTPHeaders
    var body: Body = .none

    /// The largest JSON body read into memory.
    static let maxJSONBody = 1 << 20

    /// Parses a request head. Throws a 400 for a target that is not a path, bad percent
    /// escapes, or an API version outside what the server speaks.
    init(head: HTTPRequestHead) throws {
        method = head.method
        headers = head.headers
        let uri = head.uri
        guard uri.hasPrefix("/") else { throw EngineError.badRequest("malformed request target \"\(uri)\"") }
        let rawPath: Substring, rawQuery: Substring
        if let q = uri.firstIndex(of: "?") {
            rawPath = uri[..<q]
            rawQuery = uri[uri.index(after: q)...]
        } else {
            rawPath = uri[...]
            rawQuery = ""
        }
        guard let decoded = String(rawPath).removingPercentEncoding else {
            throw EngineError.badRequest("malformed request path \"\(rawPath)\"")
        }
        (apiVersion, path) = Self.splitVersion(decoded)
        if let v = apiVersion {
            guard let c = APIVersion(v) else { throw EngineError.badRequest("malformed API version \"\(v)\"") }
            if c > APIVersion.current {
                throw EngineError.badRequest("client version \(v) is too new. Maximum supported API version is \(APIVersion.current)")
            }
            if c < APIVersion.minimum {
                throw EngineError.badRequest("client version \(v) is too old. Minimum supported API version is \(APIVersion.minimum), please upgrade your client to a newer version")
            }
        }
        query = try Self.parseQuery(rawQuery)
    }

    /// `/v1.43/images/json` → ("1.43", "/images/json"); `/images/json` → (nil, "/images/json").
    static func splitVersion(_ path: String) -> (String?, String) {
        guard path.hasPrefix("/v"), let slash = path.dropFirst(2).firstIndex(of: "/") else {
            if path.hasPrefix("/v"), path.dropFirst(2).allSatisfy({ $0.isNumber || $0 == "." }), path.count > 2 {
                return (String(path.dropFirst(2)), "/")
            }
            return (nil, path)
        }
        let version = path[path.index(path.startIndex, offsetBy: 2)..<slash]
        guard !version.isEmpty, version.allSatisfy({ $0.isNumber || $0 == "." }) else { return (nil, path) }
        return (String(version), String(path[slash...]))
    }

    /// `a=1&b=x+y&b=%2F` as Go's `url.ParseQuery` reads it (`+` is a space).
    static func parseQuery(_ q: Substring) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for pair in q.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) throws -> String {
                guard let d = s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                    throw EngineError.badRequest("malformed query \"\(q)\"")
                }
                return d
            }
            let key = try decode(kv[0])
            out[key, default: []].append(kv.count > 1 ? try decode(kv[1]) : "")
        }
        return out
    }

    /// The first value of a query parameter.
    func string(_ name: String) -> String? { query[name]?.first }

    /// A boolean query parameter as Docker reads one: `1`, `true`, `True` are true; absent,
    /// empty, `0`, `false` are false; anything else is a 400.
    func bool(_ name: String) throws -> Bool {
        guard let v = string(name), !v.isEmpty else { return false }
        switch v.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no": return false
        default: throw EngineError.badRequest("invalid value \"\(v)\" for \(name): expected a boolean")
        }
    }

    /// A JSON-object query parameter (`buildargs`, `labels`): values may be null.
    func jsonObject(_ name: String) throws -> [String: String?] {
        guard let v = string(name), !v.isEmpty else { return [:] }
        guard let o = try? JSONSerialization.jsonObject(with: Data(v.utf8)) as? [String: Any] else {
            throw EngineError.badRequest("invalid \(name): expected a JSON object")
        }
        var out: [String: String?] = [:]
        for (k, val) in o {
            if val is NSNull { out[k] = .some(nil) } else if let s = val as? String { out[k] = s } else {
                throw EngineError.badRequest("invalid \(name): the value of \(k) is not a string")
            }
        }
        return out
    }

    /// The `filters` parameter: `{"key":{"value":true}}` (today's clients) or
    /// `{"key":["value"]}` (older ones), as key → values.
    func filters() throws -> [String: [String]] {
        guard let v = string("filters"), !v.isEmpty else { return [:] }
        guard let o = try? JSONSerialization.jsonObject(with: Data(v.utf8)) as? [String: Any] else {
            throw EngineError.badRequest("invalid filters: expected a JSON object")
        }
        var out: [String: [String]] = [:]
        for (k, val) in o {
            if let m = val as? [String: Any] {
                out[k] = m.filter { ($0.value as? Bool) ?? true }.map(\.key).sorted()
            } else if let a = val as? [String] {
                out[k] = a
            } else {
                throw EngineError.badRequest("invalid filters: the value of \(k) is neither an object nor a list")
            }
        }
        return out
    }
}

/// An Engine API version, `major.minor`, ordered numerically (1.9 < 1.24 < 1.43).
struct APIVersion: Comparable, CustomStringConvertible, Sendable {
    var major: Int
    var minor: Int

    /// The version the server speaks and advertises in `Api-Version`.
    static let current = APIVersion(major: 1, minor: 43)
    /// The oldest version a client may ask for.
    static let minimum = APIVersion(major: 1, minor: 24)

    init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    init?(_ s: String) {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 0, b >= 0 else { return nil }
        major = a
        minor = b
    }

    static func < (l: APIVersion, r: APIVersion) -> Bool { (l.major, l.minor) < (r.major, r.minor) }
    var description: String { "\(major).\(minor)" }
}
