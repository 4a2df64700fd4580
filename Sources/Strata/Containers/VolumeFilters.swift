import Foundation

/// Which volumes ``Store/volumes(filters:)`` lists: `docker volume ls --filter`, with
/// dockerd's rules.
///
/// Values of one key are alternatives (any may match); different keys must all match.
/// `name` and `driver` match exactly or as an unanchored regular expression (every strata
/// volume has the `local` driver); every `label` must match, as dockerd's `MatchKVList`.
///
/// ```swift
/// let unused = try await store.volumes(filters: try VolumeFilters(["dangling": ["true"]]))
/// ```
public struct VolumeFilters: Sendable, Hashable {
    /// `name=`: volume names, exact or an unanchored expression (`data` matches `data1`).
    public var names: [String]
    /// `dangling=`: `true` for volumes no container mounts, `false` for those one does.
    public var dangling: [Bool]
    /// `driver=`: driver names (every strata volume is `local`).
    public var drivers: [String]
    /// `label=`: `KEY` or `KEY=VALUE`; a volume must have every one.
    public var labels: [String]

    /// The keys `docker volume ls --filter` accepts.
    public static let keys: Set<String> = ["dangling", "driver", "label", "name"]

    /// Filters from their parts; the defaults select every volume.
    ///
    /// ```swift
    /// let f = VolumeFilters(names: ["^cache-"], dangling: [true])
    /// ```
    public init(names: [String] = [], dangling: [Bool] = [], drivers: [String] = [], labels: [String] = []) {
        self.names = names
        self.dangling = dangling
        self.drivers = drivers
        self.labels = labels
    }

    /// Filters by key as `docker volume ls --filter KEY=VALUE` and the Engine API's
    /// `filters` give them. An unknown key (`invalid filter 'colour'`) or a `dangling` other
    /// than true or false (`invalid filter 'dangling=maybe'`) is an `.invalidArgument` error.
    ///
    /// ```swift
    /// let f = try VolumeFilters(["name": ["data"], "dangling": ["false"]])
    /// ```
    public init(_ byKey: [String: [String]]) throws {
        for key in byKey.keys.sorted() where !Self.keys.contains(key) { throw FilterPattern.invalid(key) }
        self.init(names: byKey["name"] ?? [], dangling: try FilterPattern.booleans(byKey["dangling"] ?? [], key: "dangling"),
                  drivers: byKey["driver"] ?? [], labels: byKey["label"] ?? [])
    }

    /// Whether `v` passes every filter.
    func matches(_ v: VolumeInfo) -> Bool {
        if !names.isEmpty, !names.contains(where: { FilterPattern.matches($0, v.name) }) { return false }
        if !dangling.isEmpty, !dangling.contains(v.containers.isEmpty) { return false }
        if !drivers.isEmpty, !drivers.contains(where: { FilterPattern.matches($0, "local") }) { return false }
        return FilterPattern.matchesLabels(labels, v.labels)
    }
}
