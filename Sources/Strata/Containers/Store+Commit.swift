import CArchive
import Foundation
import GRDB

/// Options for ``Store/commit(_:options:)``, as `docker commit`.
public struct CommitOptions: Sendable {
    /// The history comment (`-m`).
    public var message: String?
    /// The image author (`-a`).
    public var author: String?
    /// Edits of the config (`-c`), in order. `ConfigEdit.parse` in StrataBuild makes them
    /// from Dockerfile text with the Dockerfile parser.
    public var edits: [ConfigEdit] = []
    /// Tag for the new image.
    public var reference: String?
    /// Freeze a running container while its layer is read (`docker commit`'s default,
    /// `--pause`), so the layer is one moment of it; thawed afterwards.
    public var pause: Bool

    public init(message: String? = nil, author: String? = nil, edits: [ConfigEdit] = [], reference: String? = nil, pause: Bool = false) {
        self.message = message
        self.author = author
        self.edits = edits
        self.reference = reference
        self.pause = pause
    }
}

/// One edit of an image's runtime config, as `docker commit --change` makes them: CMD,
/// ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, ONBUILD.
public enum ConfigEdit: Sendable, Hashable {
    case cmd([String])
    case entrypoint([String])
    /// Sets one variable (replacing an earlier value of it).
    case env(key: String, value: String)
    case label(key: String, value: String)
    /// A port spec as the config keys it (`80/tcp`).
    case exposedPort(String)
    case volume(String)
    case workingDir(String)
    case user(String)
    case stopSignal(String)
    /// An ONBUILD trigger, as written.
    case onBuild(String)
    /// A HEALTHCHECK: Docker's `Healthcheck` object (``Healthcheck``), in place of the image's.
    case healthcheck(JSONValue)

    /// Applies the edit to the `config` object of an image config.
    public func apply(to c: inout ContainerConfig) {
        switch self {
        case .cmd(let a): c.Cmd = a
        case .entrypoint(let a): c.Entrypoint = a
        case .env(let k, let v): c.setEnv(k, v)
        case .label(let k, let v): c.addLabel(k, v)
        case .exposedPort(let p): c.addExposedPort(p)
        case .volume(let v): c.addVolume(v)
        case .workingDir(let d): c.WorkingDir = d
        case .user(let u): c.User = u
        case .stopSignal(let s): c.StopSignal = s
        case .onBuild(let t): c.OnBuild = (c.OnBuild ?? []) + [t]
        case .healthcheck(let h): c.Healthcheck = h
        }
    }
}

extension Store {
    /// Turns a container's changes into a new image whose parent is the container's image:
    /// the writable layer becomes a layer tar (overlay whiteouts become OCI whiteouts, an
    /// opaque directory `.wh..wh..opq`), a history entry is appended and `-c` changes are
    /// applied. No changes give an `empty_layer` history entry and no new layer, as Docker does.
    public func commit(_ ref: String, options: CommitOptions = CommitOptions()) async throws -> LoadedImage {
        if options.pause {
            let c = try await container(ref)
            // As dockerd: a container that ended meanwhile (the pause finds it not running)
            // is committed as it is.
            if c.paused != true, try isRunning(id: c.id, state: c.state), await pausedIfRunning(c.id) {
                var unfrozen = options
                unfrozen.pause = false
                do {
                    let image = try await commit(c.id, options: unfrozen)
                    // A run that ended while frozen has nothing left to thaw.
                    do { try await unpause(c.id) } catch let e as StrataError where e.code == .conflict {}
                    return image
                } catch {
                    try? await unpause(c.id)
                    throw error
                }
            }
        }
        let tag = try options.reference.map { try Reference($0) }
        let c = try await container(ref)
        let edits = options.edits
        // The new layer is about the size of the container's changes (before compression).
        let writable = snapshotter(c.snapshotter).writableRoot(containerDirs(c.id))
        return try await explainingDiskFull("committing container \(c.id.prefix(12))", estimate: { treeSize(writable) }) {
            try await commitImage(CommitPlan(
                parent: c.imageID, container: c, created: Date(),
                createdBy: c.command.isEmpty ? "" : c.command.joined(separator: " "),
                author: options.author, comment: options.message, tag: tag,
                editConfig: { container in for edit in edits { edit.apply(to: &container) } }),
                event: .commit(container: c.id, comment: options.message ?? ""))
        }
    }

