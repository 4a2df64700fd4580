import CArchive
import Foundation
import GRDB

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
    /// Where its stderr goes when apart from ``output`` (nil: with it).
    public var errors: FileHandle?
    /// `HOST:IP` (or `HOST=IP`) lines for the /etc/hosts the command sees.
    public var extraHosts: [String] = []
    /// The host's network and its resolv.conf and hosts (the default), or an empty network
    /// namespace of its own.
    public var hostNetwork = true
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
    /// The directory build contexts and scratch files are unpacked into (removed by gc when
    /// a crash leaves one behind).
    package var buildScratchDirectory: URL { paths.ingestDir }

    /// The stored config blob of an image, byte for byte.
    public func imageConfigData(_ id: Digest) async throws -> Data {
        try blobs.readSmall(id)
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

    /// Runs a RUN step's command in a build container through the OCI runtime (runc) and
    /// returns its exit status. The working directory is created when missing, as Docker does.
    package func runBuildCommand(in containerID: String, _ command: BuildCommand) async throws -> Int32 {
        let runtime = try OCIRuntime.find()
        let c = try await container(containerID)
        let rootfs = try await mountContainer(c.id)
        try ScopedPath.makeDirectories(root: rootfs, path: command.workingDir)
        let user = try UserResolver(root: rootfs).resolve(command.user)
        let bundle = containerDirs(c.id).base
        // VOLUME paths: the mount point is created in the rootfs (it stays, as in docker and
        // buildah); the command works on a copy of its content, removed afterwards.
        var binds: [RuntimeSpec.Bind] = []
        var volumeCopies: [String] = []
        defer { for d in volumeCopies { removeTree(d) } }
        let volumes = Set(command.volumes.compactMap { LayerEntry.clean($0).map { "/" + $0 } }).sorted()
        for (i, v) in volumes.enumerated() {
            try ScopedPath.makeDirectories(root: rootfs, path: v)
            let source = try ScopedPath.resolve(root: rootfs, path: v, followFinal: true)
            let copy = bundle.appendingPathComponent("volume-\(i)").path
            removeTree(copy)
            guard mkdir(copy.cPath, 0o755) == 0, let meta = FileMeta.of(source) else {
                throw StrataError.system("cannot prepare the volume \(v) of \(c.id)")
            }
            volumeCopies.append(copy)
            try TreeCopier(whiteouts: false).apply(layer: source, to: copy)
            lchown(copy.cPath, meta.uid, meta.gid)
            chmod(copy.cPath, mode_t(meta.mode))
            binds.append((copy, v, false))
        }
        // RUN --mount: a mount point the step had to create goes afterwards when it is still
        // empty; directories made above it stay, as in buildah.
        var extraMounts: [[String: Any]] = []
        var mountLocks: [FileLock] = []
        var privateCaches: [String] = []
        var createdStubs: [String] = []
        defer {
            for t in createdStubs.reversed() {
                guard let full = try? ScopedPath.resolve(root: rootfs, path: t, followFinal: false), let m = FileMeta.of(full) else { continue }
                if m.kind == .directory { rmdir(full) } else if m.kind == .file, m.size == 0 { unlink(full) }  // a file mount's point
            }
            mountLocks.removeAll()
            for d in privateCaches { removeTree(d) }
        }
        // The host's resolv.conf and hosts, as the classic builder and buildah give a RUN (it
        // runs on the host's network); never the step's content: a file (and an /etc) made to
        // mount them on goes afterwards.
        let netFiles = command.hostNetwork ? try hostNetworkFiles(in: bundle, over: binds, extraHosts: command.extraHosts) : []
        for path in (netFiles.isEmpty ? [] : ["/etc"]) + netFiles.map(\.destination)
            where FileMeta.of((try? ScopedPath.resolve(root: rootfs, path: path, followFinal: true)) ?? "") == nil {
            createdStubs.append(path)
        }
        binds += netFiles
        for m in command.mounts {
            let target = m.target
            if !createdStubs.contains(target), FileMeta.of((try? ScopedPath.resolve(root: rootfs, path: target, followFinal: true)) ?? "") == nil {
                createdStubs.append(target)
            }
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
                                    user: user, hostname: String(c.id.prefix(12)), hostNetwork: command.hostNetwork, binds: binds,
                                    tmpfsOnTmp: false)  // /tmp is the image's: what RUN writes there stays in the layer
        if !extraMounts.isEmpty { spec["mounts"] = ((spec["mounts"] as? [[String: Any]]) ?? []) + extraMounts }
        // Mount points the runtime creates are not the step's content (Docker keeps them in
        // an init layer it never commits): remove the ones that were missing and stay empty.
        let mountPoints = ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"]
        let missing = mountPoints.filter { FileMeta.of(rootfs + $0) == nil }
        defer { for m in missing.reversed() { rmdir(rootfs + m) } }
        return try await launch(c.id, spec: spec, runtime: runtime, stdout: command.output ?? FileHandle.nullDevice,
                          stderr: command.errors ?? command.output ?? FileHandle.nullDevice)
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


/// `a/b/c` → (`a/b`, `c`); `/c` → (`/`, `c`); `c` → (``, `c`). Trailing slashes are ignored.
package func splitPath(_ path: String) -> (parent: String, base: String) {
    var p = Substring(path)
    while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return ("", String(p)) }
    let parent = p[..<slash]
    return (parent.isEmpty ? "/" : String(parent), String(p[p.index(after: slash)...]))
}
