import Foundation
import GRDB

/// One problem `fsck` found, and what `--repair` did about it.
public struct FsckProblem: Sendable, Codable, Hashable {
    /// Stable kinds: `integrity`, `foreign-key`, `missing-blob`, `corrupt-blob`, `unreadable-blob`
    /// (a read failed: EIO from the device), `size-mismatch`, `diffid-mismatch`,
    /// `config-mismatch`, `refcount` (a blob's or layer chain's `image_refs` differs from a
    /// recount), `orphan-file`, `orphan-snapshot`, `orphan-volume`, `stale-ingest`, `pending-unlink`,
    /// `overlay-attribute` (a snapshot holds overlayfs attributes a layer set, which strata
    /// no longer applies: see ``Store/check(quick:repair:grace:)``).
    public var kind: String
    public var subject: String
    public var detail: String
    /// What `--repair` did, or nil when it was not asked to (or could not safely).
    public var repaired: String?
    /// The images a damaged blob belongs to (IDs), when it belongs to any; `detail` names
    /// them too, by short ID and tags.
    public var images: [String]?

    public init(kind: String, subject: String, detail: String, repaired: String? = nil, images: [String]? = nil) {
        self.kind = kind
        self.subject = subject
        self.detail = detail
        self.repaired = repaired
        self.images = images
    }
}

/// The result of ``Store/check(quick:repair:)``.
public struct FsckReport: Sendable, Codable {
    public var blobsChecked = 0
    public var imagesChecked = 0
    public var problems: [FsckProblem] = []
    /// True when nothing is wrong (after repair, when asked).
    public var clean: Bool { problems.allSatisfy { $0.repaired != nil } }
}

