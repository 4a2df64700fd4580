import Foundation
import OCI

/// Options for ``Store/run(_:options:remove:)``.
public struct RunOptions: Sendable {
    public var container: ContainerOptions
    /// Give the container the host's network (default: its own empty network namespace); the
    /// same as ``ContainerOptions/hostNetwork``, and recorded with the container as that is.
    public var hostNetwork = false

    public init(container: ContainerOptions = ContainerOptions(), hostNetwork: Bool = false) {
        self.container = container
        self.hostNetwork = hostNetwork
    }
}

/// An OCI runtime binary (runc; crun has the same command line).
struct OCIRuntime: Sendable {
    let path: String

    /// The first of runc, crun found on PATH.
    static func find(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> OCIRuntime {
        let dirs = (environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":")
        for name in ["runc", "crun"] {
            for d in dirs where access("\(d)/\(name)", X_OK) == 0 { return OCIRuntime(path: "\(d)/\(name)") }
        }
        throw StrataError(.unsupportedFormat, "no OCI runtime found: install runc (apt-get install runc) to run containers")
    }
}

/// The OCI runtime bundle's `config.json` for a container.
enum RuntimeSpec {
    /// A host directory bound into the container.
    typealias Bind = (source: String, destination: String, readOnly: Bool)

    static func make(rootfs: String, args: [String], env: [String], cwd: String, user: ResolvedUser,
                     hostname: String, hostNetwork: Bool, binds: [RuntimeSpec.Bind] = [], tmpfs: [TmpfsMount] = [],
                     shmSize: Int64? = nil, tmpfsOnTmp: Bool = true, terminal: Bool = false, readOnlyRootfs: Bool = false) -> [String: Any] {
        let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                    "CAP_FSETID", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_SETFCAP"]
        var namespaces: [[String: Any]] = [["type": "pid"], ["type": "ipc"], ["type": "uts"], ["type": "mount"]]
        if !hostNetwork { namespaces.append(["type": "network"]) }
        var mounts: [[String: Any]] = [
            ["destination": "/proc", "type": "proc", "source": "proc"],
            ["destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
            ["destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]],
            ["destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", shmSize.map { "size=\($0)" } ?? "size=65536k"]],
            ["destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]],
        ]
        // sysfs can be mounted only by the owner of the network namespace: rootless with the
        // host's network (a build's RUN), /sys is the host's, bound read-only, as runc's
        // rootless spec does.
        if hostNetwork && UserNamespace.isNested {
            mounts.append(["destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]])
        } else {
            mounts.append(["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]])
        }
        // `strata run` gets a tmpfs on /tmp; a build's RUN does not (docker and buildah keep
        // what it writes there in the layer).
        if tmpfsOnTmp, !tmpfs.contains(where: { $0.destination == "/tmp" }) {
            mounts.append(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]])
        }
        // The container's own mounts, a parent before what is mounted inside it (as dockerd
        // sorts them: by depth, in the order given otherwise); a bind is rprivate unless
        // asked otherwise, as dockerd makes it (runc's rslave root would make it a slave).
        let own: [(depth: Int, mount: [String: Any])] =
            binds.map { ($0.destination.split(separator: "/").count,
                         ["destination": $0.destination, "type": "bind", "source": $0.source,
                          "options": ["rbind", $0.readOnly ? "ro" : "rw", "rprivate"]]) }
            + tmpfs.map { ($0.destination.split(separator: "/").count,
                           ["destination": $0.destination, "type": "tmpfs", "source": "tmpfs", "options": $0.mountOptions]) }
        mounts += own.enumerated().sorted { ($0.element.depth, $0.offset) < ($1.element.depth, $1.offset) }.map(\.element.mount)
        return [
            "ociVersion": "1.0.2",
            "process": [
                "terminal": terminal,
                "user": ["uid": user.uid, "gid": user.gid, "additionalGids": user.additionalGids] as [String: Any],
                "args": args,
                "env": env,
                "cwd": cwd,
                "capabilities": ["bounding": caps, "effective": caps, "permitted": caps],
                // CAP_SYS_RESOURCE may be missing: keep limits the runtime can set.
                "rlimits": [["type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024]],
                "noNewPrivileges": true,
            ] as [String: Any],
            "root": ["path": rootfs, "readonly": readOnlyRootfs],
            "hostname": hostname,
            "mounts": mounts,
            "linux": [
                "namespaces": namespaces,
                "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            ] as [String: Any],
        ]
    }
}

extension Store {
    /// Creates a container, mounts it and runs its command through runc with a generated
    /// bundle (new mount, PID, UTS and IPC namespaces, no network unless asked); stdout and
    /// stderr stream through, and the command's exit status comes back. With `remove`, the
    /// container goes afterwards (`run --rm`).
    public func run(_ ref: String, options: RunOptions = RunOptions(), remove: Bool = false) async throws -> Int32 {
        let runtime = try OCIRuntime.find()
        var containerOptions = options.container
        containerOptions.hostNetwork = containerOptions.hostNetwork || options.hostNetwork
        let c = try await createContainer(from: ref, options: containerOptions)
        do {
            let status = try await start(c, runtime: runtime)
            if remove { _ = try await removeContainer(c.id, force: true, removeVolumes: true) }
            return status
        } catch {
            if remove { _ = try? await removeContainer(c.id, force: true, removeVolumes: true) }
            throw error
        }
    }

    private func start(_ c: ContainerInfo, runtime: OCIRuntime) async throws -> Int32 {
        // Everything that can fail on the image's content (no command, an unknown USER) fails
        // here, before runc starts.
        let spec = try await runtimeSpec(for: c, hostNetwork: false)
        // The run lock, as `start(_:)` holds it: a live `strata run` is never taken for a
        // run whose process died (``recoverInterruptedRuns()``).
        guard let runLock = try await takeRunLock(c.id) else {
            throw StrataError(.conflict, "container \(String(c.id.prefix(12))) is already running")
        }
        defer { withExtendedLifetime(runLock) {} }
        let proxy = try publishPorts(c, hostNetwork: false)
        defer { proxy?.stop() }
        let check = healthcheck(for: c)
        try await markRunning(c.id, publishedPorts: proxy?.bound, checked: check != nil)
        proxy?.start()
        let monitor = startHealthMonitor(c.id, check: check)
        let status: Int32
        do {
            status = try await launch(c.id, spec: spec, runtime: runtime, stdout: FileHandle.standardOutput, stderr: FileHandle.standardError)
        } catch {
            await stopHealthMonitor(monitor)
            try? await setState(c.id, "created")
            throw error
        }
        await stopHealthMonitor(monitor)
        // The status and the times, as a run of the server records them (`docker inspect`, `ps`).
        try await recordExit(c.id, status: status)
        return status
    }

    /// The one way a container's process starts, for `strata run` and build's RUN alike:
    /// the bundle's config.json written from `spec` (users already resolved inside the rootfs
    /// by ``UserResolver``), the OCI runtime run in the foreground, and its exit status
    /// awaited without blocking a thread (128 + the signal when a signal ended it). With
    /// `pidFile`, runc writes the process's PID there once it runs its command.
    func launch(_ id: String, spec: [String: Any], runtime: OCIRuntime, stdin: FileHandle = FileHandle.nullDevice,
                stdout: FileHandle, stderr: FileHandle, pidFile: String? = nil, started: (@Sendable (Int32) -> Void)? = nil) async throws -> Int32 {
        // runc's rootless mode needs the user namespace (not a bare EPERM from runc).
        try UserNamespace.requireEntered(for: "running a container", ownersOnly: false)
        let bundle = containerDirs(id).base
        do {
            try JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys]).write(to: bundle.appendingPathComponent("config.json"))
        } catch {
            throw StrataError(.io, "cannot write the runtime bundle of \(id): \(error.localizedDescription)", cause: error)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: runtime.path)
        p.arguments = ["--root", paths.root.appendingPathComponent("runtime").path, "run", "--bundle", bundle.path]
            + (pidFile.map { ["--pid-file", $0] } ?? []) + [id]
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        do {
            // A cancelled task (a server shutting down) kills the container; runc then exits
            // with 137 and the caller records it as exited.
            return try await withTaskCancellationHandler {
                try await runAndWait(p, started: started)
            } onCancel: {
                // A cancel just after the start can come before runc created the container,
                // when `runc kill` finds none: so kill again, from a thread of its own, until
                // runc is gone (or 30 s passed).
                let root = paths.root.appendingPathComponent("runtime").path
                let t = Thread {
                    for _ in 0..<300 where p.isRunning {
                        let kill = Process()
                        kill.executableURL = URL(fileURLWithPath: runtime.path)
                        kill.arguments = ["--root", root, "kill", id, "KILL"]
                        kill.standardOutput = FileHandle.nullDevice
                        kill.standardError = FileHandle.nullDevice
                        // A kill that cannot start has no status to read (Foundation traps).
                        guard (try? ProcessLaunch.run(kill)) != nil else { return }
                        kill.waitUntilExit()
                        if kill.terminationStatus == 0 { return }
                        Thread.sleep(forTimeInterval: 0.1)
                    }
                }
                t.name = "strata-kill"
                t.start()
            }
        } catch {
            throw StrataError(.io, "cannot start \(runtime.path): \(error.localizedDescription)", cause: error)
        }
    }

    /// Copies of the host's /etc/resolv.conf and /etc/hosts in `dir`, to bind over the
    /// container's: what a process on the host's network needs to find names, as dockerd
    /// gives a container on the host network (and a build's RUN) the host's. A file the host
    /// lacks, or a path one of `mounts` already covers, is left out. `extraHosts` (`HOST:IP`
    /// or `HOST=IP`, `--add-host`) are added to the hosts copy as `IP<tab>HOST` lines.
    func hostNetworkFiles(in dir: URL, over mounts: [RuntimeSpec.Bind] = [], extraHosts: [String] = []) throws -> [RuntimeSpec.Bind] {
        var out: [RuntimeSpec.Bind] = []
        for name in ["resolv.conf", "hosts"] where !mounts.contains(where: { $0.destination == "/etc/" + name }) {
            guard var data = FileManager.default.contents(atPath: "/etc/" + name) else { continue }
            if name == "hosts", !extraHosts.isEmpty {
                if let last = data.last, last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
                for entry in extraHosts {
                    let (host, ip) = try Self.extraHost(entry)
                    data.append(Data("\(ip)\t\(host)\n".utf8))
                }
            }
            let copy = dir.appendingPathComponent("etc-" + name)
            do { try data.write(to: copy) } catch {
                throw StrataError(.io, "cannot write \(copy.path): \(error.localizedDescription)", cause: error)
            }
            out.append((copy.path, "/etc/" + name, false))
        }
        return out
    }

    /// dockerd's check for a bind with shared (or slave) propagation: the mount that holds
    /// `source` must be shared (or shared or a slave), else its error.
    static func requirePropagation(of source: String, shared: Bool) throws {
        let path = URL(fileURLWithPath: source).resolvingSymlinksInPath().path
        // Read to its end (a proc file has no size: a read by size stops at the first page).
        guard let data = FileHandle(forReadingAtPath: "/proc/self/mountinfo")?.readDataToEndOfFile() else { return }
        let info = String(decoding: data, as: UTF8.self)
        var best: (point: String, fields: [Substring])?
        for line in info.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 6 else { continue }
            let point = String(f[4]).replacingOccurrences(of: "\\040", with: " ")
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            if inside, point.count >= (best?.point.count ?? -1) { best = (point, Array(f[6...].prefix { $0 != "-" })) }
        }
        guard let best else { return }
        let isShared = best.fields.contains { $0.hasPrefix("shared:") }
        let isSlave = best.fields.contains { $0.hasPrefix("master:") }
        if shared, !isShared {
            throw StrataError(.invalidArgument, "path \(source) is mounted on \(best.point) but it is not a shared mount")
        }
        if !shared, !isShared, !isSlave {
            throw StrataError(.invalidArgument, "path \(source) is mounted on \(best.point) but it is not a shared or slave mount")
        }
    }

    /// One `--add-host` entry, `HOST:IP` or `HOST=IP` (an IPv6 address keeps its colons;
    /// brackets around it are dropped), checked as dockerd checks it.
    public static func extraHost(_ entry: String) throws -> (host: String, ip: String) {
        let sep = entry.firstIndex(of: "=") ?? entry.firstIndex(of: ":")
        guard let sep else { throw StrataError(.invalidArgument, "bad format for add-host: \"\(entry)\"") }
        let host = String(entry[..<sep])
        var ip = String(entry[entry.index(after: sep)...])
        if ip.hasPrefix("["), ip.hasSuffix("]") { ip = String(ip.dropFirst().dropLast()) }
        var v4 = in_addr(), v6 = in6_addr()
        let ipOK = inet_pton(AF_INET, ip, &v4) == 1 || inet_pton(AF_INET6, ip, &v6) == 1
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace }), ipOK else {
            throw StrataError(.invalidArgument, "invalid IP address in add-host: \"\(ip)\"")
        }
        return (host, ip)
    }

    /// The runtime bundle's `config.json` for a created container: its command (or the
    /// image's ENTRYPOINT + CMD), environment, working directory, volumes, and the image's
    /// USER resolved inside its mounted root filesystem (``UserResolver``). Throws, before
    /// anything runs, when there is no command or the user or group does not exist.
    /// The container's own network namespace unless it was created with the host's
    /// (``ContainerOptions/hostNetwork``) or `hostNetwork` asks for it for this run.
    func runtimeSpec(for c: ContainerInfo, hostNetwork: Bool) async throws -> [String: Any] {
        let rootfs = try await mountContainer(c.id)
        let config = try ImageConfig.decode(try blobs.readSmall(c.imageID), digest: c.imageID).config
        var args = c.effectiveCommand(image: config)
        guard !args.isEmpty else { throw StrataError(.invalidArgument, "no command: the image has no CMD or ENTRYPOINT; give one after the image") }
        var env = config?.Env ?? []
        for e in c.env {
            let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(e)
        }
        // As dockerd: an environment without PATH gets the default one (an image whose only
        // ENV came from `commit -c "ENV A=1"` still finds its programs).
        if !env.contains(where: { $0.hasPrefix("PATH=") }) {
            env.insert("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", at: 0)
        }
        // As dockerd: a TTY gets TERM=xterm unless the image or the container set one.
        if c.tty == true, !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        let resolver = UserResolver(root: rootfs)
        var user = try resolver.resolve(c.user ?? config?.User)
        // --group-add, as dockerd: after the user's own groups, names from the container's /etc/group.
        for g in try resolver.groupIDs(c.groupAdd ?? []) where !user.additionalGids.contains(g) { user.additionalGids.append(g) }
        // As dockerd: a host directory given to -v that does not exist is made (0755, root's).
        for v in c.volumes ?? [] where v.isBind && FileMeta.of(v.source) == nil {
            do { try FileManager.default.createDirectory(atPath: v.source, withIntermediateDirectories: true) } catch {
                throw StrataError(.io, "cannot create the host directory \(v.source) for -v \(v.source):\(v.destination)", cause: error)
            }
        }
        let onHostNetwork = hostNetwork || c.hostNetwork == true
        var binds: [RuntimeSpec.Bind] = (c.volumes ?? []).map { ($0.isBind ? $0.source : volumeData($0.source), $0.destination, $0.isReadOnly) }
        if FileMeta.of(containerDirs(c.id).initLayer) != nil {
            // Over the init layer's empty files: its hostname, hosts and resolv.conf, as dockerd's.
            binds = try resolutionFiles(for: c, hostNetwork: onHostNetwork, over: binds) + binds
        } else if onHostNetwork {
            binds = try hostNetworkFiles(in: containerDirs(c.id).base, over: binds) + binds
        }
        // --init, as dockerd: the init bound read-only at /sbin/docker-init runs the command.
        if c.initProcess == true {
            guard let initBinary = ContainerInfo.initBinary else {
                throw StrataError(.notSupported, "--init needs an init on the host: install tini (its tini-static) or docker-init")
            }
            binds.append((initBinary, "/sbin/docker-init", true))
            args = ["/sbin/docker-init", "--"] + args
        }
        var spec = RuntimeSpec.make(rootfs: rootfs, args: args, env: env, cwd: c.workingDir ?? config?.WorkingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/",
                                user: user, hostname: c.effectiveHostname, hostNetwork: onHostNetwork, binds: binds,
                                tmpfs: c.tmpfs ?? [], shmSize: c.shmSize,
                                terminal: c.tty == true, readOnlyRootfs: c.readOnlyRootfs == true)
        if var linux = spec["linux"] as? [String: Any] {
            if let r = c.resources { linux["resources"] = r.runtimeSpec() }
            // The host's PID or UTS namespace (--pid host, --uts host), a cgroup one of its own.
            var namespaces = linux["namespaces"] as? [[String: Any]] ?? []
            if c.hostPID == true { namespaces.removeAll { $0["type"] as? String == "pid" } }
            if c.hostUTS == true {
                namespaces.removeAll { $0["type"] as? String == "uts" }
                spec["hostname"] = nil  // runc sets none without a UTS namespace of its own
            }
            if c.usesPrivateCgroupNamespace { namespaces.append(["type": "cgroup"]) }
            linux["namespaces"] = namespaces
            // Bind propagation (`-v /src:/dst:rshared`), as dockerd applies it: the source's
            // mount must propagate so, and the root follows (shared, else rslave).
            var mounts = spec["mounts"] as? [[String: Any]] ?? []
            for v in c.volumes ?? [] where v.isBind {
                guard let p = v.propagation, !p.hasSuffix("private") else { continue }
                try Self.requirePropagation(of: v.source, shared: p.hasSuffix("shared"))
                for i in mounts.indices where mounts[i]["destination"] as? String == v.destination && mounts[i]["type"] as? String == "bind" {
                    mounts[i]["options"] = (mounts[i]["options"] as? [String] ?? []).filter { $0 != "rprivate" } + [p]
                }
                let root = linux["rootfsPropagation"] as? String ?? ""
                if p.hasSuffix("shared") {
                    linux["rootfsPropagation"] = "shared"
                } else if !root.hasSuffix("shared") {
                    linux["rootfsPropagation"] = "rslave"
                }
            }
            spec["mounts"] = mounts
            spec["linux"] = linux
        }
        return spec
    }

    func setState(_ id: String, _ state: String) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE containers SET state = ?, config = json_set(config, '$.state', ?) WHERE id = ?", arguments: [state, state, id])
        }
    }
}
