import Foundation

/// An image reference, `[registry/]path[:tag][@digest]`, normalised the way Docker
/// does: no registry means `docker.io`, a one-component path on docker.io gets `library/`.
///
/// ```swift
/// let r = try Reference("busybox")
/// r.fullName   // "docker.io/library/busybox:latest"
/// r.familiar   // "busybox:latest"
/// ```
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    public let registry: String
    public let repository: String
    public let tag: String?
    public let digest: Digest?

    public static let defaultRegistry = "docker.io"
    public static let defaultTag = "latest"

    /// Parses a reference. With `defaultTag`, a reference with neither tag nor digest gets `:latest`.
    public init(_ string: String, defaultTag: Bool = true) throws {
        func bad(_ why: String) -> StrataError {
            StrataError(.invalidReference, "invalid reference \"\(Digest.clip(string))\": \(why)")
        }
        guard !string.isEmpty else { throw bad("empty") }
        guard string.count <= 4096 else { throw bad("too long") }
        var rest = Substring(string)
        var digest: Digest? = nil
        if let at = rest.firstIndex(of: "@") {
            do { digest = try Digest(String(rest[rest.index(after: at)...])) } catch { throw bad("bad digest") }
            rest = rest[..<at]
        }
        var tag: String? = nil
        if let colon = rest.lastIndex(of: ":"), !rest[rest.index(after: colon)...].contains("/") {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isValidTag(t) else { throw bad("invalid tag \"\(Digest.clip(t))\"") }
            tag = t
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, !components.contains(where: \.isEmpty) else { throw bad("empty path component") }
        var registry = Self.defaultRegistry
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: \.isUppercase) {
            guard Self.isValidDomain(first) else { throw bad("invalid registry \"\(first)\"") }
            registry = first
            components.removeFirst()
        }
        for c in components where !Self.isValidComponent(c) {
            if c.contains(where: \.isUppercase) { throw bad("repository name must be lowercase") }
            throw bad("invalid path component \"\(Digest.clip(c))\"")
        }
        if registry == "index.docker.io" { registry = Self.defaultRegistry }
        if registry == Self.defaultRegistry, components.count == 1 { components.insert("library", at: 0) }
        let repository = components.joined(separator: "/")
        guard registry.count + 1 + repository.count <= 255 else { throw bad("name longer than 255 characters") }
        self.registry = registry
        self.repository = repository
        self.tag = tag ?? ((digest == nil && defaultTag) ? Self.defaultTag : nil)
        self.digest = digest
    }

    /// `registry/repository` in full.
    public var name: String { "\(registry)/\(repository)" }

    /// The name as Docker shows it: `busybox`, `user/app`, `quay.io/x/y`.
    public var familiarName: String {
        if registry == Self.defaultRegistry {
            return repository.hasPrefix("library/") && repository.split(separator: "/").count == 2
                ? String(repository.dropFirst("library/".count)) : repository
        }
        return name
    }

    /// Full normalised form, e.g. `docker.io/library/busybox:latest`.
    public var fullName: String {
        var s = name
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    /// Familiar form, e.g. `busybox:latest`.
    public var familiar: String {
        var s = familiarName
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    public var description: String { familiar }

    /// The familiar form of a full name that strata itself stored (already normalised and
    /// valid), without parsing it again: `docker.io/library/busybox:1` → `busybox:1`.
    public static func familiar(stored name: String) -> String {
        // On the UTF-8 bytes: listings call this once per tag.
        var copy = name
        return copy.withUTF8 { b in
            let start = familiarStart(b)
            return start == 0 ? name : String(decoding: UnsafeBufferPointer(rebasing: b[start...]), as: UTF8.self)
        }
    }

    /// ``familiar(stored:)`` of a stored name given as UTF-8 bytes (a listing reads them
    /// from the database without making a `String` of the stored form).
    public static func familiar(storedUTF8 b: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: b[familiarStart(b)...]), as: UTF8.self)
    }

    /// Where the familiar form of a stored name starts: after `docker.io/`, and after
    /// `library/` when the path (before any `:tag`) has no other `/`.
    private static func familiarStart(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        let docker: StaticString = "docker.io/", library: StaticString = "library/"
        guard hasPrefix(b, at: 0, docker) else { return 0 }
        var start = docker.utf8CodeUnitCount
        if hasPrefix(b, at: start, library) {
            let short = start + library.utf8CodeUnitCount
            var i = short
            while i < b.count, b[i] != UInt8(ascii: ":"), b[i] != UInt8(ascii: "/") { i += 1 }
            if i == b.count || b[i] == UInt8(ascii: ":") { start = short }
        }
        return start
    }

    /// Whether `b[at...]` starts with `prefix` (compared as bytes, without a collection walk).
    private static func hasPrefix(_ b: UnsafeBufferPointer<UInt8>, at: Int, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard b.count - at >= n, let base = b.baseAddress else { return false }
        return memcmp(base + at, prefix.utf8Start, n) == 0
    }

    /// The same reference with another tag and no digest.
    public func withTag(_ tag: String) -> Reference {
        Reference(registry: registry, repository: repository, tag: tag, digest: nil)
    }

    private init(registry: String, repository: String, tag: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    public static func isValidTag(_ t: String) -> Bool {
        let u = Array(t.utf8)
        guard (1...128).contains(u.count) else { return false }
        func word(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 }
        return word(u[0]) && u.dropFirst().allSatisfy { word($0) || $0 == 46 || $0 == 45 }
    }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    static func isValidComponent(_ c: String) -> Bool {
        let u = Array(c.utf8)
        func alnum(_ x: UInt8) -> Bool { (x >= 48 && x <= 57) || (x >= 97 && x <= 122) }
        guard let f = u.first, let l = u.last, alnum(f), alnum(l) else { return false }
        var i = 0
        while i < u.count {
            if alnum(u[i]) { i += 1; continue }
            var j = i
            while j < u.count, !alnum(u[j]) { j += 1 }
            let sep = String(decoding: u[i..<j], as: UTF8.self)
            guard sep == "." || sep == "_" || sep == "__" || sep.allSatisfy({ $0 == "-" }) else { return false }
            i = j
        }
        return true
    }

    static func isValidDomain(_ d: String) -> Bool {
        var host = Substring(d)
        if let colon = d.lastIndex(of: ":"), !d.hasSuffix("]") {
            let port = d[d.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isNumber), port.count <= 5 else { return false }
            host = d[..<colon]
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { return host.count > 2 }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty && labels.allSatisfy { l in
            guard let f = l.first, let e = l.last, f.isLetter || f.isNumber, e.isLetter || e.isNumber else { return false }
            return l.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
        }
    }
}