    /// Freezes a running container for a commit: false when it is not running (any more).
    private func pausedIfRunning(_ id: String) async -> Bool {
        do {
            try await pause(id)
            return true
        } catch {
            return false
        }
    }

    /// The one commit path shared by `commit` and the builder: the parent's config plus the
    /// container's changes as a layer (none for no container or no changes: an
    /// `empty_layer` entry), a history entry and the edited `config` object; `event` is
    /// recorded with it (a build's steps record none).
    package func commitImage(_ plan: CommitPlan, event: CommitEvent? = nil) async throws -> LoadedImage {
        let tag = plan.tag
        let parentConfig = try blobs.readSmall(plan.parent)
        var config = try ImageConfig.decode(parentConfig, digest: plan.parent)
        let session = try blobs.newSession()
        defer { session.remove() }

        var newLayer: IngestedFile?
        if let c = plan.container {
            let lowers = try await containerLowers(c)
            let snap = snapshotter(c.snapshotter)
            let dirs = containerDirs(c.id)
            let changes = try snap.changes(dirs, lowers: lowers)
            if !changes.isEmpty {
                let w = try session.newWriter()
                let tarPath = w.path
                _ = try w.finish()
                let fd = Glibc.open(tarPath, O_WRONLY | O_TRUNC | O_CLOEXEC)
                guard fd >= 0 else { throw StrataError.system("cannot write \(tarPath)") }
                do {
                    let writer = try ArchiveWriter(fd: fd, name: "the commit layer", reproducibleTimes: false, clampTime: plan.clampTime)
                    try LayerWriter(writer: writer).write(changes: changes, snapshotter: c.snapshotter, root: snap.writableRoot(dirs))
                    try writer.close()
                    close(fd)
                } catch {
                    close(fd)
                    throw error
                }
                CrashPoint.hit("commit.after-tar")
                let digester = StreamDigester(indexTo: tarPath + ".index")
                try FileReader(path: tarPath, what: "the commit layer").forEachChunk { digester.update($0) }
                newLayer = IngestedFile(path: tarPath, result: digester.finish())
            }
        }

        // The new config: parent's, plus the layer, a history entry and the config edits.
        let created = RFC3339.format(plan.created)
        config.created = created
        if let a = plan.author { config.author = a }
        var container = config.config ?? ContainerConfig()
        // The container's labels (`create --label`) go into the image, as dockerd's commit
        // writes the container's config; `-c LABEL` edits come after.
        if let labels = plan.container?.labels, !labels.isEmpty {
            container.Labels = (container.Labels ?? [:]).merging(labels) { $1 }
        }
        try plan.editConfig(&container)
        config.config = container
        if let l = newLayer { config.rootfs.diffIDs.append(l.result.diffID) }
        config.history = (config.history ?? []) + [HistoryEntry(
            created: created, createdBy: plan.createdBy, author: plan.author, comment: plan.comment,
            emptyLayer: newLayer == nil ? true : nil)]
        let configData = try config.encoded()
        let decoded = config
        let parentID = plan.parent
        // Parent layers as stored, plus the new one.
        let parentLayers = try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT il.blob_digest, il.media_type, b.size, lb.diff_id, lb.compression, lb.uncompressed_size
                FROM image_layers il JOIN blobs b ON b.digest = il.blob_digest JOIN layer_blobs lb ON lb.blob_digest = il.blob_digest
                WHERE il.image_id = ? ORDER BY il.position
                """, arguments: [parentID.string]).map { r in
                PendingLayer(blob: DigestResult(digest: try Digest(r["blob_digest"] as String), size: r["size"],
                                                compression: Compression(rawValue: r["compression"]) ?? .none,
                                                diffID: try Digest(r["diff_id"] as String), uncompressedSize: r["uncompressed_size"]),
                             mediaType: r["media_type"])
            }
        }
        var layers = parentLayers
        var pending: [PendingBlob] = parentLayers.map {
            PendingBlob(source: .stored($0.blob), expected: $0.blob.digest, expectedSize: $0.blob.size, mediaType: $0.mediaType, name: "layer \($0.blob.digest)")
        }
        if let l = newLayer {
            layers.append(PendingLayer(blob: l.result, mediaType: MediaType.ociLayer))
            pending.append(PendingBlob(source: .spooled(l), expected: l.result.digest, expectedSize: l.result.size, mediaType: MediaType.ociLayer, name: "the commit layer"))
        }
        let configBlob = try session.spool(configData)
        let cd = configBlob.result.digest
        let manifest = Manifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(configData.count)),
                                layers: layers.map { Descriptor(mediaType: $0.mediaType, digest: $0.blob.digest, size: $0.blob.size) })
        let manifestData = try CanonicalJSON.encode(manifest)
        let manifestBlob = try session.spool(manifestData)
        let md = manifestBlob.result.digest
        pending.append(PendingBlob(source: configBlob, expected: cd, expectedSize: Int64(configData.count), mediaType: MediaType.ociConfig, name: "config"))
        pending.append(PendingBlob(source: manifestBlob, expected: md, expectedSize: Int64(manifestData.count), mediaType: MediaType.ociManifest, name: "manifest"))
        var edges = [(md.string, cd.string, "config")]
        edges += layers.map { (md.string, $0.blob.digest.string, "layer") }
        let image = PendingImage(manifestDigest: md, indexDigest: nil, configDigest: cd, config: decoded, layers: layers,
                                 tags: tag.map { [$0] } ?? [], blobs: pending, edges: edges)
        guard let loaded = try await commit([image], session: session, operation: "commit", event: event).first else {
            throw StrataError(.internalError, "commit produced no image")
        }
        // The container's image is the new image's parent, whatever the history says.
        try await write { db in
            try db.execute(sql: "UPDATE images SET parent_id = ? WHERE id = ? AND parent_id IS NULL", arguments: [parentID.string, cd.string])
        }
        return loaded
    }
}

/// What ``Store/commitImage(_:)`` makes: the parent, the container whose changes become
/// the layer (nil: a metadata-only step), the history entry and the config edits.
package struct CommitPlan {
    package var parent: Digest
    package var container: ContainerInfo?
    package var created: Date
    package var createdBy: String
    package var author: String?
    package var comment: String?
    package var tag: Reference?
    /// Layer entries newer than this (unix seconds) get this mtime (SOURCE_DATE_EPOCH).
    package var clampTime: Int64?
    package var editConfig: @Sendable (inout ContainerConfig) throws -> Void

    package init(parent: Digest, container: ContainerInfo?, created: Date, createdBy: String, author: String?, comment: String?,
                 tag: Reference?, clampTime: Int64? = nil, editConfig: @escaping @Sendable (inout ContainerConfig) throws -> Void) {
        self.parent = parent
        self.container = container
        self.created = created
        self.createdBy = createdBy
        self.author = author
        self.comment = comment
        self.tag = tag
        self.clampTime = clampTime
        self.editConfig = editConfig
    }
}

/// Writes a container's changes as an OCI layer tar.
struct LayerWriter {
    let writer: ArchiveWriter

    func write(changes: [Change], snapshotter: SnapshotterKind, root: String) throws {
        var links: [UInt64: String] = [:]
        for change in changes {
            let rel = String(change.path.dropFirst())
            let full = root + "/" + rel
            let (parent, base) = splitPath(rel)
            if change.kind == .deleted {
                try writer.addWhiteout((parent.isEmpty ? "" : parent + "/") + LayerEntry.whiteoutPrefix + base)
                continue
            }
            guard let meta = FileMeta.of(full) else { continue }
            try writer.addFromDisk(full, as: rel, meta: meta, links: &links)
            if snapshotter == .overlay, meta.kind == .directory, isOpaque(full) {
                try writer.addWhiteout(rel + "/" + LayerEntry.opaqueName)
            }
        }
    }
}
