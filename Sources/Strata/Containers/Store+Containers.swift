import Foundation
import GRDB
import OCI

extension Store {
    /// Creates a container: a writable layer over the image's snapshots (unpacked once,
    /// shared). The directories are made first, then the row (law 1).
    public func createContainer(from ref: String, options: ContainerOptions = ContainerOptions()) async throws -> ContainerInfo {
        if let name = options.name { try Self.checkContainerName(name) }
        if let hostname = options.hostname { try Self.checkHostname(hostname) }
        if let user = options.user { try UserResolver.checkSpec(user) }
        if let signal = options.stopSignal { _ = try ContainerSignal(signal) }
        let resources = try options.resources.validated()
        if !resources.isEmpty, UserNamespace.isNested {
            throw StrataError(.permissionDenied, "resource limits need cgroups, which a rootless store cannot set: leave out --memory, --cpus and the like")
        }
        if let size = options.shmSize, size < 0 {
            throw StrataError(.invalidArgument, "invalid --shm-size \(size): SHM size can not be less than 0")
        }
        for g in options.groupAdd where g.isEmpty || g.contains(":") {
            throw StrataError(.invalidArgument, "invalid --group-add \"\(g)\": give a group name or number")
        }
        if let driver = options.logDriver, !["", "json-file", "local", "none"].contains(driver) {
            throw StrataError(.notSupported, "strata keeps a container's log itself or not at all: log driver \"\(driver)\" is not available (json-file, local, none)")
        }
        let logRotation = try LogRotation.parse(driver: options.logDriver, options: options.logOptions)
        if let i = options.isolation, !["", "default"].contains(i) {
            throw StrataError(.invalidArgument, "Invalid isolation: \"\(i)\" - linux only supports 'default'")
        }
        if options.initProcess, ContainerInfo.initBinary == nil {
            throw StrataError(.notSupported, "--init needs an init on the host: install tini (its tini-static) or docker-init")
        }
        if options.autoRemove, let p = options.restartPolicy, p.name != .no {
            throw StrataError(.invalidArgument, "conflicting options: cannot combine a restart policy (\(p)) with auto-remove (--rm)")
        }
        if options.hostUTS, let h = options.hostname, !h.isEmpty {
            throw StrataError(.invalidArgument, "conflicting options: hostname and the UTS mode host")
        }
        try options.healthcheck?.validate()
        if let t = options.stopTimeout, t < -1 {
            throw StrataError(.invalidArgument, "invalid stop timeout \(t): use seconds, or -1 to wait without end")
        }
        if let name = options.name, try await read({ db in try Bool.fetchOne(db, sql: "SELECT 1 FROM containers WHERE name = ?", arguments: [name]) }) == true {
            throw StrataError(.conflict, "the container name \"\(name)\" is already in use")
        }
        let imageID = try await resolve(ref)
        let imageConfig = try ImageConfig.decode(try blobs.readSmall(imageID), digest: imageID).config
        var given = options.volumes
        for spec in options.volumesFrom {
            for m in try await mountsFrom(spec) where !given.contains(where: { $0.destination == m.destination }) { given.append(m) }
        }
        var mounts = try Self.plannedMounts(given, tmpfs: options.tmpfs.map(\.destination),
                                            imageVolumes: options.imageVolumes ? imageConfig?.Volumes ?? [] : [])
        for i in mounts.indices where mounts[i].anonymous == true && mounts[i].source.isEmpty { mounts[i].source = randomHex() }
        var lowers = try await snapshotDirectories(of: imageID)
        let id = randomHex()
        let kind: SnapshotterKind
        if let k = options.snapshotter { kind = k } else { kind = try await defaultSnapshotter() }
        let dirs = containerDirs(id)
        // Its volumes are leased from before they are made until its row names them, so that
        // a `volume prune` in between (cron) cannot take one.
        let volumeNames = mounts.filter { !$0.isBind }.map(\.source)
        let volumeLease = volumeNames.isEmpty ? nil : try await createLease("container create", refs: volumeNames, kind: "volume")
        var madeVolumes: [String] = []
        func undoVolumes() async {
            if let volumeLease { await dropLease(volumeLease) }
            _ = try? await removeVolumes(madeVolumes, skipInUse: true)
        }
        do {
            if options.initLayer {
                try makeInitLayer(at: dirs.initLayer, tmp: !lowers.contains { FileMeta.of($0 + "/tmp") != nil })
                // The root keeps the image's owner, mode and times (the layer on top sets them).
                if let top = lowers.last, let meta = FileMeta.of(top) {
                    try TreeCopier().copyMetadata(from: top, to: dirs.initLayer, meta: meta)
                    try fsyncDirectory(dirs.initLayer)
                }
                lowers.append(dirs.initLayer)
            }
            try snapshotter(kind).prepare(dirs, lowers: lowers)
            // The writable layer is durable before the row names it (law 1): a copied tree with
            // one syncfs, overlay's three empty directories one by one; then the new name in containers/.
            if kind == .copy {
                try syncFilesystem(of: dirs.base.path)
            } else {
                for d in [dirs.upper, dirs.work, dirs.merged, dirs.base.path] { try fsyncDirectory(d) }
            }
            try fsyncDirectory(dirs.base.deletingLastPathComponent().path)
            if volumeLease != nil {
                // The volumes are made (and filled from the image) through the new root.
                let rootfs = try snapshotter(kind).mount(dirs, lowers: lowers)
                defer { try? snapshotter(kind).unmount(dirs) }
                try await makeVolumes(mounts, rootfs: rootfs, made: &madeVolumes)
            }
        } catch {
            try? snapshotter(kind).unmount(dirs)
            try? FileManager.default.removeItem(at: dirs.base)
            await undoVolumes()
            throw error
        }
        let labels = try await imageLabels(imageID).merging(options.labels) { $1 }
        var info = ContainerInfo(id: id, name: options.name, imageID: imageID, image: ref, command: options.command, env: options.env,
                                 workingDir: options.workingDir, snapshotter: kind, state: "created", created: Date(),
                                 volumes: mounts.isEmpty ? nil : mounts, entrypoint: options.entrypoint,
                                 autoRemove: options.autoRemove ? true : nil, openStdin: options.openStdin ? true : nil,
                                 keepsStdinOpen: options.openStdin && options.keepsStdinOpen ? true : nil, tty: options.tty ? true : nil)
        info.labels = labels.isEmpty ? nil : labels
        info.hostNetwork = options.hostNetwork ? true : nil
        info.ports = options.ports.isEmpty || options.hostNetwork ? nil : options.ports
        let exposed = Set(imageConfig?.ExposedPorts ?? [])
            .union(options.exposedPorts).union(options.ports.map(\.key))
        info.exposedPorts = exposed.isEmpty ? nil : exposed.sorted()
        info.user = options.user.flatMap { $0.isEmpty ? nil : $0 }
        info.hostname = options.hostname.flatMap { $0.isEmpty ? nil : $0 }
        info.readOnlyRootfs = options.readOnlyRootfs ? true : nil
        info.stopSignal = options.stopSignal.flatMap { $0.isEmpty ? nil : $0 }
        info.stopTimeout = options.stopTimeout
        info.healthcheck = options.healthcheck
        info.resources = resources.isEmpty ? nil : resources
        info.tmpfs = options.tmpfs.isEmpty ? nil : options.tmpfs
        info.shmSize = options.shmSize.flatMap { $0 == 0 ? nil : $0 }
        info.groupAdd = options.groupAdd.isEmpty ? nil : options.groupAdd
        info.hostPID = options.hostPID ? true : nil
        info.hostUTS = options.hostUTS ? true : nil
        info.privateCgroupNamespace = options.privateCgroupNamespace
        info.logDriver = options.logDriver.flatMap { $0.isEmpty || $0 == "json-file" ? nil : $0 }
        info.logOptions = options.logOptions.isEmpty ? nil : options.logOptions
        info.isolation = options.isolation.flatMap { $0.isEmpty ? nil : $0 }
        info.logRotation = logRotation
        info.volumesFrom = options.volumesFrom.isEmpty ? nil : options.volumesFrom
        info.volumeDriver = options.volumeDriver.flatMap { $0.isEmpty ? nil : $0 }
        info.restartPolicy = options.restartPolicy.flatMap { $0.name == .no ? nil : $0 }
        info.initProcess = options.initProcess ? true : nil
        let config = String(decoding: try CanonicalJSON.encode(info), as: UTF8.self)
        let volumeRows = mounts.filter { !$0.isBind }
        do {
            try await write { db in
                if let name = options.name,
                   try Bool.fetchOne(db, sql: "SELECT 1 FROM containers WHERE name = ?", arguments: [name]) == true {
                    throw StrataError(.conflict, "the container name \"\(name)\" is already in use")
                }
                try db.execute(sql: "INSERT INTO containers(id, name, image_id, state, config, created_at) VALUES (?, ?, ?, 'created', ?, ?)",
                               arguments: [id, options.name, imageID.string, config, now()])
                for v in volumeRows {
                    try db.execute(sql: "INSERT OR REPLACE INTO container_volumes(container_id, volume_name, path) VALUES (?, ?, ?)",
                                   arguments: [id, v.source, v.destination])
                }
            }
        } catch {
            await undoVolumes()
            try? FileManager.default.removeItem(at: dirs.base)
            throw error
        }
        if let volumeLease { await dropLease(volumeLease) }
        return info
    }

