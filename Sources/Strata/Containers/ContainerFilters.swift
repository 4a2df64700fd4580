import Foundation

/// Which containers ``Store/containers(all:filters:)`` lists: `docker ps --filter`, with
/// dockerd's rules.
///
/// Values of one key are alternatives (any may match); different keys must all match.
/// `id` and `name` match exactly or as an unanchored regular expression (`name` also
/// against `/NAME`, as dockerd's names start with a slash). A `status`, `before` or `since`
/// filter lists stopped containers too, as `docker ps -a` would.
///
/// `label` matches a container's labels (its image's, and those given at create). `network`
/// matches the network a container is on (``ContainerNetwork``: `none` or `host`), by name or
/// ID prefix, as dockerd. `publish` matches the host side of the ports a running container
/// published (``ContainerInfo/publishedPorts``), `expose` the ports a container exposes
/// (``ContainerInfo/exposedPorts``): `PORT[/PROTO]` or a range `FIRST-LAST[/PROTO]`, TCP
/// when no protocol is given. `health` matches the status of a container's checks
/// (``HealthState``), `none` for a container that has none or never ran with one, as dockerd.
/// strata's containers are never swarm tasks: `is-task` matches only `false`.
///
/// ```swift
/// let exited = try ContainerFilters(["status": ["exited"], "ancestor": ["busybox"]])
/// let list = try await store.containers(all: false, filters: exited)
/// ```
public struct ContainerFilters: Sendable, Hashable {
    /// `id=`: container IDs, or parts of one (an unanchored expression: a prefix matches).
    public var ids: [String]
    /// `name=`: names (a container without one is named by its short ID), exact or an
    /// unanchored expression (`^web` for names starting with `web`).
    public var names: [String]
    /// `status=`: states (one of ``states``); implies listing stopped containers.
    public var statuses: [String]
    /// `exited=`: exit codes of containers that ran and stopped.
    public var exitCodes: [Int32]
    /// `ancestor=`: images (a name or an ID); a container matches when its image is one of
    /// them or built on one. An image the store does not have matches nothing.
    public var ancestors: [String]
    /// `before=`: containers (ID, prefix or name); lists those created before the earliest.
    public var before: [String]
    /// `since=`: containers (ID, prefix or name); lists those created after the latest.
    public var since: [String]
    /// `volume=`: a volume name, a bind-mount source, or a mount destination.
    public var volumes: [String]
    /// `health=`: one of ``healthStates``.
    public var health: [String]
    /// `is-task=`: swarm tasks or not; strata's containers are never tasks.
    public var isTask: [Bool]
    /// `label=`: `KEY` or `KEY=VALUE`; every one must match the container's labels.
    public var labels: [String]
    /// `network=`: the name of the container's network (``ContainerNetwork``) or a prefix of
    /// its ID.
    public var networks: [String]
    /// `publish=`: a host port (or range, `/tcp` optional) a running container published.
    public var published: [String]
    /// `expose=`: a port (or range, `/tcp` when no protocol is given) a container exposes.
    public var exposed: [String]

    /// The keys `docker ps --filter` accepts.
    public static let keys: Set<String> = ["ancestor", "before", "expose", "exited", "health", "id", "is-task", "label",
                                           "name", "network", "publish", "since", "status", "volume"]
    /// The values `status=` takes (Docker's container states).
    public static let states: Set<String> = ["created", "restarting", "running", "removing", "paused", "exited", "dead"]
    /// The values `health=` takes.
    public static let healthStates: Set<String> = ["starting", "healthy", "unhealthy", "none"]

    /// Filters from their parts; the defaults select every container.
    ///
    /// ```swift
    /// let f = ContainerFilters(names: ["^web"], statuses: ["running", "exited"])
    /// ```
    public init(ids: [String] = [], names: [String] = [], statuses: [String] = [], exitCodes: [Int32] = [],
                ancestors: [String] = [], before: [String] = [], since: [String] = [], volumes: [String] = [],
                health: [String] = [], isTask: [Bool] = [], labels: [String] = [], networks: [String] = [],
                published: [String] = [], exposed: [String] = []) {
        self.ids = ids
        self.names = names
        self.statuses = statuses
        self.exitCodes = exitCodes
        self.ancestors = ancestors
        self.before = before
        self.since = since
        self.volumes = volumes
        self.health = health
        self.isTask = isTask
        self.labels = labels
        self.networks = networks
        self.published = published
        self.exposed = exposed
    }

