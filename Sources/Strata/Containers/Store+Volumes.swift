import Foundation
import GRDB

/// A named volume: a directory under `volumes/<name>/data` that outlives containers.
public struct VolumeInfo: Sendable, Codable, Hashable {
    public var name: String
    public var mountpoint: String
    public var created: Date
    /// Containers that mount it.
    public var containers: [String]
}

/// `-v SOURCE:/path` of create and run: a named volume or a host directory.
public struct VolumeMount: Sendable, Codable, Hashable {
    /// A volume name, or an absolute host path for a bind mount.
    public var source: String
    /// Where it appears in the container.
    public var destination: String
    public var isBind: Bool { source.hasPrefix("/") }

    /// Parses `SOURCE:/path`.
    public init(parsing s: String) throws {
        let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[1].hasPrefix("/"), !parts[0].isEmpty else {
            throw StrataError(.invalidArgument, "invalid volume \"\(s)\": expected NAME:/path or /host/path:/path")
        }
        if !parts[0].hasPrefix("/") { try Store.validateVolumeName(parts[0]) }
        source = parts[0]
        destination = parts[1]
    }
}

extension Store {
    static func validateVolumeName(_ name: String) throws {
        guard name.range(of: #"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"#, options: .regularExpression) != nil else {
            throw StrataError(.invalidArgument, "invalid volume name \"\(name)\": use letters, digits, _ . - (start with a letter or digit)")
        }
    }

    func volumeData(_ name: String) -> String { paths.root.appendingPathComponent("volumes/\(name)/data").path }

    /// Creates a volume (a random name when nil); creating one that exists is a no-op.
    @discardableResult
    public func createVolume(_ name: String? = nil) async throws -> VolumeInfo {
        let n = name ?? randomHex()
        try Self.validateVolumeName(n)
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
                    try db.execute(sql: "INSERT OR IGNORE INTO volumes(name, created_at) VALUES (?, ?)", arguments: [n, now()])
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
                SELECT v.name, v.created_at, (SELECT group_concat(container_id, char(10)) FROM container_volumes cv WHERE cv.volume_name = v.name) AS users
                FROM volumes v ORDER BY v.name
                """).map { ($0["name"] as String, $0["created_at"] as Int64, ($0["users"] as String?) ?? "") }
        }
        return rows.map { VolumeInfo(name: $0.0, mountpoint: volumeData($0.0), created: Date(timeIntervalSince1970: Double($0.1)),
                                     containers: $0.2.split(separator: "\n").map(String.init)) }
            .filter(filters.matches)
    }

    /// Removes volumes no container uses (row first, then the directory). A volume in use is
    /// an error unless it is skipped (`prune`).
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
        // Every strata volume has a name: dockerd (API 1.42 on) prunes named ones only with all.
        guard options.all else { return VolumePruneReport() }
        // strata's volumes carry no labels: a label= filter matches none, label!= spares none.
        guard options.labels.isEmpty else { return VolumePruneReport() }
        let unused = try await volumes().filter(\.containers.isEmpty)
        let sizes = Dictionary(unused.map { ($0.name, treeSize($0.mountpoint)) }) { a, _ in a }
        let removed = try await removeVolumes(unused.map(\.name), skipInUse: true)
        return VolumePruneReport(removed: removed, reclaimedBytes: removed.reduce(0) { $0 + (sizes[$1] ?? 0) })
    }
}

/// Options for ``Store/pruneVolumes(_:)``, as `docker volume prune --filter`.
public struct VolumePruneOptions: Sendable, Hashable {
    /// Named volumes too (`docker volume prune -a`, the `all` filter). strata's volumes all
    /// have names, so without it nothing is removed, as dockerd keeps named volumes.
    public var all: Bool
    /// `label=`: only volumes with these labels (strata's volumes have none).
    public var labels: [String]
    /// `label!=`: not the volumes with these labels.
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