    /// The mounts `--volumes-from CONTAINER[:ro|:rw]` gives: each volume (by name, so it is
    /// shared, and never this container's anonymous one to remove) and bind of that
    /// container, read-only or read-write as the suffix says, else as there.
    func mountsFrom(_ spec: String) async throws -> [VolumeMount] {
        var ref = spec, forced: String?
        if let colon = spec.lastIndex(of: ":") {
            let suffix = String(spec[spec.index(after: colon)...])
            guard suffix == "ro" || suffix == "rw" else {
                throw StrataError(.invalidArgument, "invalid --volumes-from \"\(spec)\": the mode must be ro or rw")
            }
            ref = String(spec[..<colon])
            forced = suffix
        }
        let from = try await container(ref)
        return try (from.volumes ?? []).map { m in
            let readOnly = forced.map { $0 == "ro" } ?? m.isReadOnly
            return try VolumeMount(source: m.source, destination: m.destination, mode: readOnly ? "ro" : nil)
        }
    }

    /// A container name as dockerd takes one: a letter or digit, then letters, digits, `_ . -`.
    static func checkContainerName(_ name: String) throws {
        guard name.range(of: #"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"#, options: .regularExpression) != nil else {
            throw StrataError(.invalidArgument, "invalid container name \"\(name)\": use letters, digits, _ . -")
        }
    }

