import Foundation

/// A container's TCP or UDP port published on the host (`docker run -p
/// [IP:][HOSTPORT:]PORT[/tcp|/udp]`): while the container runs, connections (TCP) or
/// datagrams (UDP) to `hostIP:hostPort` are passed to `containerPort` on the container's
/// loopback, inside its network namespace (``PortProxy``).
public struct PublishedPort: Sendable, Codable, Hashable {
    /// The host address to listen on; empty for every IPv4 address (0.0.0.0).
    public var hostIP: String
    /// The host port; 0 for a free one, chosen at each start.
    public var hostPort: Int
    public var containerPort: Int
    /// `tcp` or `udp`.
    public var proto: String

    public init(hostIP: String = "", hostPort: Int = 0, containerPort: Int, proto: String = "tcp") {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.proto = proto
    }

    private enum CodingKeys: String, CodingKey { case hostIP, hostPort, containerPort, proto }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hostIP = try c.decode(String.self, forKey: .hostIP)
        hostPort = try c.decode(Int.self, forKey: .hostPort)
        containerPort = try c.decode(Int.self, forKey: .containerPort)
        // A record written before UDP was served has none: TCP.
        proto = try c.decodeIfPresent(String.self, forKey: .proto) ?? "tcp"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hostIP, forKey: .hostIP)
        try c.encode(hostPort, forKey: .hostPort)
        try c.encode(containerPort, forKey: .containerPort)
        if proto != "tcp" { try c.encode(proto, forKey: .proto) }
    }

    /// Whether datagrams, not connections, are passed.
    public var isUDP: Bool { proto == "udp" }

    /// `-p` as docker reads it: `PORT`, `HOSTPORT:PORT`, `IP:HOSTPORT:PORT` or `IP::PORT`, each
    /// with an optional `/tcp` or `/udp`. SCTP, port ranges and IPv6 addresses are refused
    /// with an `.invalidArgument` error that names the value.
    ///
    /// ```swift
    /// let p = try PublishedPort(parsing: "127.0.0.1:8080:80")   // 127.0.0.1, 8080 -> 80
    /// ```
    public init(parsing text: String) throws {
        var spec = Substring(text)
        var proto = "tcp"
        if let slash = spec.lastIndex(of: "/") {
            proto = String(spec[spec.index(after: slash)...])
            guard proto == "tcp" || proto == "udp" else {
                throw StrataError(.invalidArgument, "cannot publish \(text): strata publishes TCP and UDP ports only")
            }
            spec = spec[..<slash]
        }
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 3 else {
            throw StrataError(.invalidArgument, "invalid port \"\(text)\": use [IP:][HOSTPORT:]PORT (IPv4 only)")
        }
        guard let port = Self.port(parts[parts.count - 1]), port > 0 else {
            throw StrataError(.invalidArgument, "invalid port \"\(text)\": the container port must be a number from 1 to 65535")
        }
        var host = 0
        if parts.count >= 2, !parts[parts.count - 2].isEmpty {
            guard let h = Self.port(parts[parts.count - 2]) else {
                throw StrataError(.invalidArgument, "invalid port \"\(text)\": the host port must be a number from 0 to 65535")
            }
            host = h
        }
        let ip = parts.count == 3 ? parts[0] : ""
        var parsed = in_addr()
        guard ip.isEmpty || inet_pton(AF_INET, ip, &parsed) == 1 else {
            throw StrataError(.invalidArgument, "invalid port \"\(text)\": \(ip) is not an IPv4 address")
        }
        self.init(hostIP: ip, hostPort: host, containerPort: port, proto: proto)
    }

    /// Docker's key for the container's side: `80/tcp`, `53/udp`.
    public var key: String { "\(containerPort)/\(proto)" }

    private static func port(_ s: String) -> Int? {
        guard !s.isEmpty, s.count <= 5, s.allSatisfy({ $0 >= "0" && $0 <= "9" }), let n = Int(s), (0...65535).contains(n) else { return nil }
        return n
    }
}
