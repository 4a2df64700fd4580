import ArgumentParser
import Foundation
import Strata

extension SnapshotterKind: ExpressibleByArgument {}

/// Options `create` and `run` share.
struct ContainerFlags: ParsableArguments {
    @Option(help: "Name the container.")
    var name: String?
    @Option(name: .shortAndLong, help: "Set an environment variable (KEY=VALUE).")
    var env: [String] = []
    @Option(name: .shortAndLong, help: "Working directory inside the container.")
    var workdir: String?
    @Option(help: "overlay or copy (default: the store's setting, else overlay when available).")
    var snapshotter: SnapshotterKind?
    @Option(name: .shortAndLong, help: "Mount a named volume, a host directory, or a new anonymous volume (NAME:/path, /host:/path, /path).")
    var volume: [String] = []
    @Option(name: .shortAndLong, help: "Set a label (KEY=VALUE, or KEY for an empty value); over the image's labels.")
    var label: [String] = []
    @Option(help: "Network: none (default: an empty network namespace of its own) or host (the host's, for every run).")
    var network: String = "none"
    @Option(name: [.customShort("p"), .customLong("publish")],
            help: "Publish a TCP port while the container runs: [IP:][HOSTPORT:]PORT (HOSTPORT 0 or none: a free one).")
    var publish: [String] = []
    @Option(name: .shortAndLong, help: "Run as this user over the image's USER: NAME, UID, NAME:GROUP or UID:GID.")
    var user: String?
    @Option(help: "The container's hostname (default: its short ID).")
    var hostname: String?
    @Flag(name: .customLong("read-only"), help: "Mount the root filesystem read-only (volumes and /tmp stay writable).")
    var readOnly = false
    @OptionGroup var limits: ResourceFlags
    @Option(help: "Mount a tmpfs (/path[:OPTIONS], as size=64m,mode=1777; noexec,nosuid,nodev unless told).")
    var tmpfs: [String] = []
    @Option(help: "Size of /dev/shm (64m; default 64MiB).")
    var shmSize: String?
    @Option(help: "The signal stop sends first (default: the image's STOPSIGNAL, else SIGTERM).")
    var stopSignal: String?
    @Option(parsing: .unconditional, help: "Seconds stop waits before SIGKILL (-1: without end; default 10).")
    var stopTimeout: Int?
    @Flag(help: "Run the command under an init (tini) that reaps zombies and passes signals on.")
    var `init` = false
    @Option(help: "Mount the volumes and binds of another container (CONTAINER[:ro|:rw]).")
    var volumesFrom: [String] = []
    @Option(help: "Add a group for the process (a name in the container's /etc/group, or a number).")
    var groupAdd: [String] = []
    @Option(help: "PID namespace: private (default) or host.")
    var pid: String?
    @Option(help: "UTS namespace (hostname): private (default) or host.")
    var uts: String?
    @Option(help: "Cgroup namespace: private or host (default: private on cgroup v2, host on v1).")
    var cgroupns: String?
    @Option(help: "json-file or local (default: the log is kept) or none (nothing kept).")
    var logDriver: String?
    @Option(help: "A log option: max-size=SIZE (10m: rotate after 10 MB), max-file=N (files kept).")
    var logOpt: [String] = []
    @Option(parsing: .unconditional, help: "How readily its memory is swapped out, 0 to 100 (cgroup v1; default: the kernel's).")
    var memorySwappiness: Int64?
    @Option(help: "A command whose exit status tells the container's health (run by /bin/sh -c in the container).")
    var healthCmd: String?
    @Option(help: "Time between health checks and before the first (30s, 1m30s; default 30s).")
    var healthInterval: String?
    @Option(help: "Time one health check may take (default 30s).")
    var healthTimeout: String?
    @Option(help: "Time after the start when failing checks do not count yet (default 0s).")
    var healthStartPeriod: String?
    @Option(help: "Failing checks in a row that make the container unhealthy (default 3).")
    var healthRetries: Int?
    @Flag(help: "Turn off the image's HEALTHCHECK.")
    var noHealthcheck = false