extension Store {
    /// Checks the store: SQLite integrity and foreign keys, every blob's sha256 (`quick`:
    /// sizes only), rows whose files are missing, files and snapshot directories with no
    /// row, stale ingest sessions, and configs whose diffIDs do not match their layers; and,
    /// unless `quick`, snapshots holding overlayfs attributes that an earlier strata applied from
    /// a layer (`overlay-attribute`: a redirect, metacopy, origin, or an opaque mark strata did
    /// not set), which overlayfs would obey.
    ///
    /// With `repair`, fixes what is safe: removes orphans, drops rows whose content is gone,
    /// and marks images that lost content `broken` (their tags stay, so nothing vanishes
    /// silently). Every action is reported.
    ///
    /// Orphans younger than `grace`, or held by a live lease, are writes in progress, not problems.
    public func check(quick: Bool = false, repair: Bool = false, grace: TimeInterval = 3600) async throws -> FsckReport {
        var report = FsckReport()
        let cutoff = now() - Int64(grace)
        let leased = Set(try await read { db in
            try String.fetchAll(db, sql: "SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE l.expires_at > ?", arguments: [now()])
        })
        let lock = try await FileLock.acquire(paths.blobsLock, mode: repair ? .exclusive : .shared)
        defer { withExtendedLifetime(lock) {} }
        if repair { try replayPendingUnlinks() }

        let (integrity, fks, pending) = try await read { db in
            (try String.fetchAll(db, sql: "PRAGMA integrity_check"),
             try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").map { "\($0)" },
             try String.fetchAll(db, sql: "SELECT path FROM pending_unlinks"))
        }
        for line in integrity where line != "ok" {
            report.problems.append(FsckProblem(kind: "integrity", subject: "strata.db", detail: line))
        }
        for fk in fks {
            report.problems.append(FsckProblem(kind: "foreign-key", subject: "strata.db", detail: fk))
        }
        for p in pending {
            report.problems.append(FsckProblem(kind: "pending-unlink", subject: p, detail: "queued for unlink but still present"))
        }
        try await checkReferenceCounts(repair: repair, into: &report)

        // Blobs: every row has its file, with the right size and digest.
        let blobRows = try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT b.digest, b.size, lb.diff_id, lb.compression FROM blobs b LEFT JOIN layer_blobs lb ON lb.blob_digest = b.digest ORDER BY b.digest
                """).map { ($0["digest"] as String, $0["size"] as Int64, $0["diff_id"] as String?) }
        }
        var lost: [String] = []
        for (digestString, size, diffID) in blobRows {
            report.blobsChecked += 1
            guard let d = try? Digest(digestString) else { continue }
            let path = paths.blob(d).path
            var st = stat()
            guard stat(path, &st) == 0 else {
                report.problems.append(FsckProblem(kind: "missing-blob", subject: digestString, detail: "row exists but \(paths.blobRelative(d)) is missing"))
                lost.append(digestString)
                continue
            }
            if Int64(st.st_size) != size {
                report.problems.append(FsckProblem(kind: "size-mismatch", subject: digestString, detail: "file is \(st.st_size) bytes, row says \(size)"))
                lost.append(digestString)
                continue
            }
            if quick { continue }
            let digester = StreamDigester(decodeCompressed: diffID != nil && diffID != digestString, checkTrailers: false)
            do {
                try FileReader(path: path, what: "blob \(d)").forEachChunk { digester.update($0) }
            } catch let e as StrataError where e.errno != nil {
                // The device failed (EIO): a problem of this blob, not the end of the check.
                report.problems.append(FsckProblem(kind: "unreadable-blob", subject: digestString, detail: e.message))
                lost.append(digestString)
                continue
            }
            let r = digester.finish()
            if r.digest != d {
                report.problems.append(FsckProblem(kind: "corrupt-blob", subject: digestString, detail: "content hashes to \(r.digest)"))
                lost.append(digestString)
            } else if let diffID, r.diffID.string != diffID {
                report.problems.append(FsckProblem(kind: "diffid-mismatch", subject: digestString,
                                                   detail: "decompresses to \(r.diffID) but the row says \(diffID)\(r.decodeError.map { " (\($0))" } ?? "")"))
                lost.append(digestString)
            }
        }

        // Configs agree with their layers.
        let images = try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT i.id, (SELECT group_concat(l.diff_id, ' ') FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                              WHERE il.image_id = i.id ORDER BY il.position) AS diffs
                FROM images i WHERE i.broken = 0
                """).map { ($0["id"] as String, ($0["diffs"] as String?) ?? "") }
        }
        let lostSet = Set(lost)
        for (id, diffs) in images {
            report.imagesChecked += 1
            guard !lostSet.contains(id), let d = try? Digest(id), let data = try? blobs.readSmall(d),
                  let config = try? ImageConfig.decode(data, digest: d) else { continue }
            let want = config.rootfs.diffIDs.map(\.string).joined(separator: " ")
            if want != diffs {
                report.problems.append(FsckProblem(kind: "config-mismatch", subject: id, detail: "config diff_ids do not match the image's layers"))
            }
        }

        // Files and directories with no row.
        let known = Set(blobRows.map(\.0))
        let fm = FileManager.default
        for algo in ["sha256", "sha512"] {
            let dir = paths.root.appendingPathComponent("blobs/\(algo)").path
            for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            where !known.contains("\(algo):\(name)") && !leased.contains("\(algo):\(name)") && newestMtime(dir + "/" + name, depth: 0) <= cutoff {
                report.problems.append(FsckProblem(kind: "orphan-file", subject: "blobs/\(algo)/\(name)", detail: "no row names this file"))
            }
        }
        let snapshotRows = Set(try await read { db in try String.fetchAll(db, sql: "SELECT id FROM snapshots") })
        let snapDir = paths.root.appendingPathComponent("snapshots").path
        for name in (try? fm.contentsOfDirectory(atPath: snapDir)) ?? []
        where !snapshotRows.contains(name) && newestMtime(snapDir + "/" + name, depth: 1) <= cutoff {
            report.problems.append(FsckProblem(kind: "orphan-snapshot", subject: "snapshots/\(name)", detail: "no row names this directory"))
        }
        if !quick { report.problems += foreignOverlayAttributes(snapshots: snapshotRows) }
        // Volume directories: rows and leases read after the listing (a create holds a lease
        // from before its mkdir until its row is committed).
        let volNames = Self.orphanVolumeCandidates(paths)
        let (volumeRows, volumeLeases) = try await read { db in
            (Set(try String.fetchAll(db, sql: "SELECT name FROM volumes")),
             Set(try String.fetchAll(db, sql: """
                SELECT r.ref FROM lease_refs r JOIN leases l ON l.id = r.lease_id WHERE r.kind = 'volume' AND l.expires_at > ?
                """, arguments: [now()])))
        }
        let volDir = paths.root.appendingPathComponent("volumes").path
        for name in volNames
        where !volumeRows.contains(name) && !volumeLeases.contains(name) && newestMtime(volDir + "/" + name, depth: 2) <= cutoff {
            report.problems.append(FsckProblem(kind: "orphan-volume", subject: "volumes/\(name)", detail: "no row names this directory"))
        }
        for name in (try? fm.contentsOfDirectory(atPath: paths.ingestDir.path)) ?? []
        where newestMtime(paths.ingestDir.appendingPathComponent(name).path) <= cutoff
            && (try? FileLock(tryPath: paths.ingestDir.appendingPathComponent(name).appendingPathComponent("lock").path)) != nil {
            report.problems.append(FsckProblem(kind: "stale-ingest", subject: "ingest/\(name)", detail: "a write in progress, or left by a crash"))
        }

        try await nameDamagedImages(&report)
        if repair { try await self.repair(&report, lost: lost) }
        return report
    }

    /// Adds to each problem of a blob the images it belongs to (ID and tags), so a person
    /// knows which image is damaged: its config, manifest, index or one of its layers.
    private func nameDamagedImages(_ report: inout FsckReport) async throws {
        let kinds: Set<String> = ["missing-blob", "corrupt-blob", "unreadable-blob", "size-mismatch", "diffid-mismatch"]
        let subjects = report.problems.filter { kinds.contains($0.kind) }.map(\.subject)
        guard !subjects.isEmpty else { return }
        let users = try await read { db -> [String: [(id: String, tags: String?)]] in
            var out: [String: [(id: String, tags: String?)]] = [:]
            for d in subjects {
                out[d] = try Row.fetchAll(db, sql: """
                    SELECT u.id, (SELECT group_concat(t.name, ', ') FROM tags t WHERE t.image_id = u.id) AS tags FROM (
                        SELECT id FROM images WHERE id = ?1 UNION SELECT id FROM images WHERE manifest_digest = ?1
                        UNION SELECT id FROM images WHERE index_digest = ?1
                        UNION SELECT image_id FROM image_layers WHERE blob_digest = ?1) u ORDER BY u.id
                    """, arguments: [d]).map { ($0["id"] as String, $0["tags"] as String?) }
            }
            return out
        }
        for i in report.problems.indices where kinds.contains(report.problems[i].kind) {
            guard let u = users[report.problems[i].subject], !u.isEmpty else { continue }
            let named = u.map { "\($0.id.dropFirst(7).prefix(12))\($0.tags.map { " (\($0))" } ?? "")" }
            report.problems[i].detail += "; damaged image\(u.count == 1 ? "" : "s"): \(named.joined(separator: ", "))"
            report.problems[i].images = u.map(\.id)
        }
    }

    private func repair(_ report: inout FsckReport, lost: [String]) async throws {
        let fm = FileManager.default
        // Rows whose content is gone: drop what nothing names; mark images that need it broken.
        let lostBlobs = lost
        let broken = try await write { db -> [String] in
            var broken: [String] = []
            for d in lostBlobs {
                let users = try String.fetchAll(db, sql: """
                    SELECT id FROM images WHERE id = ?1 UNION SELECT id FROM images WHERE manifest_digest = ?1
                    UNION SELECT id FROM images WHERE index_digest = ?1
                    UNION SELECT image_id FROM image_layers WHERE blob_digest = ?1
                    """, arguments: [d])
                for u in users {
                    try db.execute(sql: "UPDATE images SET broken = 1 WHERE id = ?", arguments: [u])
                    broken.append(u)
                }
                if users.isEmpty {
                    try db.execute(sql: "DELETE FROM edges WHERE src = ?", arguments: [d])
                    try db.execute(sql: "DELETE FROM blobs WHERE digest = ?", arguments: [d])
                }
            }
            return broken
        }
        let brokenSet = Set(broken)
        var removedFrom: Set<String> = []
        for i in report.problems.indices {
            let p = report.problems[i]
            switch p.kind {
            case "missing-blob", "corrupt-blob", "unreadable-blob", "size-mismatch", "diffid-mismatch":
                let users = broken.isEmpty ? "" : " images marked broken: \(brokenSet.sorted().map { String($0.dropFirst(7).prefix(12)) }.joined(separator: ", "))"
                report.problems[i].repaired = brokenSet.isEmpty ? "dropped the row" : "kept the row;\(users)"
                if p.kind != "missing-blob", p.kind != "unreadable-blob", let d = try? Digest(p.subject), unlink(paths.blob(d).path) == 0 {
                    removedFrom.insert(paths.blob(d).deletingLastPathComponent().path)
                    // Wrong bytes are worth nothing; without them a later load stores the real blob
                    // and clears the broken mark.
                    report.problems[i].repaired = (report.problems[i].repaired ?? "") + "; removed the bad file"
                }
            case "orphan-file", "orphan-snapshot", "orphan-volume", "stale-ingest", "pending-unlink":
                let path = paths.root.appendingPathComponent(p.subject)
                if (try? fm.removeItem(at: path)) != nil || !fm.fileExists(atPath: path.path) {
                    report.problems[i].repaired = "removed"
                    removedFrom.insert(path.deletingLastPathComponent().path)
                }
                if p.kind == "pending-unlink" {
                    _ = try? await db.write { db in try db.execute(sql: "DELETE FROM pending_unlinks WHERE path = ?", arguments: [p.subject]) }
                }
            case "overlay-attribute":
                // What unpacking the layer today gives: the same tree without those attributes.
                if removeForeignOverlayAttributes(snapshot: p.subject) { report.problems[i].repaired = "removed the attributes" }
            case "config-mismatch":
                _ = try? await write { db in try db.execute(sql: "UPDATE images SET broken = 1 WHERE id = ?", arguments: [p.subject]) }
                report.problems[i].repaired = "marked the image broken"
            default:
                break
            }
        }
        // A repair that returned stays done through a power cut: the removals' directories are fsynced.
        for dir in removedFrom { try fsyncDirectory(dir) }
    }
}