    /// Filters by key as `docker ps --filter KEY=VALUE` and the Engine API's `filters` give
    /// them. An unknown key (`invalid filter 'colour'`) or a value its key cannot take
    /// (`invalid filter 'status=sleepy'`, a non-number `exited`, a `health` or `is-task`
    /// outside its values) is an `.invalidArgument` error, with dockerd's message.
    ///
    /// ```swift
    /// let f = try ContainerFilters(["status": ["exited"], "exited": ["3"]])
    /// ```
    public init(_ byKey: [String: [String]]) throws {
        for key in byKey.keys.sorted() where !Self.keys.contains(key) { throw FilterPattern.invalid(key) }
        let values = { (key: String) in byKey[key] ?? [] }
        for s in values("status") where !Self.states.contains(s) { throw FilterPattern.invalid("status=\(s)") }
        let exitCodes = try values("exited").map { v -> Int32 in
            guard let n = Int32(v) else { throw FilterPattern.invalid("exited=\(v)") }
            return n
        }
        for h in values("health") where !Self.healthStates.contains(h) { throw FilterPattern.invalid("health=\(h)") }
        self.init(ids: values("id"), names: values("name"), statuses: values("status"), exitCodes: exitCodes,
                  ancestors: values("ancestor"), before: values("before"), since: values("since"), volumes: values("volume"),
                  health: values("health"), isTask: try FilterPattern.booleans(values("is-task"), key: "is-task"),
                  labels: values("label"), networks: values("network"), published: values("publish"), exposed: values("expose"))
    }

    /// Whether the filters widen the listing to stopped containers, as `-a` does: a `status`,
    /// `before` or `since` filter does with dockerd (moby's `daemon/list.go`).
    var listsStopped: Bool { !statuses.isEmpty || !before.isEmpty || !since.isEmpty }

    /// Whether `c` passes every filter but `ancestor`, `before` and `since`, which name other
    /// objects: those are looked up once per listing and passed in as the creation-time
    /// bounds (`before` exclusive upper, `since` exclusive lower).
    func matches(_ c: ContainerInfo, createdBefore: Date?, createdAfter: Date?) -> Bool {
        let name = c.name ?? String(c.id.prefix(12))
        if !ids.isEmpty, !ids.contains(where: { FilterPattern.matches($0, c.id) }) { return false }
        if !names.isEmpty, !names.contains(where: { FilterPattern.matches($0, name) || FilterPattern.matches($0, "/" + name) }) {
            return false
        }
        if !statuses.isEmpty, !statuses.contains(c.dockerState) { return false }
        if !exitCodes.isEmpty, !(c.state == "exited" && c.startedAt != nil && exitCodes.contains(c.exitCode ?? 0)) { return false }
        if !labels.isEmpty, !FilterPattern.matchesLabels(labels, c.labels ?? [:]) { return false }
        if !networks.isEmpty, !networks.contains(where: { c.network.isNamed(by: $0) }) { return false }
        let ports = c.publishedPorts ?? []
        if !published.isEmpty, !published.contains(where: { f in ports.contains { Self.port($0.hostPort, "tcp", in: f) } }) { return false }
        if !exposed.isEmpty {
            let keys = (c.exposedPorts ?? []).compactMap { key -> (Int, String)? in
                let parts = key.split(separator: "/", maxSplits: 1)
                return Int(parts[0]).map { ($0, parts.count == 2 ? String(parts[1]) : "tcp") }
            }
            if !exposed.contains(where: { f in keys.contains { Self.port($0.0, $0.1, in: f) } }) { return false }
        }
        if !health.isEmpty, !health.contains(c.health?.Status ?? "none") { return false }
        if !isTask.isEmpty, !isTask.contains(false) { return false }
        if let createdBefore, c.created >= createdBefore { return false }
        if let createdAfter, c.created <= createdAfter { return false }
        if !volumes.isEmpty {
            let mounts = c.volumes ?? []
            if !volumes.contains(where: { f in mounts.contains { $0.source == f || $0.destination == f } }) { return false }
        }
        return true
    }

    /// Whether `port`/`proto` is what a `publish=`/`expose=` value names: `80`, `80/tcp`,
    /// `8000-8080/udp` (no protocol is TCP).
    static func port(_ port: Int, _ proto: String, in value: String) -> Bool {
        var spec = Substring(value)
        var wanted = "tcp"
        if let slash = spec.firstIndex(of: "/") {
            wanted = String(spec[spec.index(after: slash)...])
            spec = spec[..<slash]
        }
        guard wanted == proto else { return false }
        let bounds = spec.split(separator: "-", maxSplits: 1).map { Int($0) }
        guard let first = bounds.first ?? nil else { return false }
        let last = bounds.count == 2 ? bounds[1] : first
        guard let last else { return false }
        return (first...max(first, last)).contains(port)
    }
}
