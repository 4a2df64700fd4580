import CArchive
import Foundation
import GRDB

/// One build step's commit, as the classic builder makes it (``Store/commitBuildStep(_:)``).
package struct BuildStepCommit: Sendable {
    /// The image the step starts from.
    public var parent: Digest
    /// The temporary container whose changes become the step's layer; nil for a
    /// metadata-only step (an `empty_layer` history entry, no layer).
    public var container: String?
    /// The new `config` object of the image config (Env, Cmd, …).
    public var containerConfig: ContainerConfig
    /// The history entry's `created_by`, e.g. `/bin/sh -c #(nop)  ENV A=b`.
    public var createdBy: String
    /// The image's and history entry's creation time.
    public var created: Date
    /// SOURCE_DATE_EPOCH: layer entries newer than this get this mtime.
    public var clampTime: Int64?
    /// The image author (MAINTAINER); nil keeps the parent's.
    public var author: String?

    public init(parent: Digest, container: String?, containerConfig: ContainerConfig, createdBy: String, created: Date, clampTime: Int64? = nil,
                author: String? = nil) {
        self.author = author
        self.parent = parent
        self.container = container
        self.containerConfig = containerConfig
        self.createdBy = createdBy
        self.created = created
        self.clampTime = clampTime
    }
}

/// How a build runs one command in its temporary container (``Store/runBuildCommand(in:_:)``).
package struct BuildCommand: Sendable {
    public var args: [String]
    /// `KEY=VALUE` pairs: the image's Env plus the build args in effect.
    public var env: [String]
    /// The USER in effect ("", "uid", "name", "uid:gid", "name:group").
    public var user: String
    public var workingDir: String
    /// Where the command's stdout and stderr go (nil: discarded, as `build -q`).
    public var output: FileHandle?
    /// The image's VOLUME paths: the command sees a throwaway copy of each, so what it changes
    /// there never reaches the layer (the classic builder's anonymous volumes; buildah too).
    public var volumes: [String]
    /// `RUN --mount`s: binds, cache mounts and tmpfs. Their content never reaches the layer,
    /// and a mount point the step had to create is removed afterwards (buildah does the same).
    public var mounts: [BuildMount]

    public init(args: [String], env: [String], user: String, workingDir: String, output: FileHandle?, volumes: [String] = [],
                mounts: [BuildMount] = []) {
        self.args = args
        self.env = env
        self.user = user
        self.workingDir = workingDir
        self.output = output
        self.volumes = volumes
        self.mounts = mounts
    }
}

extension Store {
    /// The stored config blob of an image, byte for byte.
    public func imageConfigData(_ id: Digest) async throws -> Data {
        try blobs.readSmall(id)
    }

    /// Commits one build step: the parent's config with `containerConfig` as its `config`
    /// object, a history entry, and the container's changes as a layer (none: `empty_layer`).
    /// The new image's parent is `parent`. Returns the image ID.
    package func commitBuildStep(_ step: BuildStepCommit) async throws -> Digest {
        let containerConfig = step.containerConfig
        var c: ContainerInfo?
        if let id = step.container { c = try await container(id) }
        let loaded = try await commitImage(CommitPlan(
            parent: step.parent, container: c, created: step.created, createdBy: step.createdBy,
            author: step.author, comment: nil, tag: nil, clampTime: step.clampTime,
            editConfig: { $0 = containerConfig }))
        return loaded.id
    }