extension Store {
    /// `blobs.image_refs` and `layers.image_refs` (migration 0008's triggers keep them) against
    /// a recount from the rows; `repair` rewrites the ones that differ, in one transaction.
    func checkReferenceCounts(repair: Bool, into report: inout FsckReport) async throws {
        let blobCount = """
            (SELECT count(*) FROM images i WHERE i.id = b.digest)
              + (SELECT count(*) FROM images i WHERE i.manifest_digest = b.digest)
              + (SELECT count(*) FROM images i WHERE i.index_digest = b.digest)
              + (SELECT count(*) FROM image_layers il WHERE il.blob_digest = b.digest)
            """
        let chainCount = "(SELECT count(*) FROM image_layers il WHERE il.chain_id = l.chain_id)"
        let blobSQL = "SELECT b.digest, b.image_refs, \(blobCount) AS n FROM blobs b WHERE b.image_refs != \(blobCount)"
        let chainSQL = "SELECT l.chain_id, l.image_refs, \(chainCount) AS n FROM layers l WHERE l.image_refs != \(chainCount)"
        let (blobs, chains) = try await read { db in
            (try Row.fetchAll(db, sql: blobSQL).map { ($0[0] as String, $0[1] as Int, $0[2] as Int) },
             try Row.fetchAll(db, sql: chainSQL).map { ($0[0] as String, $0[1] as Int, $0[2] as Int) })
        }
        guard !blobs.isEmpty || !chains.isEmpty else { return }
        if repair {
            try await write { db in
                try db.execute(sql: "UPDATE blobs AS b SET image_refs = \(blobCount) WHERE b.image_refs != \(blobCount)")
                try db.execute(sql: "UPDATE layers AS l SET image_refs = \(chainCount) WHERE l.image_refs != \(chainCount)")
            }
        }
        for (what, rows) in [("blob", blobs), ("layer chain", chains)] {
            for (subject, stored, counted) in rows {
                report.problems.append(FsckProblem(
                    kind: "refcount", subject: subject,
                    detail: "\(what) row says \(stored) image references, the rows hold \(counted)",
                    repaired: repair ? "set to \(counted)" : nil))
            }
        }
    }
}
