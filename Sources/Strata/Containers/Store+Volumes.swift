import Foundation
import GRDB

/// A named volume: a directory under `volumes/<name>/data` that outlives containers.
public struct VolumeInfo: Sendable, Codable, Hashable {
    public var name: String
    public var mountpoint: String
    public var created: Date
    /// Containers that mount it.
    public var containers: [String]
    /// Its labels (`docker volume create --label`); an anonymous volume carries
    /// ``VolumeInfo/anonymousLabel``.
    public var labels: [String: String] = [:]

    /// The label dockerd puts on the volumes it makes for `-v /path` and an image's VOLUME;
    /// `volume prune` without `all` removes only volumes that carry it.
    public static let anonymousLabel = "com.docker.volume.anonymous"

    /// Made for one container (`-v /path`, an image's VOLUME) rather than by name.
    public var isAnonymous: Bool { labels[Self.anonymousLabel] != nil }
}

/// `-v` of create and run: a named volume (`NAME:/path`), a host directory
/// (`/host/path:/path`), or a new anonymous volume (`/path` alone); each may end in `:MODE`.
public struct VolumeMount: Sendable, Codable, Hashable {
    /// A volume name, or an absolute host path for a bind mount. Empty for an anonymous
    /// volume not made yet: ``Store/createContainer(from:options:)`` names it.
    public var source: String
    /// Where it appears in the container: an absolute path, cleaned (`/data/` is `/data`).
    public var destination: String
    /// A volume strata made for this container (`-v /path`, or the image's VOLUME): `rm -v`
    /// and `--rm` remove it, as they do under dockerd. A named volume outlives them. Nil for false.
    public var anonymous: Bool?
    /// The options after the last colon, as given (`ro`, `ro,z`, `nocopy`); nil for none.
    public var mode: String?
    public var isBind: Bool { source.hasPrefix("/") }
    /// Mounted read-only (`:ro`).
    public var isReadOnly: Bool { modeOptions.contains("ro") }
    /// An empty volume is not filled from the image (`:nocopy`).
    public var isNoCopy: Bool { modeOptions.contains("nocopy") }
    /// A bind's mount propagation (`shared`, `rshared`, `slave`, `rslave`, `private`,
    /// `rprivate`); nil for dockerd's default, `rprivate`.
    public var propagation: String? { modeOptions.last { Self.propagationWords.contains($0) }.map(String.init) }
    public static let propagationWords: Set<Substring> = ["shared", "rshared", "slave", "rslave", "private", "rprivate"]
    private var modeOptions: [Substring] { (mode ?? "").split(separator: ",") }

    /// The options dockerd takes in a mode on Linux. `z` and `Z` relabel for SELinux, which
    /// this host does not enforce, and the consistency words mean nothing on Linux: accepted
    /// and without effect, as under dockerd. A propagation applies to a bind.
    static let modeWords: Set<Substring> = ["ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave",
                                            "consistent", "cached", "delegated"]

    /// Parses `SOURCE:/path[:MODE]`, or `/path[:MODE]` for an anonymous volume.
    public init(parsing s: String) throws {
        var parts = s.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        var mode: String?
        if parts.count == 3 || (parts.count == 2 && parts[0].hasPrefix("/") && !parts[1].hasPrefix("/")) {
            mode = parts.removeLast()
        }
        if parts.count == 2, parts[0].isEmpty {
            throw StrataError(.invalidArgument, "invalid volume \"\(s)\": expected NAME:/path, /host/path:/path or /path")
        }
        try self.init(source: parts.count == 2 ? parts[0] : "", destination: parts[parts.count - 1], mode: mode, spec: s)
    }

    /// A mount from its parts (`docker run --mount`, where a path may hold a colon): `source`
    /// a volume name, an absolute host path, or empty for a new anonymous volume.
    public init(source: String, destination: String, mode: String? = nil) throws {
        try self.init(source: source, destination: destination, mode: mode,
                      spec: [source.isEmpty ? nil : source, destination, mode].compactMap { $0 }.joined(separator: ":"))
    }

    private init(source: String, destination: String, mode: String?, spec s: String) throws {
        if source.isEmpty {
            anonymous = true
        } else if !source.hasPrefix("/") {
            try Store.validateVolumeName(source)
        }
        self.source = source
        self.destination = try Self.destination(destination, in: s)
        if let mode {
            let words = mode.split(separator: ",", omittingEmptySubsequences: false)
            if let bad = words.first(where: { !Self.modeWords.contains($0) }) {
                throw StrataError(.invalidArgument, "invalid volume \"\(s)\": unknown mode \"\(bad)\" (strata takes ro, rw, z, Z, nocopy)")
            }
            guard !(words.contains("ro") && words.contains("rw")) else {
                throw StrataError(.invalidArgument, "invalid volume \"\(s)\": ro and rw together")
            }
            if source.hasPrefix("/"), words.contains("nocopy") {
                throw StrataError(.invalidArgument, "invalid volume \"\(s)\": nocopy applies to volumes, not to host directories")
            }
            if !source.hasPrefix("/"), let p = words.first(where: { Self.propagationWords.contains($0) && !$0.hasSuffix("private") }) {
                throw StrataError(.invalidArgument, "invalid volume \"\(s)\": propagation \(p) applies to host directories, not to volumes")
            }
            guard words.filter({ Self.propagationWords.contains($0) }).count <= 1 else {
                throw StrataError(.invalidArgument, "invalid volume \"\(s)\": more than one propagation")
            }
            self.mode = mode
        }
    }

