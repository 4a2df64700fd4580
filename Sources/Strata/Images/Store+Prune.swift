import Foundation
import GRDB

/// Options for ``Store/pruneImages(_:)``, as `docker image prune`.
public struct PruneOptions: Sendable {
    /// Every image no container uses, tagged or not (default: dangling images only).
    public var all = false
    /// Only images created more than this long ago (`--filter until=24h`).
    public var until: TimeInterval?
    /// Only images with these config labels; a nil value matches any value (`label=k` / `label=k=v`).
    public var labels: [(String, String?)] = []
    /// Not the images whose labels match every one of these (`label!=k` / `label!=k=v`, moby's rule).
    public var notLabels: [String] = []

    public init(all: Bool = false, until: TimeInterval? = nil, labels: [(String, String?)] = []) {
        self.all = all
        self.until = until
        self.labels = labels
    }

    /// Options from filters by name, as `docker image prune --filter` and the Engine API give
    /// them: `until` (a duration: `24h`), `label` and `label!` (`KEY` or `KEY=VALUE`), and
    /// `dangling` (`false` is `all`). Any other key is an error.
    public init(all: Bool, filters: [String: [String]]) throws {
        self.init(all: all)
        for (k, values) in filters.sorted(by: { $0.key < $1.key }) {
            for v in values {
                switch k {
                case "until": until = try Durations.parse(v)
                case "label":
                    if let e = v.firstIndex(of: "=") { labels.append((String(v[..<e]), String(v[v.index(after: e)...]))) } else { labels.append((v, nil)) }
                case "label!": notLabels.append(v)
                case "dangling":
                    guard ["true", "false", "1", "0"].contains(v) else {
                        throw StrataError(.invalidArgument, "invalid filter \"dangling=\(v)\": dangling takes true or false")
                    }
                    if v == "false" || v == "0" { self.all = true }
                default: throw StrataError(.invalidArgument, "invalid filter \"\(k)\": use until, label, label! or dangling")
                }
            }
        }
    }
}

/// What a prune removed.
public struct PruneReport: Sendable, Codable {
    public var events: [RemovalEvent] = []
    public var reclaimedBytes: Int64 = 0
}

extension Store {
    /// Removes dangling images (untagged, nothing built on them, no container, no lease), or
    /// with `all` every image no container or lease holds; untagged parents that nothing
    /// else needs follow. The content they leave goes by ``Liveness``'s rule, as in rmi.
    public func pruneImages(_ options: PruneOptions = PruneOptions()) async throws -> PruneReport {
        let cutoff = options.until.map { Int64(Date().timeIntervalSince1970 - $0) }
        let (candidates, before) = try await read { db -> ([String], Int64) in
            // Liveness's rule with prune's roots: containers and leases, and tags unless `all`.
            let roots: Liveness.Roots = options.all ? [.containers, .leases] : [.tags, .containers, .leases]
            let ids = try String.fetchAll(db, sql: Liveness.liveImagesCTE(roots) + """
                SELECT i.id FROM images i
                WHERE NOT EXISTS (SELECT 1 FROM images c WHERE c.parent_id = i.id)
                  AND i.id NOT IN (SELECT id FROM live_images)
                  AND (:cutoff IS NULL OR coalesce(i.created, 0) < :cutoff)
                ORDER BY coalesce(i.created, 0), i.id
                """, arguments: ["cutoff": cutoff, "now": now()])
            return (ids, try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blobs") ?? 0)
        }
        var report = PruneReport()
        for id in candidates {
            if !options.labels.isEmpty || !options.notLabels.isEmpty {
                // The row's labels (else the config's): one rule with the listings' filters.
                guard let d = try? Digest(id), let labels = try? await imageLabels(d) else { continue }
                guard FilterPattern.matchesLabels(options.labels.map { k, v in v.map { "\(k)=\($0)" } ?? k }, labels) else { continue }
                if !options.notLabels.isEmpty, FilterPattern.matchesLabels(options.notLabels, labels) { continue }
            }
            do {
                report.events += try await removeImage(id, force: true)
                CrashPoint.hit("image-prune.after-remove")
            } catch let e as StrataError where e.code == .imageNotFound || e.code == .conflict {
                continue  // removed with an earlier one, or in use now
            }
        }
        let after = try await read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blobs") ?? 0 }
        report.reclaimedBytes = max(0, before - after)
        return report
    }

    /// Removes build-cache entries (all, or those unused for `olderThan`).
    public func pruneBuildCache(olderThan: TimeInterval? = nil) async throws -> Int {
        let cutoff = olderThan.map { now() - Int64($0) } ?? Int64.max
        let rows = try await write { db in
            try db.execute(sql: "DELETE FROM build_cache WHERE last_used_at < ?", arguments: [cutoff])
            return db.changesCount
        }
        // RUN --mount=type=cache directories are build cache too (one in use is skipped).
        var mounts = 0
        for m in cacheMounts() where Int64(m.lastUsed.timeIntervalSince1970) < cutoff {
            if removeCacheMount(hex: m.hex) { mounts += 1 }
        }
        return rows + mounts
    }
}