    /// The empty image `FROM scratch` starts from: no layers, no history, the platform's
    /// os and architecture. The same platform always gives the same ID.
    package func scratchImage(platform: Platform) async throws -> Digest {
        let config = ImageConfig(architecture: platform.architecture, os: platform.os, variant: platform.variant,
                                 config: ContainerConfig(), rootfs: RootFS(diffIDs: []), history: nil)
        let configData = try CanonicalJSON.encode(config)
        let session = try blobs.newSession()
        defer { session.remove() }
        let configBlob = try session.spool(configData)
        let cd = configBlob.result.digest
        let manifest = Manifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(configData.count)), layers: [])
        let manifestData = try CanonicalJSON.encode(manifest)
        let manifestBlob = try session.spool(manifestData)
        let md = manifestBlob.result.digest
        let image = PendingImage(
            manifestDigest: md, indexDigest: nil, configDigest: cd, config: config, layers: [], tags: [],
            blobs: [
                PendingBlob(source: configBlob, expected: cd, expectedSize: Int64(configData.count), mediaType: MediaType.ociConfig, name: "config"),
                PendingBlob(source: manifestBlob, expected: md, expectedSize: Int64(manifestData.count), mediaType: MediaType.ociManifest, name: "manifest"),
            ],
            edges: [(md.string, cd.string, "config")])
        guard let loaded = try await commit([image], session: session, operation: "build").first else {
            throw StrataError(.internalError, "the scratch image was not stored")
        }
        return loaded.id
    }

    /// Creates a build step's temporary container from `image` and returns its ID and
    /// mounted root filesystem.
    package func createBuildContainer(from image: Digest) async throws -> (id: String, rootfs: BuildRootfs) {
        let c = try await createContainer(from: image.string)
        do {
            let root = try await mountContainer(c.id)
            return (c.id, BuildRootfs(root: root))
        } catch {
            _ = try? await removeContainer(c.id, force: true)
            throw error
        }
    }

    /// Runs a RUN step's command in a build container through the OCI runtime (runc) and
    /// returns its exit status. The working directory is created when missing, as Docker does.
    package func runBuildCommand(in containerID: String, _ command: BuildCommand) async throws -> Int32 {
        let runtime = try OCIRuntime.find()
        let c = try await container(containerID)
        let rootfs = try await mountContainer(c.id)
        let fs = BuildRootfs(root: rootfs)
        try fs.makeDirectory(command.workingDir)
        let user = try UserResolver(root: rootfs).resolve(command.user)
        let bundle = containerDirs(c.id).base
        // VOLUME paths: the mount point is created in the rootfs (it stays, as in docker and
        // buildah); the command works on a copy of its content, removed afterwards.
        var binds: [(String, String)] = []
        var volumeCopies: [String] = []
        defer { for d in volumeCopies { removeTree(d) } }
        let volumes = Set(command.volumes.map { v -> String in
            var parts: [Substring] = []
            for c in v.split(separator: "/") where c != "." {
                if c == ".." { _ = parts.popLast() } else { parts.append(c) }
            }
            return "/" + parts.joined(separator: "/")
        }).filter { $0 != "/" }.sorted()
        for (i, v) in volumes.enumerated() {
            try fs.makeDirectory(v)
            let source = try fs.resolve(v)
            let copy = bundle.appendingPathComponent("volume-\(i)").path
            removeTree(copy)
            guard mkdir(copy.cPath, 0o755) == 0, let meta = FileMeta.of(source) else {
                throw StrataError.system("cannot prepare the volume \(v) of \(c.id)")
            }
            volumeCopies.append(copy)
            try TreeCopier(whiteouts: false).apply(layer: source, to: copy)
            lchown(copy.cPath, meta.uid, meta.gid)
            chmod(copy.cPath, mode_t(meta.mode))
            binds.append((copy, v))
        }
        // RUN --mount: a mount point the step had to create goes afterwards when it is still
        // empty; directories made above it stay, as in buildah.
        var extraMounts: [[String: Any]] = []
        var mountLocks: [FileLock] = []
        var privateCaches: [String] = []
        var createdStubs: [String] = []
        defer {
            for t in createdStubs.reversed() {
                guard let full = try? fs.resolve(t, followFinal: false), let m = FileMeta.of(full) else { continue }
                if m.kind == .directory { rmdir(full) } else if m.kind == .file, m.size == 0 { unlink(full) }  // a file mount's point
            }
            mountLocks.removeAll()
            for d in privateCaches { removeTree(d) }
        }
        for m in command.mounts {
            let target = m.target
            if !createdStubs.contains(target), FileMeta.of((try? fs.resolve(target)) ?? "") == nil { createdStubs.append(target) }
            switch m.kind {
            case .bind(let source, let readOnly):
                extraMounts.append(["destination": target, "type": "bind", "source": source, "options": ["rbind", readOnly ? "ro" : "rw"]])
            case .cache(let id, let uid, let gid, let mode, let sharing, let readOnly):
                let (data, lock, scratch) = try await prepareCacheMount(id: id, uid: uid, gid: gid, mode: mode, sharing: sharing)
                if let lock { mountLocks.append(lock) }
                if let scratch { privateCaches.append(scratch) }
                extraMounts.append(["destination": target, "type": "bind", "source": data, "options": ["rbind", readOnly ? "ro" : "rw"]])
            case .tmpfs(let size):
                var options: [String] = ["nosuid", "nodev"]
                if let size { options.append("size=\(size)") }
                extraMounts.append(["destination": target, "type": "tmpfs", "source": "tmpfs", "options": options])
            }
        }
        var spec = RuntimeSpec.make(rootfs: rootfs, args: command.args, env: command.env, cwd: command.workingDir,
                                    user: user, hostname: String(c.id.prefix(12)), hostNetwork: true, binds: binds,
                                    tmpfsOnTmp: false)  // /tmp is the image's: what RUN writes there stays in the layer
        if !extraMounts.isEmpty { spec["mounts"] = ((spec["mounts"] as? [[String: Any]]) ?? []) + extraMounts }
        // Mount points the runtime creates are not the step's content (Docker keeps them in
        // an init layer it never commits): remove the ones that were missing and stay empty.
        let mountPoints = ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"]
        let missing = mountPoints.filter { FileMeta.of(rootfs + $0) == nil }
        defer { for m in missing.reversed() { rmdir(rootfs + m) } }
        return try await launch(c.id, spec: spec, runtime: runtime, stdout: command.output ?? FileHandle.nullDevice,
                          stderr: command.output ?? FileHandle.nullDevice)
    }

    /// Extracts a build context tar (plain, gzip or zstd; from `build -`) into a fresh
    /// directory inside the store, refusing paths that escape it. The caller removes it.
    package func extractBuildContext(tar path: String) async throws -> String {
        let dir = paths.ingestDir.appendingPathComponent("context-\(randomHex().prefix(16))")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try LayerUnpacker(root: dir.path, overlayWhiteouts: false, applyRootHeader: false).unpack(layer: path, name: "the build context")
        } catch {
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
        return dir.path
    }

    /// A scratch directory inside the store (for a context read from stdin); the caller removes it.
    package func makeBuildScratchFile() throws -> String {
        let dir = paths.ingestDir.appendingPathComponent("stdin-\(randomHex().prefix(16))")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw StrataError(.io, "cannot create \(dir.path): \(error.localizedDescription)", cause: error)
        }
        return dir.path
    }
}