    /// A new anonymous volume at `destination`, an absolute path.
    public init(anonymousAt destination: String) {
        source = ""
        self.destination = destination
        anonymous = true
    }

    /// A mount destination as dockerd takes one: absolute, cleaned, not the root.
    static func destination(_ path: String, in spec: String) throws -> String {
        guard path.hasPrefix("/") else {
            throw StrataError(.invalidArgument, "invalid volume \"\(spec)\": the path in the container must be absolute")
        }
        guard let clean = LayerEntry.clean(path) else {
            throw StrataError(.invalidArgument, "invalid volume \"\(spec)\": the container's root cannot be a mount point")
        }
        return "/" + clean
    }
}

extension Store {
    static func validateVolumeName(_ name: String) throws {
        guard name.range(of: #"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"#, options: .regularExpression) != nil else {
            throw StrataError(.invalidArgument, "invalid volume name \"\(name)\": use letters, digits, _ . - (start with a letter or digit)")
        }
    }

    func volumeData(_ name: String) -> String { paths.root.appendingPathComponent("volumes/\(name)/data").path }

    /// Creates a volume with `labels`; creating one that exists is a no-op that keeps its
    /// labels, as dockerd's. With no name, as dockerd: a random one, and the volume is
    /// anonymous (``VolumeInfo/anonymousLabel``), so `volume prune` takes it once unused.
    ///
    /// ```swift
    /// try await store.createVolume("data", labels: ["team": "db"])
    /// ```
    @discardableResult
    public func createVolume(_ name: String? = nil, labels: [String: String] = [:]) async throws -> VolumeInfo {
        let n = name ?? randomHex()
        var labels = labels
        if name == nil { labels[VolumeInfo.anonymousLabel] = "" }
        try Self.validateVolumeName(n)
        let labelsJSON = labels.isEmpty ? nil : String(decoding: try CanonicalJSON.encode(labels), as: UTF8.self)
        let dir = paths.root.appendingPathComponent("volumes/\(n)").path
        let existed = access(dir, F_OK) == 0
        try await explainingDiskFull("creating volume \(n)") {
            // A lease holds the directory from before it is made until its row is committed:
            // gc removes a volume directory with no row (a create cut short) only unleased.
            let lease = try await createLease("volume create", refs: [n], kind: "volume")
            do {
                // Durable (each new directory's parent fsynced) before the row names it (law 1).
                try StorePaths.createDurableDirectory(volumeData(n))
                CrashPoint.hit("volume-create.after-mkdir")
                try await write(untracked: { db in
                    try db.execute(sql: "DELETE FROM leases WHERE id = ?", arguments: [lease])
                }) { db in
                    try db.execute(sql: "INSERT OR IGNORE INTO volumes(name, created_at, labels) VALUES (?, ?, ?)", arguments: [n, now(), labelsJSON])
                }
            } catch {
                // A failed create (a full disk) leaves no directory without a row behind (law 8).
                if !existed { try? FileManager.default.removeItem(atPath: dir) }
                await dropLease(lease)
                throw error
            }
        }
        return try await volume(n)
    }

    /// Bytes of the regular files in a volume's data (`docker system df -v`: SIZE).
    ///
    /// ```swift
    /// let bytes = try await store.volumeSize("data")
    /// ```
    public func volumeSize(_ name: String) async throws -> Int64 {
        _ = try await volume(name)
        return treeSize(volumeData(name))
    }

    public func volume(_ name: String) async throws -> VolumeInfo {
        guard let v = try await volumes().first(where: { $0.name == name }) else {
            throw StrataError(.volumeNotFound, "no such volume: \(name)")
        }
        return v
    }

