import Foundation
import GRDB

/// A lease protects what an operation creates until it is tagged or recorded: gc never
/// deletes anything an unexpired lease holds. A crashed process's lease simply expires.
public struct Lease: Sendable, Codable, Hashable {
    public var id: String
    public var description: String
    public var createdAt: Date
    public var expiresAt: Date
    /// What the lease holds, as `kind:ref` (`blob:sha256:…`, `image:sha256:…`).
    public var refs: [String]

    /// The default lifetime of a lease: one hour.
    public static let defaultLifetime: TimeInterval = 3600
}

extension Store {
    /// Starts a lease holding `refs` (blob digests); the caller drops it when done, or it expires.
    /// Not counted as a mutation: a lease changes nothing gc could free.
    func createLease(_ description: String, refs: [String], kind: String = "blob",
                     lifetime: TimeInterval = Lease.defaultLifetime) async throws -> String {
        let id = UUID().uuidString.lowercased()
        let t = now()
        do {
            try await db.write { db in
                try db.execute(sql: "INSERT INTO leases(id, description, created_at, expires_at) VALUES (?, ?, ?, ?)",
                               arguments: [id, description, t, t + Int64(lifetime)])
                for r in refs {
                    try db.execute(sql: "INSERT OR IGNORE INTO lease_refs(lease_id, kind, ref) VALUES (?, ?, ?)", arguments: [id, kind, r])
                }
            }
        } catch {
            throw StrataError(databaseErrorCode(error), "cannot create a lease: \(error)", cause: error)
        }
        return id
    }

    /// Drops a lease outside any other transaction.
    func dropLease(_ id: String) async {
        _ = try? await db.write { db in try db.execute(sql: "DELETE FROM leases WHERE id = ?", arguments: [id]) }
    }

    /// In-flight operations and what they hold (`strata lease ls`).
    public func leases() async throws -> [Lease] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT l.id, l.description, l.created_at, l.expires_at,
                       (SELECT group_concat(kind || ':' || ref, char(10)) FROM lease_refs r WHERE r.lease_id = l.id) AS refs
                FROM leases l ORDER BY l.created_at, l.id
                """).map { r in
                Lease(id: r["id"], description: r["description"],
                      createdAt: Date(timeIntervalSince1970: Double(r["created_at"] as Int64)),
                      expiresAt: Date(timeIntervalSince1970: Double(r["expires_at"] as Int64)),
                      refs: ((r["refs"] as String?) ?? "").split(separator: "\n").map(String.init).sorted())
            }
        }
    }
}

/// Named points where the crash-safety tests kill the process (`STRATA_CRASH_POINT=name`).
/// Costs one environment lookup per point when unset.
enum CrashPoint {
    static func hit(_ name: String) {
        // getenv, not ProcessInfo's environment (a new dictionary per call): a load hits
        // crash points once per image.
        guard let want = getenv("STRATA_CRASH_POINT"), String(cString: want) == name else { return }
        kill(getpid(), SIGKILL)
    }
}