    func options(command: [String]) throws -> ContainerOptions {
        guard let net = ContainerNetwork(rawValue: network) else {
            throw StrataError(.invalidArgument, "invalid --network \"\(network)\": use none or host")
        }
        var o = ContainerOptions(name: name, command: command, env: env, workingDir: workdir, snapshotter: snapshotter,
                                 volumes: try volume.map { try VolumeMount(parsing: $0) })
        o.hostNetwork = net == .host
        o.ports = try publish.map { try PublishedPort(parsing: $0) }
        o.user = user
        o.hostname = hostname
        o.readOnlyRootfs = readOnly
        o.stopSignal = stopSignal
        o.resources = try limits.resources()
        if let s = memorySwappiness {
            if ContainerInfo.cgroupV2 { FileHandle.standardError.write(Data("WARNING: \(ContainerResources.swappinessDiscarded)\n".utf8)) } else { o.resources.memorySwappiness = s }
        }
        o.stopTimeout = stopTimeout
        o.tmpfs = try tmpfs.map { try TmpfsMount(parsing: $0) }
        o.shmSize = try shmSize.map { try ByteSizes.memory($0, flag: "--shm-size") }
        o.labels = try Self.labels(label)
        o.groupAdd = groupAdd
        o.volumesFrom = volumesFrom
        o.initProcess = `init`
        o.hostPID = try Self.hostMode(pid, flag: "--pid")
        o.hostUTS = try Self.hostMode(uts, flag: "--uts")
        if let c = cgroupns {
            guard c == "private" || c == "host" else { throw StrataError(.invalidArgument, "invalid --cgroupns \"\(c)\": use private or host") }
            o.privateCgroupNamespace = c == "private"
        }
        o.logDriver = logDriver
        for opt in logOpt {
            let kv = opt.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, !kv[0].isEmpty else { throw StrataError(.invalidArgument, "invalid --log-opt \"\(opt)\": use KEY=VALUE") }
            o.logOptions[String(kv[0])] = String(kv[1])
        }
        o.healthcheck = try healthcheck()
        return o
    }

    /// The `--health-*` flags as the docker CLI reads them: a command runs through the
    /// shell; a setting alone keeps the image's test.
    func healthcheck() throws -> Healthcheck? {
        let durations = [healthInterval, healthTimeout, healthStartPeriod]
        if noHealthcheck {
            guard healthCmd == nil, durations.allSatisfy({ $0 == nil }), healthRetries == nil else {
                throw StrataError(.invalidArgument, "--no-healthcheck conflicts with --health-* options")
            }
            return Healthcheck(Test: ["NONE"])
        }
        guard healthCmd != nil || durations.contains(where: { $0 != nil }) || healthRetries != nil else { return nil }
        return Healthcheck(Test: healthCmd.map { ["CMD-SHELL", $0] }, Interval: try healthInterval.map(Healthcheck.parseDuration),
                           Timeout: try healthTimeout.map(Healthcheck.parseDuration),
                           StartPeriod: try healthStartPeriod.map(Healthcheck.parseDuration), Retries: healthRetries)
    }

    /// `--pid`/`--uts`: private (or empty) or host.
    static func hostMode(_ value: String?, flag: String) throws -> Bool {
        switch value {
        case nil, "", "private": return false
        case "host": return true
        case let v?: throw StrataError(.invalidArgument, "invalid \(flag) \"\(v)\": use private or host")
        }
    }

    /// `--label KEY=VALUE` (or `KEY` for an empty value) flags as a map; the last one given wins.
    static func labels(_ given: [String]) throws -> [String: String] {
        var labels: [String: String] = [:]
        for l in given {
            let kv = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = kv.first, !key.isEmpty else { throw StrataError(.invalidArgument, "invalid label \"\(l)\": use KEY=VALUE") }
            labels[String(key)] = kv.count > 1 ? String(kv[1]) : ""
        }
        return labels
    }
}

struct CreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a container (a writable layer over an image) and print its ID.",
        discussion: """
            Examples:
              strata create --name web busybox sh
              strata create --snapshotter copy -e A=1 -w /tmp app:1
              strata create --network host --name web app:1 httpd -f -p 8080
              strata create -u nobody --hostname web --read-only app:1
              strata create --memory 256m --cpus 0.5 --pids-limit 100 app:1
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: ContainerFlags
    @Argument var image: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() async throws {
        let options = try flags.options(command: command)
        let store = try await global.openStore()
        let c = try await store.createContainer(from: image, options: options)
        print(c.id)
    }
}

struct PsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List containers.",
        discussion: """
            Every container is listed, stopped ones too (as `docker ps -a`). \
            Filters are docker's `ps --filter`: id=ID, name=NAME, status=STATE, exited=CODE, \
            ancestor=IMAGE (and images built on it), before=CONTAINER, since=CONTAINER, \
            volume=NAME|PATH, health, is-task, label, network, publish, expose. \
            Values of one key are alternatives; different keys must all match; \
            id and name also take an unanchored regular expression.

            Examples:
              strata ps
              strata ps --filter status=exited --filter exited=0
              strata ps --filter ancestor=busybox -q
              strata ps --filter name='^web' --format json
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Show all containers (every container is listed; kept for Docker compatibility).")
    var all = false
    @Flag(name: .shortAndLong, help: "Only show container IDs.")
    var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false
    @Flag(name: .shortAndLong, help: "Display the writable layer's size (and the image's: virtual).")
    var size = false
    @Option(name: .shortAndLong, help: "Filter output (key=value, repeatable).")
    var filter: [String] = []
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table

    func run() async throws {
        let filters = try ContainerFilters(try FilterOption.byKey(filter))
        let store = try await global.openStore()
        try await store.recoverInterruptedRuns()
        let list = try await store.containers(filters: filters)
        if format == .json { print(try Output.json(list)); return }
        if quiet { for c in list { print(noTrunc ? c.id : String(c.id.prefix(12))) }; return }
        let now = Date()
        var rows: [[String]] = []
        for c in list {
            let cmd = c.command.joined(separator: " ")
            var row = [noTrunc ? c.id : String(c.id.prefix(12)), c.image, "\"" + (noTrunc ? cmd : Units.ellipsis(cmd, 20)) + "\"",
                       Units.ago(c.created, now: now), c.status(now: now), c.name ?? ""]
            if size {
                let s = try await store.containerSize(c.id)
                row.append("\(Units.size(s.writable)) (virtual \(Units.size(s.virtual)))")
            }
            rows.append(row)
        }
        var header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]
        if size { header.append("SIZE") }
        print(Output.table(header, rows), terminator: "")
    }
}

struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount", abstract: "Mount a container's root filesystem and print its path.",
        discussion: """
            Without root, an overlay container's mount lives in strata's user namespace: mount it \
            inside `strata unshare`, as with `podman unshare` (a copy container needs no mount).

            Examples:
              strata mount c
              strata unshare sh -c 'ls "$(strata mount c)"'    # without root
            """)
    @OptionGroup var global: GlobalOptions
    @Argument var container: String

    func run() async throws {
        let store = try await global.openStore()
        let c = try await store.container(container)
        // podman's rootless rule: the path would name an empty directory once this process is gone.
        if c.snapshotter == .overlay, !UserNamespace.mountsOutliveProcess() {
            throw StrataError(.notSupported, "without root an overlay mount ends with the strata process that made it: "
                + "run `strata unshare` and mount inside it (strata unshare sh -c 'ls \"$(strata mount \(container))\"'), "
                + "or create the container with --snapshotter copy")
        }
        print(try await store.mountContainer(container))
    }
}

struct UnmountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unmount", abstract: "Unmount a container's root filesystem.", aliases: ["umount"])
    @OptionGroup var global: GlobalOptions
    @Argument var container: String

    func run() async throws {
        let store = try await global.openStore()
        try await store.unmountContainer(container)
    }
}

struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "List the paths a container added (A), changed (C) or deleted (D).",
        discussion: "Example:\n  strata diff web")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table
    @Argument var container: String

    func run() async throws {
        let store = try await global.openStore()
        let changes = try await store.changes(in: container)
        if format == .json { print(try Output.json(changes)); return }
        for c in changes { print("\(c.kind.rawValue) \(RawName.escaped(c.path))") }
    }
}

struct CommitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Create a new image from a container's changes.",
        discussion: """
            Examples:
              strata commit web app:2
              strata commit -m "add config" -a "Ada <ada@example.com>" -c 'CMD ["/bin/sh"]' -c 'ENV MODE=prod' web app:3
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Commit message.")
    var message: String?
    @Option(name: .shortAndLong, help: "Author.")
    var author: String?
    @Option(name: [.customShort("p"), .long], help: "Pause a running container while its layer is read (true or false).")
    var pause = true
    @Option(name: [.customShort("c"), .long], help: "Apply a Dockerfile instruction to the image config.")
    var change: [String] = []
    @Argument var container: String
    @Argument var reference: String?

    func run() async throws {
        if let reference { _ = try Reference(reference) }
        let store = try await global.openStore()
        let edits = try await commitEdits(change, container: container, store: store)
        let image = try await store.commit(container, options: CommitOptions(message: message, author: author, edits: edits, reference: reference, pause: pause))
        print(image.id)
    }
}

struct RmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove containers: the writable layer and its changes are gone unless committed.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Kill a running container first (SIGKILL), then remove it.")
    var force = false
    @Flag(name: .shortAndLong, help: "Remove the anonymous volumes it used that no other container uses (named ones stay).")
    var volumes = false
    @Argument var containers: [String]

    func validate() throws {
        guard !containers.isEmpty else { throw ValidationError("rm needs at least one container") }
    }

    func run() async throws {
        let store = try await global.openStore()
        try await Output.eachContainer(containers) { c in
            _ = try await store.removeContainer(c, force: force, removeVolumes: volumes)
        }
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Create a container, run its command through runc, and exit with its status.",
        discussion: """
            The image's USER is resolved in its own /etc/passwd and /etc/group; a user or \
            group they do not list is an error before the command starts.

            Examples:
              strata run --rm busybox echo hello
              strata run --name job -e MODE=test -w /tmp app:1 sh -c 'ls; exit 3'
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: ContainerFlags
    @Flag(help: "Remove the container when it exits.")
    var rm = false
    @Argument var image: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() async throws {
        let options = try flags.options(command: command)
        let store = try await global.openStore()
        let status = try await store.run(image, options: RunOptions(container: options), remove: rm)
        if status != 0 { throw CommandFailed(status: status) }
    }
}