    /// Volumes by name, those every filter selects (``VolumeFilters``); all by default.
    ///
    /// ```swift
    /// let unused = try await store.volumes(filters: VolumeFilters(dangling: [true]))
    /// ```
    public func volumes(filters: VolumeFilters = VolumeFilters()) async throws -> [VolumeInfo] {
        let rows = try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT v.name, v.created_at, v.labels, (SELECT group_concat(container_id, char(10)) FROM container_volumes cv WHERE cv.volume_name = v.name) AS users
                FROM volumes v ORDER BY v.name
                """).map { ($0["name"] as String, $0["created_at"] as Int64, $0["labels"] as String?, ($0["users"] as String?) ?? "") }
        }
        return try rows.map { name, created, labels, users in
            var v = VolumeInfo(name: name, mountpoint: volumeData(name), created: Date(timeIntervalSince1970: Double(created)),
                               containers: users.split(separator: "\n").map(String.init))
            if let labels {
                do { v.labels = try JSONDecoder().decode([String: String].self, from: Data(labels.utf8)) } catch {
                    throw StrataError(.database, "volume \(name) has unreadable labels", cause: error)
                }
            }
            return v
        }.filter(filters.matches)
    }

    /// Removes volumes no container uses (row first, then the directory). A volume in use is
    /// an error unless it is skipped (`prune`), which also skips one a container create in
    /// progress holds.
    @discardableResult
    public func removeVolumes(_ names: [String], skipInUse: Bool = false) async throws -> [String] {
        let removed = try await write { db -> [String] in
            var out: [String] = []
            for n in names {
                guard try Bool.fetchOne(db, sql: "SELECT 1 FROM volumes WHERE name = ?", arguments: [n]) == true else {
                    if skipInUse { continue }
                    throw StrataError(.volumeNotFound, "no such volume: \(n)")
                }
                if let user = try String.fetchOne(db, sql: "SELECT container_id FROM container_volumes WHERE volume_name = ? LIMIT 1", arguments: [n]) {
                    if skipInUse { continue }
                    throw StrataError(.conflict, "volume \(n) is in use by container \(user.prefix(12))")
                }
                // A container being created holds its volumes by a lease until its row names
                // them: a prune in between (cron) must not take a volume it has just made. A
                // volume named to be removed goes all the same (a lease a killed process left
                // must not keep it until the lease expires).
                if skipInUse, try Bool.fetchOne(db, sql: """
                    SELECT 1 FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE r.kind = 'volume' AND r.ref = ? AND l.expires_at > ?
                    """, arguments: [n, now()]) == true {
                    continue
                }
                try db.execute(sql: "DELETE FROM volumes WHERE name = ?", arguments: [n])
                try db.execute(sql: "INSERT OR IGNORE INTO pending_unlinks(path, queued_at) VALUES (?, ?)", arguments: ["volumes/\(n)", now()])
                out.append(n)
            }
            return out
        }
        CrashPoint.hit("volume-rm.after-commit")
        try replayPendingUnlinks()
        return removed
    }

    /// Removes every volume no container uses.
    public func pruneVolumes() async throws -> [String] {
        try await pruneVolumes(VolumePruneOptions(all: true)).removed
    }

    /// Removes the volumes no container uses that `options` selects (`docker volume prune`),
    /// with the bytes they held.
    ///
    /// ```swift
    /// let report = try await store.pruneVolumes(VolumePruneOptions(all: true))
    /// print(report.removed, report.reclaimedBytes)
    /// ```
    public func pruneVolumes(_ options: VolumePruneOptions) async throws -> VolumePruneReport {
        let unused = try await volumes().filter { v in
            // As dockerd from API 1.42: named volumes go only with `all`.
            v.containers.isEmpty && (options.all || v.isAnonymous)
                && FilterPattern.matchesLabels(options.labels, v.labels)
                && (options.notLabels.isEmpty || !FilterPattern.matchesLabels(options.notLabels, v.labels))
        }
        let sizes = Dictionary(unused.map { ($0.name, treeSize($0.mountpoint)) }) { a, _ in a }
        let removed = try await removeVolumes(unused.map(\.name), skipInUse: true)
        return VolumePruneReport(removed: removed, reclaimedBytes: removed.reduce(0) { $0 + (sizes[$1] ?? 0) })
    }
}

/// Options for ``Store/pruneVolumes(_:)``, as `docker volume prune --filter`.
public struct VolumePruneOptions: Sendable, Hashable {
    /// Named volumes too (`docker volume prune -a`, the `all` filter). Without it only
    /// anonymous volumes go (``VolumeInfo/isAnonymous``), as dockerd keeps named volumes.
    public var all: Bool
    /// `label=`: only volumes with every one of these labels (`KEY` or `KEY=VALUE`).
    public var labels: [String]
    /// `label!=`: not the volumes with every one of these labels.
    public var notLabels: [String]

    public init(all: Bool = false, labels: [String] = [], notLabels: [String] = []) {
        self.all = all
        self.labels = labels
        self.notLabels = notLabels
    }

    /// Options from filters by name, as the Engine API gives them: `all` (true/false),
    /// `label`, `label!`. Any other key is an invalid-argument error.
    public init(filters: [String: [String]]) throws {
        self.init()
        for (k, values) in filters.sorted(by: { $0.key < $1.key }) {
            switch k {
            case "all": all = try FilterPattern.booleans(values, key: k).contains(true)
            case "label": labels += values
            case "label!": notLabels += values
            default: throw FilterPattern.invalid(k)
            }
        }
    }
}

/// What ``Store/pruneVolumes(_:)`` removed.
public struct VolumePruneReport: Sendable, Codable, Hashable {
    /// The names of the volumes removed.
    public var removed: [String] = []
    /// The bytes their data held.
    public var reclaimedBytes: Int64 = 0
}
