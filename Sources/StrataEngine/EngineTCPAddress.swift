import Strata
#if canImport(Glibc)
import Glibc
#endif

/// A TCP address for ``EngineServer`` to listen on, as `strata serve --listen HOST:PORT` takes
/// it (dockerd's `-H tcp://HOST:PORT`): an IPv4 address, an IPv6 address in brackets, or a
/// name, then a port from 0 to 65535 (0: the system picks a free one).
///
/// ```swift
/// let local = try EngineTCPAddress("127.0.0.1:2375")   // loopback: plain HTTP is allowed
/// let any = try EngineTCPAddress("tcp://0.0.0.0:2376") // needs EngineTLS (client certificates)
/// try any.requireSafe(tls: nil)                        // throws: refusing to listen on 0.0.0.0:2376 …
/// ```
///
/// Whoever reaches the Engine API can do anything the store's owner can (run a container
/// with the host's root directory mounted, for a root store), so a listener other than
/// loopback is refused unless TLS requires a client certificate (``requireSafe(tls:)``).
public struct EngineTCPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host as given: an IP address (IPv6 without its brackets) or a name.
    public let host: String
    /// The port, 0...65535; 0 asks the system for a free port.
    public let port: Int

    /// Parses `HOST:PORT`, `[IPV6]:PORT` or either with a `tcp://` prefix.
    /// Throws ``StrataError/Code/invalidArgument`` naming the value when it is not one.
    public init(_ text: String) throws {
        func bad(_ why: String) -> StrataError {
            StrataError(.invalidArgument, "invalid listen address '\(text)': \(why) (expected HOST:PORT, e.g. 127.0.0.1:2375 or [::1]:2375)")
        }
        var rest = Substring(text)
        if rest.hasPrefix("tcp://") { rest = rest.dropFirst(6) }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("an IPv6 address without its closing ]") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw bad("no port") }
            portText = after.dropFirst()
            guard Self.ipv6(String(host)) != nil else { throw bad("'\(host)' is not an IPv6 address") }
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw bad("no port") }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
            if host.contains(":") { throw bad("an IPv6 address must be in brackets") }
        }
        guard !portText.isEmpty else { throw bad("no port") }
        guard portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), portText.count <= 5, let port = Int(portText) else {
            throw bad("'\(portText)' is not a port number")
        }
        guard port <= 65535 else { throw bad("port \(port) is out of range (0-65535)") }
        // dockerd reads `tcp://:2375` as every interface.
        let name = host.isEmpty ? "0.0.0.0" : String(host)
        guard name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x2f && $0 != 0x40 }) else {
            throw bad("'\(host)' is not a host name or IP address")
        }
        self.host = name
        self.port = port
    }

    /// An address already parsed (the port a listener on port 0 got).
    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT`, with an IPv6 address in brackets.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Whether only this machine can reach the address: 127.0.0.0/8, ::1 (or an IPv4-mapped
    /// 127.x address), or the name `localhost`. Any other name counts as reachable from outside.
    public var isLoopback: Bool {
        if host.lowercased() == "localhost" { return true }
        if let v4 = Self.ipv4(host) { return v4.0 == 127 }
        if let v6 = Self.ipv6(host) {
            if v6[0..<15].allSatisfy({ $0 == 0 }) && v6[15] == 1 { return true }
            // ::ffff:127.x.y.z
            if v6[0..<10].allSatisfy({ $0 == 0 }) && v6[10] == 0xff && v6[11] == 0xff { return v6[12] == 127 }
        }
        return false
    }

    /// The host NIO binds: `localhost` is 127.0.0.1 (one predictable address, as a client's
    /// `tcp://localhost:PORT` falls back to it), anything else as given.
    var bindHost: String { host.lowercased() == "localhost" ? "127.0.0.1" : host }

    /// Throws unless listening here is safe: the address is loopback, or `tls` requires a
    /// client certificate. The message names the address and the way out (`--tlsverify`).
    public func requireSafe(tls: EngineTLS?) throws {
        guard isLoopback || tls != nil else {
            throw StrataError(.invalidArgument,
                              "refusing to listen on \(self) without --tlsverify: whoever reaches it can do anything the store's owner can (root, for a root store)")
        }
    }

    private static func ipv4(_ s: String) -> (UInt8, UInt8, UInt8, UInt8)? {
        var a = in_addr()
        guard inet_pton(AF_INET, s, &a) == 1 else { return nil }
        return withUnsafeBytes(of: a.s_addr) { ($0[0], $0[1], $0[2], $0[3]) }
    }

    private static func ipv6(_ s: String) -> [UInt8]? {
        var a = in6_addr()
        guard inet_pton(AF_INET6, s, &a) == 1 else { return nil }
        return withUnsafeBytes(of: a) { Array($0) }
    }
}
