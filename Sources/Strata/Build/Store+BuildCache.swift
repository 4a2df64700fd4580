import Foundation
import GRDB

/// One build-cache entry: a step's key and the image it produced (`builder du`).
public struct BuildCacheEntry: Sendable, Codable, Hashable {
    /// The cache key: sha256 over parent image ID, normalised instruction and sources.
    public var key: String
    public var parentImageID: String?
    /// The normalised instruction, e.g. `RUN |1 A=b /bin/sh -c make`.
    public var instruction: String
    public var resultImageID: String
    public var lastUsed: Date
    public var uses: Int
    /// Bytes the step's layer adds to its parent (0 for metadata-only steps).
    public var size: Int64
    /// True when nothing but the build cache keeps the result image (no tag, container or
    /// lease reaches it): pruning the entry frees its layer.
    public var reclaimable: Bool
    /// When the step's image was stored, that is when the entry was made; nil for a cache
    /// mount.
    public var created: Date?
}

/// Options for ``Store/pruneBuildCache(_:)``, as `docker builder prune`.
public struct BuildCachePruneOptions: Sendable {
    /// Every entry, also those whose images a tag still reaches (default: only reclaimable ones).
    public var all = false
    /// Keep entries used within this long (`--keep-duration`, `--filter until=`).
    public var keepDuration: TimeInterval?
    /// Keep the most recently used entries up to this many bytes (`--keep-storage`).
    public var keepStorage: Int64?

    public init(all: Bool = false, keepDuration: TimeInterval? = nil, keepStorage: Int64? = nil) {
        self.all = all
        self.keepDuration = keepDuration
        self.keepStorage = keepStorage
    }
}

/// What a build-cache prune removed.
public struct BuildCachePruneReport: Sendable, Codable {
    /// Keys of the removed entries.
    public var removed: [String] = []
    /// Bytes of blobs that left the store.
    public var reclaimedBytes: Int64 = 0
}

extension Store {
    /// The image a cache key names, if its entry and image are still there; counts the use.
    package func cachedBuildResult(key: String) async throws -> Digest? {
        let t = now()
        // No fsync of its own: a use count lost in a power cut harms nothing.
        let id = try await writeNotDurable { db -> String? in
            guard let id = try String.fetchOne(db, sql: """
                SELECT c.result_image_id FROM build_cache c JOIN images i ON i.id = c.result_image_id
                WHERE c.key = ? AND i.broken = 0
                """, arguments: [key]) else { return nil }
            try db.execute(sql: "UPDATE build_cache SET last_used_at = ?, uses = uses + 1 WHERE key = ?", arguments: [t, key])
            return id
        }
        return try id.map { try Digest($0) }
    }