struct CpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Copy files between a container and the host.",
        discussion: """
            Paths inside the container are resolved in its root: symlinks cannot lead out.
            A `-` for the host side is a tar stream, as with docker cp: `CONTAINER:PATH -`
            writes a tar of PATH to standard output; `- CONTAINER:DIR` extracts a tar
            (plain or compressed) from standard input into the directory DIR, refusing
            entries that climb out of it.

            Examples:
              strata cp ./app.conf web:/etc/app.conf
              strata cp web:/var/log ./logs
              strata cp web:/etc - | tar -t
              tar -c conf | strata cp - web:/etc
            """)
    @OptionGroup var global: GlobalOptions
    @Argument var source: String
    @Argument var destination: String

    func run() async throws {
        let store = try await global.openStore()
        func split(_ s: String) -> (String, String)? {
            guard !s.hasPrefix("/"), !s.hasPrefix("."), let colon = s.firstIndex(of: ":") else { return nil }
            return (String(s[..<colon]), String(s[s.index(after: colon)...]))
        }
        switch (split(source), split(destination)) {
        case (nil, let (c, p)?) where source == "-":
            try await store.extractArchive(URL(fileURLWithPath: "/dev/stdin"), intoContainer: c, at: p)
        case (let (c, p)?, nil) where destination == "-":
            _ = try await store.archive(fromContainer: c, path: p, to: URL(fileURLWithPath: "/dev/stdout"))
        case (nil, let (c, p)?): try await store.copy(intoContainer: c, from: source, to: p)
        case (let (c, p)?, nil): try await store.copy(fromContainer: c, path: p, to: destination)
        default: throw StrataError(.invalidArgument, "one of SRC and DST must be CONTAINER:PATH and the other a host path")
        }
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show or change store settings (snapshotter, devices).",
        discussion: """
            Settings:
              snapshotter  overlay, copy or default: how containers get their root filesystem.
              devices      refuse (the default) or allow: whether layers may create character
                           and block devices. Docker allows them; strata refuses them because once
                           a device node exists on disk, only the runtime's device cgroup stands
                           between it and the host. The 0/0 character device (an overlay whiteout)
                           is always accepted.

            Examples:
              strata config                      # every setting, and where its value comes from
              strata config snapshotter          # prints the default snapshotter
              strata config snapshotter copy     # containers use the copy snapshotter unless --snapshotter says otherwise
              strata config snapshotter default  # back to overlay when available
              strata config devices allow        # unpack device nodes as Docker does
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The setting: snapshotter or devices; none lists every setting and why it has its value.") var key: String?
    @Argument(help: "A new value (snapshotter: overlay, copy or default; devices: allow or refuse).") var value: String?

    func run() async throws {
        guard let key else {
            let store = try await global.openStore()
            let set = try await store.snapshotterSetting()
            let kind = try await store.defaultSnapshotter()
            let why = set != nil ? "set for this store" : UserNamespace.isNested
                ? (kind == .overlay ? "default: overlay with userxattr in the user namespace" : "default: overlay cannot be mounted in this user namespace")
                : (kind == .overlay ? "default" : "default: overlay cannot be mounted here")
            print("snapshotter  \(kind.rawValue)  (\(why))")
            print("devices      \(try await store.deviceNodesAllowed() ? "allow" : "refuse")")
            return
        }
        switch key {
        case "snapshotter":
            let store = try await global.openStore()
            if let value {
                if value == "default" {
                    try await store.setDefaultSnapshotter(nil)
                } else if let k = SnapshotterKind(rawValue: value) {
                    try await store.setDefaultSnapshotter(k)
                } else {
                    throw StrataError(.invalidArgument, "invalid snapshotter \"\(value)\": use overlay, copy or default")
                }
            }
            print(try await store.defaultSnapshotter().rawValue)
        case "devices":
            if let value, value != "allow", value != "refuse" {
                throw StrataError(.invalidArgument, "invalid value \"\(value)\" for devices: use allow or refuse")
            }
            let store = try await global.openStore()
            if let value { try await store.setDeviceNodesAllowed(value == "allow") }
            print(try await store.deviceNodesAllowed() ? "allow" : "refuse")
        default:
            throw StrataError(.invalidArgument, "unknown setting \"\(key)\": the settings are: snapshotter, devices")
        }
    }
}