/// One file, directory or symlink a COPY/ADD step writes into the rootfs.
package struct BuildCopyItem: Sendable, Hashable {
    /// Host path of the source (inside the context or another stage's rootfs).
    public var source: String
    /// Absolute path in the build container.
    public var destination: String

    public init(source: String, destination: String) {
        self.source = source
        self.destination = destination
    }
}

/// A build container's mounted root filesystem. Every path is resolved inside it: symlinks
/// are followed relative to the root and `..` never climbs above it (law 5).
package struct BuildRootfs: Sendable {
    /// The host path of the root.
    public let root: String

    public init(root: String) { self.root = root }

    /// The host path `path` (absolute, in the container) resolves to.
    public func resolve(_ path: String, followFinal: Bool = true) throws -> String {
        try ScopedPath.resolve(root: root, path: path, followFinal: followFinal)
    }

    /// Whether `path` is a directory in the container (following symlinks inside it).
    public func isDirectory(_ path: String) -> Bool {
        guard let full = try? resolve(path) else { return false }
        return FileMeta.of(full)?.kind == .directory
    }

    /// Creates `path` and its missing parents (0755, owned by root unless `owner`).
    public func makeDirectory(_ path: String, owner: (uid: UInt32, gid: UInt32)? = nil) throws {
        var current = ""
        for c in path.split(separator: "/") where !c.isEmpty && c != "." {
            current += "/" + c
            let full = try resolve(current)
            if let m = FileMeta.of(full) {
                guard m.kind == .directory else {
                    throw StrataError(.invalidArgument, "\(current) exists in the image and is not a directory")
                }
                continue
            }
            if mkdir(full.cPath, 0o755) != 0 { throw StrataError.system("cannot create \(current)") }
            chmod(full.cPath, 0o755)
            if let owner { lchown(full.cPath, owner.uid, owner.gid) }
        }
    }

    /// Resolves a `--chown` spec ("uid", "name", "uid:gid", "name:group"; empty: root) with
    /// the rootfs' own /etc/passwd and /etc/group (``UserResolver/owner(_:)``). An unknown
    /// name is an error, as in Docker.
    public func owner(_ spec: String) throws -> (uid: UInt32, gid: UInt32) {
        try UserResolver(root: root).owner(spec)
    }

    /// The owner WORKDIR gives the directories it creates: the USER in effect, resolved in
    /// the rootfs with the `--chown` rule (a lone uid is its own gid), as BuildKit and buildah
    /// do. A user the image does not know gives root, as buildah does.
    public func workdirOwner(_ user: String) -> (uid: UInt32, gid: UInt32)? {
        guard !user.isEmpty else { return nil }
        return try? UserResolver(root: root).owner(user)
    }

    /// Copies files, directories and symlinks in (in order: parents before children), with
    /// their mode (setuid/setgid/sticky included), times and xattrs; owner `owner`, else the
    /// source's own with `keepOwner` (`COPY --from`), else root; mode as given by `mode`.
    /// Missing parent directories are created (0755, owned by `owner`). An existing directory is merged into; any
    /// other existing path is replaced.
    public func copy(_ items: [BuildCopyItem], owner: (uid: UInt32, gid: UInt32)?, mode: UInt32?, keepOwner: Bool = false) throws {
        let copier = TreeCopier()
        var dirs: [(target: String, meta: FileMeta, source: String)] = []
        for item in items {
            guard let meta = FileMeta.of(item.source) else {
                throw StrataError(.invalidArgument, "\(item.source): no such file or directory")
            }
            let (parent, name) = splitPath(item.destination)
            try makeDirectory(parent, owner: owner)  // new parents get the --chown owner, as in Docker and buildah
            let parentFull = try resolve(parent)
            guard !name.isEmpty, name != ".", name != ".." else {
                if meta.kind == .directory { continue }
                throw StrataError(.invalidArgument, "cannot copy \(item.source) to \(item.destination)")
            }
            let target = parentFull + "/" + name
            let existing = FileMeta.of(target)
            if meta.kind == .directory, existing?.kind == .directory {
                continue  // merged into: the image's directory keeps its metadata
            }
            if existing != nil { removeTree(target) }
            switch meta.kind {
            case .directory:
                if mkdir(target.cPath, 0o755) != 0 { throw StrataError.system("cannot create \(item.destination)") }
                dirs.append((target, meta, item.source))
                continue
            case .file:
                try copier.copyFile(item.source, target, size: meta.size)
            case .symlink:
                if symlink((meta.linkTarget ?? "").cPath, target.cPath) != 0 {
                    throw StrataError.system("cannot create \(item.destination)")
                }
            default:
                throw StrataError(.invalidArgument, "\(item.source): only files, directories and symlinks can be copied")
            }
            try apply(meta, from: item.source, to: target, owner: owner, mode: mode, keepOwner: keepOwner, copier: copier)
        }
        // Directory metadata last: writing children changes a directory's times.
        for d in dirs.reversed() {
            try apply(d.meta, from: d.source, to: d.target, owner: owner, mode: mode, keepOwner: keepOwner, copier: copier)
        }
    }

    private func apply(_ meta: FileMeta, from source: String, to target: String, owner: (uid: UInt32, gid: UInt32)?, mode: UInt32?,
                       keepOwner: Bool, copier: TreeCopier) throws {
        var m = meta
        if let owner {
            (m.uid, m.gid) = (owner.uid, owner.gid)
        } else if !keepOwner {
            (m.uid, m.gid) = (0, 0)
        }
        if let mode, meta.kind != .symlink { m.mode = mode }
        // Owner first, then mode: a chown after the chmod would clear setuid and setgid.
        try copier.copyMetadata(from: source, to: target, meta: m)
    }

    /// A path's extended attributes (not followed through a symlink), sorted by name,
    /// without overlayfs' own (`trusted.overlay.*`).
    public static func extendedAttributes(_ path: String) -> [(name: String, value: [UInt8])] {
        var names = [Int8](repeating: 0, count: 65536)
        let n = llistxattr(path.cPath, &names, names.count)
        guard n > 0 else { return [] }
        let all = names[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }.sorted()
        return all.filter { !$0.hasPrefix("trusted.overlay.") }.map { name in
            var value = [UInt8](repeating: 0, count: 65536)
            let len = lgetxattr(path.cPath, name, &value, value.count)
            return (name, len > 0 ? Array(value[0..<len]) : [])
        }
    }

    /// Unpacks a local tar archive (plain, gzip, zstd, bzip2, xz) into the directory `path`
    /// (ADD's auto-extraction), as docker's classic builder and buildah do: the directory is
    /// the archive's root — an entry below a symlink (the archive's own or the image's) goes
    /// where it leads inside that directory, a file replaces a directory — and `..` or a
    /// symlink can never take a write outside it.
    public func extract(archive: String, into path: String) throws {
        try makeDirectory(path)
        let dir = try resolve(path)
        try LayerUnpacker(root: dir, overlayWhiteouts: false, applyRootHeader: false, resolveLinksInRoot: true)
            .unpack(layer: archive, name: splitPath(archive).base)
    }
}

/// `a/b/c` → (`a/b`, `c`); `/c` → (`/`, `c`); `c` → (``, `c`). Trailing slashes are ignored.
func splitPath(_ path: String) -> (parent: String, base: String) {
    var p = Substring(path)
    while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return ("", String(p)) }
    let parent = p[..<slash]
    return (parent.isEmpty ? "/" : String(parent), String(p[p.index(after: slash)...]))
}
