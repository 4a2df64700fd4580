import CArchive
import Foundation
import GRDB

extension Store {
    /// The unpacked layer directories of an image, bottom first. Each layer is unpacked once,
    /// into `snapshots/<id>/fs` keyed by its chain ID, and shared by every container and image
    /// that needs it. A snapshot is unpacked under a temporary name, renamed into place (the
    /// first process to finish wins) and then recorded; it never changes after that.
    func snapshotDirectories(of imageID: Digest) async throws -> [String] {
        let layers = try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT il.chain_id, il.blob_digest, s.id AS snapshot FROM image_layers il
                LEFT JOIN snapshots s ON s.chain_id = il.chain_id
                WHERE il.image_id = ? ORDER BY il.position
                """, arguments: [imageID.string]).map { ($0["chain_id"] as String, $0["blob_digest"] as String, $0["snapshot"] as String?) }
        }
        var dirs: [String] = []
        var allowDevices: Bool?
        for (chain, blob, existing) in layers {
            let id = String(chain.dropFirst("sha256:".count).prefix(16))
            let dir = paths.root.appendingPathComponent("snapshots/\(id)")
            if existing != nil, FileManager.default.fileExists(atPath: dir.path + "/fs") {
                dirs.append(dir.path + "/fs")
                continue
            }
            // A user's process outside the user namespace would unpack without owners.
            try UserNamespace.requireEntered(for: "unpacking the layers of \(imageID.shortHex)", ownersOnly: true)
            // A lease holds the snapshot from before it is unpacked until its row is committed.
            let lease = try await createLease("unpack", refs: [id], kind: "snapshot")
            do {
                if allowDevices == nil { allowDevices = try await deviceNodesAllowed() }
                try unpackSnapshot(id: id, blob: try Digest(blob), into: dir, lowers: dirs, allowDevices: allowDevices ?? false)
                try await write(untracked: { db in
                    try db.execute(sql: "DELETE FROM leases WHERE id = ?", arguments: [lease])
                }) { db in
                    try db.execute(sql: "INSERT OR IGNORE INTO snapshots(id, chain_id, created_at) VALUES (?, ?, ?)", arguments: [id, chain, now()])
                }
            } catch {
                await dropLease(lease)
                throw error
            }
            dirs.append(dir.path + "/fs")
        }
        return Self.visibleLayers(dirs)
    }

    /// `dirs` without the layers an opaque root hides: a layer whose `.wh..wh..opq` sits at
    /// its root replaces everything below it, and overlayfs does not read an opaque marker on a
    /// lower directory's root, so those layers are left out of the mount (and the copy).
    static func visibleLayers(_ dirs: [String]) -> [String] {
        guard let top = dirs.lastIndex(where: { isOpaque($0) || FileMeta.of($0 + "/" + LayerEntry.opaqueName) != nil }) else { return dirs }
        return Array(dirs[top...])
    }

    /// Whether the store accepts device nodes in layers (`strata config devices allow`).
    public func deviceNodesAllowed() async throws -> Bool {
        try await read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'devices'") } == "allow"
    }

    /// Lets layers create character and block devices (`allow`, as Docker does) or refuses
    /// them (`false`, the default). Once a device node exists on disk, only the runtime's device
    /// cgroup stands between it and the host, so strata refuses them unless told otherwise.
    public func setDeviceNodesAllowed(_ allowed: Bool) async throws {
        try await write { db in
            if allowed {
                try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('devices', 'allow') ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = 'devices'")
            }
        }
    }

    private func unpackSnapshot(id: String, blob: Digest, into dir: URL, lowers: [String], allowDevices: Bool) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: dir.path + "/fs") { return }
        let tmp = paths.root.appendingPathComponent("snapshots/.tmp-\(id)-\(UUID().uuidString.prefix(8))")
        defer { try? fm.removeItem(at: tmp) }
        do {
            try fm.createDirectory(at: tmp.appendingPathComponent("fs"), withIntermediateDirectories: true)
        } catch {
            throw StrataError(.io, "cannot create \(tmp.path): \(error.localizedDescription)", cause: error)
        }
        try LayerUnpacker(root: tmp.path + "/fs", overlayWhiteouts: geteuid() == 0, lowers: lowers, allowDevices: allowDevices)
            .unpack(layer: paths.blob(blob).path, name: "layer \(blob)")
        // A snapshot is derived data: one durability point for all its files (one journal
        // commit), not one per file; then the rename is made durable before the row names it.
        try syncFilesystem(of: tmp.path)
        if rename(tmp.path, dir.path) != 0 && !fm.fileExists(atPath: dir.path + "/fs") {
            throw StrataError.system("cannot move snapshot into \(dir.path)")
        }
        try syncFilesystem(of: dir.deletingLastPathComponent().path, directoryOnly: true)
    }
}

/// `syncfs` of the filesystem that holds `path` (every dirty page of it, one journal commit), or
/// with `directoryOnly` an fsync of the directory `path` itself.
func syncFilesystem(of path: String, directoryOnly: Bool = false) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw StrataError.system("cannot open \(path)") }
    defer { close(fd) }
    let rc = directoryOnly ? fsync(fd) : strata_syncfs(fd)
    if rc != 0 { throw StrataError.system("cannot sync \(path)") }
}
