import Crypto
import Foundation

/// One `RUN --mount` as the step's command sees it (``BuildCommand/mounts``).
package struct BuildMount: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A host directory or file (the context's matched source copied to scratch, or a path
        /// in another stage's temporary container), read-only unless `readOnly` is false;
        /// writes never reach the layer.
        case bind(source: String, readOnly: Bool)
        /// A persistent cache directory in the store (`ROOT/build-mounts/<sha256 of id>/data`),
        /// created with `uid`/`gid`/`mode`; `sharing` says what concurrent steps may do.
        case cache(id: String, uid: UInt32, gid: UInt32, mode: UInt32, sharing: CacheSharing, readOnly: Bool)
        /// An empty tmpfs.
        case tmpfs(size: Int64?)
    }

    /// BuildKit's `sharing=` of a cache mount: what a step does when another one (in this
    /// build or another process) is using the same cache.
    public enum CacheSharing: String, Sendable, Hashable, CaseIterable {
        /// Every step uses the one directory at the same time.
        case shared
        /// A step that finds the cache in use gets a fresh, empty directory of its own, which
        /// goes when the step ends.
        case `private`
        /// A step waits until no other step uses the cache.
        case locked
    }

    public var kind: Kind
    /// Absolute path in the container.
    public var target: String

    public init(kind: Kind, target: String) {
        self.kind = kind
        self.target = target
    }
}

/// One cache mount directory of the store (`builder du`).
struct BuildCacheMountInfo {
    var hex: String
    var id: String
    var lastUsed: Date
    var uses: Int
    var size: Int64
}

extension Store {
    var buildMountsDir: URL { paths.root.appendingPathComponent("build-mounts") }

    private func cacheMountHex(_ id: String) -> String {
        SHA256.hash(data: Data(id.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The data directory of the cache mount `id`, created (uid, gid, mode) on first use; the
    /// use is recorded (last used, count) for `builder du` and `builder prune`. The returned
    /// lock is held by the step while it runs (shared, or exclusive for `locked` and
    /// `private`): prune skips a cache mount in use. A `private` step that finds the cache in
    /// use gets `scratch`, a fresh directory the caller removes after the step.
    func prepareCacheMount(id: String, uid: UInt32, gid: UInt32, mode: UInt32, sharing: BuildMount.CacheSharing)
        async throws -> (data: String, lock: FileLock?, scratch: String?) {
        let hex = cacheMountHex(id)
        let dir = buildMountsDir.appendingPathComponent(hex)
        let data = dir.appendingPathComponent("data").path
        try FileManager.default.createDirectory(at: paths.locksDir, withIntermediateDirectories: true)
        let lockPath = paths.locksDir.appendingPathComponent("build-mount-\(hex).lock").path
        let lock: FileLock
        switch sharing {
        case .shared: lock = try await FileLock.acquire(lockPath, mode: .shared)
        case .locked: lock = try await FileLock.acquire(lockPath, mode: .exclusive)
        case .private:
            guard let mine = try FileLock(tryPath: lockPath) else {
                let scratch = try makeBuildScratchFile()
                let data = scratch + "/data"
                guard mkdir(data.cPath, 0o755) == 0 else {
                    throw StrataError.system("cannot create a private cache mount for \(id)")
                }
                lchown(data.cPath, uid, gid)
                chmod(data.cPath, mode_t(mode))
                return (data, nil, scratch)
            }
            lock = mine
        }
        if FileMeta.of(data)?.kind != .directory {
            do {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            } catch {
                throw StrataError(.io, "cannot create the cache mount \(id): \(error.localizedDescription)", cause: error)
            }
            let tmp = dir.appendingPathComponent("data.new-\(randomHex().prefix(8))").path
            guard mkdir(tmp, 0o755) == 0 else { throw StrataError.system("cannot create the cache mount \(id)") }
            lchown(tmp, uid, gid)
            chmod(tmp, mode_t(mode))
            if rename(tmp, data) != 0 { rmdir(tmp) }  // another build made it first: use that one
        }
        var meta = (try? JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json")))) as? [String: Any] ?? [:]
        meta["id"] = id
        meta["uses"] = ((meta["uses"] as? Int) ?? 0) + 1
        meta["lastUsed"] = Date().timeIntervalSince1970
        if let d = try? JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys]) {
            try? d.write(to: dir.appendingPathComponent("meta.json"), options: .atomic)
        }
        return (data, lock, nil)
    }

    /// Every cache mount in the store, with its size.
    func cacheMounts() -> [BuildCacheMountInfo] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: buildMountsDir.path)) ?? []
        return names.sorted().compactMap { hex in
            let dir = buildMountsDir.appendingPathComponent(hex)
            let meta = (try? JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json")))) as? [String: Any] ?? [:]
            let last = (meta["lastUsed"] as? Double).map { Date(timeIntervalSince1970: $0) } ?? Date(timeIntervalSince1970: 0)
            return BuildCacheMountInfo(hex: hex, id: meta["id"] as? String ?? "", lastUsed: last, uses: meta["uses"] as? Int ?? 0,
                                       size: treeSize(dir.appendingPathComponent("data").path))
        }
    }

    /// Removes a cache mount unless a build is using it; true when it went.
    func removeCacheMount(hex: String) -> Bool {
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else { return false }
        let lockPath = paths.locksDir.appendingPathComponent("build-mount-\(hex).lock").path
        guard let lock = try? FileLock(tryPath: lockPath) else { return false }
        let dir = buildMountsDir.appendingPathComponent(hex).path
        let trash = paths.ingestDir.appendingPathComponent("build-mount-\(hex)-\(randomHex().prefix(8))").path
        try? FileManager.default.createDirectory(at: paths.ingestDir, withIntermediateDirectories: true)
        let gone = rename(dir, trash) == 0
        withExtendedLifetime(lock) {}
        if gone { removeTree(trash) }
        return gone
    }
}
