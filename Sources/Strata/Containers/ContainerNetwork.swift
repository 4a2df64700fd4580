import Foundation

/// The network a container is on, in Docker's words: `none`, an empty network namespace of
/// its own (strata's default; dockerd's `--network none`), or `host`, the host's
/// (``ContainerOptions/hostNetwork``, `--network host`). strata makes no other networks.
public enum ContainerNetwork: String, Sendable, CaseIterable, Hashable {
    case none
    case host

    /// The name Docker gives it.
    public var name: String { rawValue }

    /// Its ID: fixed, as strata makes neither (dockerd's are random per daemon).
    public var id: String { Digest.sha256(Data("strata network \(rawValue)".utf8)).encoded }

    /// dockerd's driver for it: `null`, `host`.
    public var driver: String { self == .none ? "null" : "host" }

    /// Whether a `network=` filter value names it, as dockerd reads one: its name, or a
    /// prefix of its ID.
    public func isNamed(by value: String) -> Bool { value == name || id.hasPrefix(value) }
}

extension ContainerInfo {
    /// The network its runs are on.
    public var network: ContainerNetwork { hostNetwork == true ? .host : .none }
}