    /// A hostname as the kernel and dockerd take one: at most 63 characters, each label of
    /// letters, digits and `-`, not starting or ending with `-`. Empty means the default.
    static func checkHostname(_ hostname: String) throws {
        guard hostname.isEmpty || (hostname.utf8.count <= 63 &&
              hostname.range(of: #"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"#,
                             options: .regularExpression) != nil) else {
            throw StrataError(.invalidArgument, "invalid hostname \"\(hostname)\": use at most 63 letters, digits, - and . (RFC 1123)")
        }
    }

    /// Renames a container (`docker rename`), running or not; a name another container has is
    /// a conflict. Returns the container as it is now.
    ///
    /// ```swift
    /// try await store.renameContainer("web", to: "web-old")
    /// ```
    @discardableResult
    public func renameContainer(_ ref: String, to name: String) async throws -> ContainerInfo {
        try Self.checkContainerName(name)
        let c = try await container(ref)
        return try await write { db in
            if try String.fetchOne(db, sql: "SELECT id FROM containers WHERE name = ?", arguments: [name]).map({ $0 != c.id }) == true {
                throw StrataError(.conflict, "the container name \"\(name)\" is already in use")
            }
            guard let config = try String.fetchOne(db, sql: "SELECT config FROM containers WHERE id = ?", arguments: [c.id]) else {
                throw StrataError(.containerNotFound, "no such container: \(ref)")
            }
            var info: ContainerInfo
            do { info = try JSONDecoder().decode(ContainerInfo.self, from: Data(config.utf8)) } catch {
                throw StrataError(.database, "container \(c.id) has an unreadable record", cause: error)
            }
            info.name = name
            try db.execute(sql: "UPDATE containers SET name = ?, config = ? WHERE id = ?",
                           arguments: [name, String(decoding: try CanonicalJSON.encode(info), as: UTF8.self), c.id])
            return info
        }
    }