    /// Records (or replaces) a step's cache entry.
    package func recordBuildCache(key: String, parent: Digest?, instruction: String, result: Digest) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO build_cache(key, parent_image_id, instruction, result_image_id, last_used_at, uses) VALUES (?, ?, ?, ?, ?, 1)
                ON CONFLICT(key) DO UPDATE SET result_image_id = excluded.result_image_id, instruction = excluded.instruction,
                    parent_image_id = excluded.parent_image_id, last_used_at = excluded.last_used_at
                """, arguments: [key, parent?.string, instruction, result.string, now()])
        }
    }

    /// `kept(id)`: the images tags, containers and live leases reach through parent links
    /// (``Liveness``'s rule without the build cache's roots).
    private static let keptWithoutCacheCTE = Liveness.liveImagesCTE([.tags, .containers, .leases])
        .replacingOccurrences(of: "live_images", with: "kept")

    /// Every cache entry, most recently used first, with its layer size and whether pruning it
    /// frees space. `RUN --mount=type=cache` directories are entries too (instruction
    /// `RUN --mount=type=cache,id=ID`, no image, always reclaimable).
    public func buildCacheEntries() async throws -> [BuildCacheEntry] {
        let steps = try await buildStepEntries()
        let mounts = cacheMounts().map { m in
            BuildCacheEntry(key: "sha256:" + m.hex, parentImageID: nil, instruction: "RUN --mount=type=cache,id=\(m.id)", resultImageID: "",
                            lastUsed: m.lastUsed, uses: m.uses, size: m.size, reclaimable: true)
        }
        if mounts.isEmpty { return steps }
        return (steps + mounts).sorted { $0.lastUsed != $1.lastUsed ? $0.lastUsed > $1.lastUsed : $0.key < $1.key }
    }

    private func buildStepEntries() async throws -> [BuildCacheEntry] {
        let t = now()
        return try await read { db in
            try Row.fetchAll(db, sql: Self.keptWithoutCacheCTE + """
                SELECT c.key, c.parent_image_id, c.instruction, c.result_image_id, c.last_used_at, c.uses, i.added_at,
                       max(0, coalesce(i.size, 0) - coalesce(p.size, 0)) AS size,
                       NOT EXISTS (SELECT 1 FROM kept k WHERE k.id = c.result_image_id) AS reclaimable
                FROM build_cache c LEFT JOIN images i ON i.id = c.result_image_id LEFT JOIN images p ON p.id = c.parent_image_id
                ORDER BY c.last_used_at DESC, c.key
                """, arguments: ["now": t]).map { r in
                BuildCacheEntry(key: r["key"], parentImageID: r["parent_image_id"], instruction: r["instruction"],
                                resultImageID: r["result_image_id"], lastUsed: Date(timeIntervalSince1970: TimeInterval(r["last_used_at"] as Int64)),
                                uses: r["uses"], size: r["size"], reclaimable: r["reclaimable"],
                                created: (r["added_at"] as Int64?).map { Date(timeIntervalSince1970: TimeInterval($0)) })
            }
        }
    }

    /// Removes build-cache entries by policy, then the images only they kept.
    ///
    /// An entry goes when it is a candidate (reclaimable, or any with `all`) and either was
    /// last used before `keepDuration` or falls outside the `keepStorage` budget (the most
    /// recently used entries are kept first). With neither policy every candidate goes.
    /// Images no tag, container, lease or remaining entry reaches are then removed at once
    /// (no grace period: the user asked), leaves first.
    public func pruneBuildCache(_ options: BuildCachePruneOptions) async throws -> BuildCachePruneReport {
        let entries = try await buildCacheEntries()
        let t = Date()
        var doomed: [BuildCacheEntry] = []
        var budget = options.keepStorage
        for e in entries {  // most recently used first
            guard options.all || e.reclaimable else { continue }
            var remove = options.keepDuration == nil && options.keepStorage == nil
            if let d = options.keepDuration, t.timeIntervalSince(e.lastUsed) > d { remove = true }
            if let b = budget {
                if e.size <= b, !remove { budget = b - e.size } else { remove = true }
            }
            if remove { doomed.append(e) }
        }
        var report = BuildCachePruneReport()
        guard !doomed.isEmpty else { return report }
        let keys = doomed.map(\.key)
        let before = try await read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blobs") ?? 0 }
        try await write { db in
            for k in keys { try db.execute(sql: "DELETE FROM build_cache WHERE key = ?", arguments: [k]) }
        }
        CrashPoint.hit("builder-prune.after-commit")
        report.removed = keys
        // Cache mounts: their directories go now, unless a build is using one.
        var mountBytes: Int64 = 0
        for e in doomed where e.resultImageID.isEmpty {
            if removeCacheMount(hex: String(e.key.dropFirst("sha256:".count))) {
                mountBytes += e.size
            } else {
                report.removed.removeAll { $0 == e.key }
            }
        }
        // The images only the removed entries kept, leaves first.
        let tNow = now()
        let dead = try await read { db in
            try String.fetchAll(db, sql: Liveness.liveImagesCTE(.any) + """
                SELECT i.id FROM images i WHERE i.id NOT IN (SELECT id FROM live_images)
                  AND NOT EXISTS (SELECT 1 FROM images c WHERE c.parent_id = i.id)
                """, arguments: ["now": tNow])
        }
        let doomedImages = Set(doomed.map(\.resultImageID))
        for id in dead where doomedImages.contains(id) {
            do {
                _ = try await removeImage(id, force: true)
            } catch let e as StrataError where e.code == .imageNotFound || e.code == .conflict {
                continue
            }
        }
        let after = try await read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blobs") ?? 0 }
        report.reclaimedBytes = max(0, before - after) + mountBytes
        return report
    }
}
