import Foundation

/// Options for ``Store/createContainer(from:options:)``.
public struct ContainerOptions: Sendable, Codable {
    public var name: String?
    /// Command and arguments; empty means the image's entrypoint and command.
    public var command: [String] = []
    /// `KEY=VALUE` pairs added to the image's environment.
    public var env: [String] = []
    public var workingDir: String?
    public var snapshotter: SnapshotterKind?
    /// Named volumes (created when missing), host directories, and new anonymous volumes
    /// (``VolumeMount/init(anonymousAt:)``, `-v /path`) to mount. An empty volume gets what
    /// the image has at its path.
    public var volumes: [VolumeMount] = []
    /// Tmpfs mounts its runs get (`docker create --tmpfs`, ``TmpfsMount``).
    public var tmpfs: [TmpfsMount] = []
    /// The size of its /dev/shm in bytes (`docker create --shm-size`); nil or 0 for 64 MiB.
    public var shmSize: Int64?
    /// Each of the image's VOLUME paths that ``volumes`` does not cover gets a new anonymous
    /// volume, as under dockerd (true by default). A build step's container turns it off.
    public var imageVolumes = true
    /// The health check (`docker create --health-cmd …`, ``Healthcheck``): settings it leaves
    /// unset come from the image's HEALTHCHECK; `["NONE"]` turns the image's off.
    public var healthcheck: Healthcheck?
    /// Replaces the image's ENTRYPOINT (`docker create --entrypoint`); nil keeps it.
    public var entrypoint: [String]?
    /// Remove the container once its command exits (``Store/start(_:hostNetwork:output:started:)``).
    public var autoRemove = false
    /// The container's runs read a stdin their starter gives (``ContainerInput``,
    /// `docker create -i`); recorded so that clients know to attach one.
    public var openStdin = false
    /// With ``openStdin``: a run's stdin stays open when an attach that fed it ends, for the
    /// next attach (`docker run -d -i`, Docker's `StdinOnce` false). Without it the end of
    /// the attach's input is the end of the run's stdin (`docker run -i`, `StdinOnce` true).
    /// The library's ``Store/start(_:hostNetwork:input:terminal:output:started:)`` reads the
    /// ``ContainerInput`` it is given either way; this is recorded for servers that attach.
    public var keepsStdinOpen = false
    /// The container's runs get a terminal (``ContainerTerminal``, `docker create -t`).
    public var tty = false
    /// Labels given at create (`docker create --label`); they go over the image's own.
    public var labels: [String: String] = [:]
    /// Every run shares the host's network namespace (`docker create --network host`), instead
    /// of an empty one of its own.
    public var hostNetwork = false
    /// TCP ports published on the host while the container runs (`docker create -p`); none
    /// with ``hostNetwork``, where the container's ports are the host's.
    public var ports: [PublishedPort] = []
    /// Ports exposed beyond the image's (`docker create --expose 80/tcp`): `PORT/PROTO` keys.
    public var exposedPorts: [String] = []
    /// The user its runs start as, over the image's USER (`docker create -u`): `user`, `uid`,
    /// `user:group` or `uid:gid`, resolved in the container's /etc/passwd and /etc/group when
    /// a run starts (an unknown name fails the start, as under dockerd).
    public var user: String?
    /// Its hostname (`docker create --hostname`); nil for its short ID.
    public var hostname: String?
    /// Its runs see the root filesystem read-only (`docker create --read-only`); volumes and
    /// /tmp stay writable.
    public var readOnlyRootfs = false
    /// The signal `stop` sends first (`docker create --stop-signal`), over the image's
    /// STOPSIGNAL: a name such as SIGINT or a number.
    public var stopSignal: String?
    /// Seconds `stop` waits before SIGKILL when not told (`docker create --stop-timeout`);
    /// -1 waits without end. Nil: 10.
    public var stopTimeout: Int?
    /// Memory, CPU and process limits (``ContainerResources``); none by default.
    public var resources = ContainerResources()
    /// `--group-add`: more groups of the process, by name (in the container's /etc/group,
    /// resolved at each start) or by number.
    public var groupAdd: [String] = []
    /// `--pid host`: the host's PID namespace instead of one of its own.
    public var hostPID = false
    /// `--uts host`: the host's UTS namespace (its hostname) instead of one of its own.
    public var hostUTS = false
    /// `--cgroupns private`: a cgroup namespace of its own (its cgroup is its root). Nil:
    /// dockerd's default, private on a cgroup v2 host and the host's on cgroup v1.
    public var privateCgroupNamespace: Bool?
    /// `--log-driver`: `json-file` or `local` (nil too: the container's log is kept), or
    /// `none` (nothing is kept; `logs` is refused, as dockerd's).
    public var logDriver: String?
    /// `--isolation default`, the one isolation Linux has: kept so that inspect shows it as given.
    public var isolation: String?
    /// `--log-opt KEY=VALUE`: `max-size` and `max-file` rotate the log (``LogRotation``).
    public var logOptions: [String: String] = [:]
    /// `--volumes-from CONTAINER[:ro|:rw]`: that container's volumes and binds, at the same
    /// paths, read-only or read-write as given, else as it has them. A path ``volumes``
    /// mounts too is ``volumes``'s.
    public var volumesFrom: [String] = []
    /// `--volume-driver`: the driver named for the volumes it makes. Only `local` volumes
    /// exist; the name is kept for inspect (a create that makes a volume with another
    /// driver is refused by the engine, as dockerd refuses it without the plugin).
    public var volumeDriver: String?
    /// `--restart`: whether the container is started again when its process ends
    /// (``RestartPolicy``); nil for `no`. `strata serve` applies it to the runs it makes.
    public var restartPolicy: RestartPolicy?
    /// `--init`: the command runs under a small init as PID 1 (tini, as dockerd's
    /// docker-init), which reaps zombies and passes signals on; the init is bound read-only
    /// at /sbin/docker-init (``ContainerInfo/initBinary``).
    public var initProcess = false
    /// dockerd's init layer between the image and the writable layer (``Store/makeInitLayer(at:tmp:)``):
    /// what the runtime mounts over never shows in `diff` or a commit, and each run gets its
    /// own /etc/hostname, /etc/hosts and /etc/resolv.conf, as under dockerd. The Engine API's
    /// containers have it; by default (the `strata` CLI, build steps) a container's root is
    /// its image's layers and its own writable layer only.
    public var initLayer = false

    public init(name: String? = nil, command: [String] = [], env: [String] = [], workingDir: String? = nil,
                snapshotter: SnapshotterKind? = nil, volumes: [VolumeMount] = [], entrypoint: [String]? = nil, autoRemove: Bool = false,
                openStdin: Bool = false, keepsStdinOpen: Bool = false, tty: Bool = false) {
        self.openStdin = openStdin
        self.keepsStdinOpen = keepsStdinOpen
        self.tty = tty
        self.volumes = volumes
        self.entrypoint = entrypoint
        self.autoRemove = autoRemove
        self.name = name
        self.command = command
        self.env = env
        self.workingDir = workingDir
        self.snapshotter = snapshotter
    }
}