    /// The store's snapshotter setting (`strata config snapshotter …`), else overlay when
    /// this process can mount it (as root, or in a user namespace where a test mount with
    /// `userxattr` works on the store's filesystem), else copy.
    public func defaultSnapshotter() async throws -> SnapshotterKind {
        try await snapshotterSetting() ?? .preferred(probingIn: paths.ingestDir.path)
    }

    /// The store's own snapshotter setting, nil when it has none (the default applies).
    public func snapshotterSetting() async throws -> SnapshotterKind? {
        let stored = try await read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'snapshotter'") }
        return stored.flatMap(SnapshotterKind.init(rawValue:))
    }

    /// Sets (or with nil clears) the store's default snapshotter.
    public func setDefaultSnapshotter(_ kind: SnapshotterKind?) async throws {
        try await write { db in
            if let kind {
                try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('snapshotter', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [kind.rawValue])
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = 'snapshotter'")
            }
        }
    }

    func containerDirs(_ id: String) -> ContainerDirs {
        ContainerDirs(base: paths.root.appendingPathComponent("containers/\(id)"))
    }

    func snapshotter(_ kind: SnapshotterKind) -> Snapshotter {
        kind == .overlay ? OverlaySnapshotter() : CopySnapshotter()
    }

    /// Containers, newest first: all of them (the default), or with `all: false` only the
    /// running ones unless a `status`, `before` or `since` filter asks for others (`docker
    /// ps` without `-a`); then those every filter selects (``ContainerFilters``). A `before`
    /// or `since` container that does not exist is a `.containerNotFound` error.
    ///
    /// ```swift
    /// let everything = try await store.containers()
    /// let stopped = try await store.containers(filters: ContainerFilters(statuses: ["exited"]))
    /// ```
    public func containers(all: Bool = true, filters: ContainerFilters = ContainerFilters()) async throws -> [ContainerInfo] {
        // before/since name containers; created times order them.
        var createdBefore: Date?, createdAfter: Date?
        for ref in filters.before { createdBefore = min(createdBefore ?? .distantFuture, try await container(ref).created) }
        for ref in filters.since { createdAfter = max(createdAfter ?? .distantPast, try await container(ref).created) }
        // ancestor: the images named (an unknown one matches nothing, as with dockerd), then
        // each container image's lineage, looked up once per image.
        var ancestors = Set<String>()
        for ref in filters.ancestors {
            if let id = try? await lineage(of: ref).first?.id.string { ancestors.insert(id) }
        }
        var lineages: [String: [String]] = [:]
        let listed = try await read { db in
            try String.fetchAll(db, sql: "SELECT config FROM containers ORDER BY created_at DESC, id").compactMap {
                try? JSONDecoder().decode(ContainerInfo.self, from: Data($0.utf8))
            }
        }
        var out: [ContainerInfo] = []
        for c in listed {
            if !all && !filters.listsStopped && c.state != "running" { continue }
            guard filters.matches(c, createdBefore: createdBefore, createdAfter: createdAfter) else { continue }
            if !filters.ancestors.isEmpty {
                let image = c.imageID.string
                if lineages[image] == nil { lineages[image] = ((try? await lineage(of: image)) ?? []).map(\.id.string) }
                if !(lineages[image] ?? []).contains(where: ancestors.contains) { continue }
            }
            out.append(c)
        }
        return out
    }

    /// Finds a container by full ID, unique ID prefix or name.
    public func container(_ ref: String) async throws -> ContainerInfo {
        try await read { db in
            let rows = try String.fetchAll(db, sql: """
                SELECT config FROM containers WHERE name = ?1 OR id = ?1
                UNION ALL SELECT config FROM containers WHERE length(?1) >= 4 AND id >= ?1 AND id < ?1 || 'g' AND id != ?1 AND coalesce(name, '') != ?1
                LIMIT 2
                """, arguments: [ref])
            guard let first = rows.first else { throw StrataError(.containerNotFound, "no such container: \(ref)") }
            if rows.count > 1 { throw StrataError(.ambiguousImage, "container ID prefix \"\(ref)\" is ambiguous: use more characters") }
            do {
                return try JSONDecoder().decode(ContainerInfo.self, from: Data(first.utf8))
            } catch {
                throw StrataError(.database, "container \(ref) has an unreadable record", cause: error)
            }
        }
    }

    /// Mounts (overlay) or finds (copy) the container's root filesystem and returns its path.
    public func mountContainer(_ ref: String) async throws -> String {
        let c = try await container(ref)
        let lowers = try await containerLowers(c)
        return try snapshotter(c.snapshotter).mount(containerDirs(c.id), lowers: lowers)
    }

    public func unmountContainer(_ ref: String) async throws {
        let c = try await container(ref)
        try snapshotter(c.snapshotter).unmount(containerDirs(c.id))
    }

    /// Bytes of the container's writable layer, and of its image (`ps -s`: SIZE (virtual …)).
    public func containerSize(_ ref: String) async throws -> (writable: Int64, virtual: Int64) {
        let c = try await container(ref)
        let dirs = containerDirs(c.id)
        let imageSize = try await read { db in try Int64.fetchOne(db, sql: "SELECT size FROM images WHERE id = ?", arguments: [c.imageID.string]) ?? 0 }
        var writable: Int64 = 0
        switch c.snapshotter {
        case .overlay:
            writable = treeSize(dirs.upper)
        case .copy:
            let lowers = try await containerLowers(c)
            for change in try snapshotter(.copy).changes(dirs, lowers: lowers) where change.kind != .deleted {
                if let m = FileMeta.of(dirs.rootfs + change.path), m.kind == .file { writable += m.size }
            }
        }
        return (writable, imageSize + writable)
    }

    /// Paths the container added, changed or deleted, as `docker diff`.
    public func changes(in ref: String) async throws -> [Change] {
        let c = try await container(ref)
        let lowers = try await containerLowers(c)
        return try snapshotter(c.snapshotter).changes(containerDirs(c.id), lowers: lowers)
    }

    /// Removes a container: its row goes first (queuing its directory), then the directory
    /// (law 2). Its changes are gone unless committed. Two processes removing the same
    /// container: one succeeds, the other gets "no such container".
    ///
    /// With `force`, a running container is killed first (``stop(_:timeout:signal:)`` with no
    /// grace), as `docker rm -f` does; without it, removing a running container is a conflict.
    /// With `removeVolumes` (`docker rm -v`), its anonymous volumes go too when no other
    /// container uses them; named volumes stay, as under dockerd.
    public func removeContainer(_ ref: String, force: Bool = false, removeVolumes: Bool = false) async throws -> String {
        let c = try await container(ref)
        if c.state == "running" && !force {
            // dockerd's words (its name with the leading slash), which scripts match.
            let name = "/" + (c.name ?? String(c.id.prefix(12)))
            if c.paused == true {
                throw StrataError(.conflict, "cannot remove container \"\(name)\": container is paused: unpause the container before removing or force remove")
            }
            throw StrataError(.conflict, "cannot remove container \"\(name)\": container is running: stop the container before removing or force remove")
        }
        // As `docker rm -f`: a live run is killed first, and its exit recorded (its own
        // --rm may remove the container meanwhile, which is what was asked).
        if force, try isRunning(id: c.id, state: c.state) {
            try await stop(c.id, timeout: .zero)
            if (try? await container(c.id)) == nil { return c.id }
        }
        try snapshotter(c.snapshotter).unmount(containerDirs(c.id))
        let rel = "containers/\(c.id)"
        try await write { db in
            try db.execute(sql: "DELETE FROM containers WHERE id = ?", arguments: [c.id])
            guard db.changesCount == 1 else { throw StrataError(.containerNotFound, "no such container: \(ref)") }
            try db.execute(sql: "INSERT OR IGNORE INTO pending_unlinks(path, queued_at) VALUES (?, ?)", arguments: [rel, now()])
        }
        CrashPoint.hit("rm.after-commit")
        try replayPendingUnlinks()
        if removeVolumes {
            try await self.removeVolumes((c.volumes ?? []).filter { $0.anonymous == true }.map(\.source), skipInUse: true)
        }
        return c.id
    }
}
