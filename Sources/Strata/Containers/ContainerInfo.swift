import Foundation
import OCI

/// A container: a writable layer over an image.
public struct ContainerInfo: Sendable, Codable, Hashable {
    public var id: String
    public var name: String?
    public var imageID: Digest
    /// The image reference the container was created from, as given.
    public var image: String
    public var command: [String]
    public var env: [String]
    public var workingDir: String?
    public var snapshotter: SnapshotterKind
    public var state: String
    public var created: Date
    public var volumes: [VolumeMount]?
    /// The ENTRYPOINT given at create, replacing the image's.
    public var entrypoint: [String]?
    /// Removed once its command exits.
    public var autoRemove: Bool?
    /// The last run's exit status (128 + signal when a signal ended it); nil before the first run.
    public var exitCode: Int32?
    /// When the last run started and ended.
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Created to read a stdin (``ContainerOptions/openStdin``); nil for false.
    public var openStdin: Bool?
    /// A run's stdin outlives the attaches that feed it (``ContainerOptions/keepsStdinOpen``,
    /// `docker run -d -i`); nil for false, as for every container created before it was recorded.
    public var keepsStdinOpen: Bool?
    /// Runs on a terminal (``ContainerOptions/tty``); nil for false.
    public var tty: Bool?
    /// Its running process is frozen (``Store/pause(_:)``); nil for false. The run goes on:
    /// ``state`` stays `running`.
    public var paused: Bool?
    /// Its labels, as dockerd gives a container: the image's at create, then those
    /// ``ContainerOptions/labels`` gave over them; nil for none (and for a container created
    /// before labels were recorded).
    public var labels: [String: String]?
    /// Runs in the host's network namespace (``ContainerOptions/hostNetwork``); nil for false,
    /// its own empty one.
    public var hostNetwork: Bool?
    /// The ports to publish (``ContainerOptions/ports``), as asked; nil for none.
    public var ports: [PublishedPort]?
    /// The ports its current run published, with the host ports the system chose for 0;
    /// nil when it is not running.
    public var publishedPorts: [PublishedPort]?
    /// Its exposed ports (`80/tcp`), as dockerd gives a container: the image's, those given
    /// at create, and those it publishes; nil for none.
    public var exposedPorts: [String]?
    /// The user given at create (``ContainerOptions/user``); nil for the image's USER.
    public var user: String?
    /// The hostname given at create (``ContainerOptions/hostname``); nil for its short ID.
    public var hostname: String?
    /// Runs with a read-only root filesystem (``ContainerOptions/readOnlyRootfs``); nil for false.
    public var readOnlyRootfs: Bool?
    /// The stop signal given at create (``ContainerOptions/stopSignal``); nil for the image's.
    public var stopSignal: String?
    /// The stop timeout given at create, in seconds (``ContainerOptions/stopTimeout``); nil for 10.
    public var stopTimeout: Int?
    /// Its limits (``ContainerOptions/resources``), as dockerd records them (the default swap
    /// filled in); nil for none.
    public var resources: ContainerResources?
    /// Its tmpfs mounts (``ContainerOptions/tmpfs``); nil for none.
    public var tmpfs: [TmpfsMount]?
    /// The size of its /dev/shm (``ContainerOptions/shmSize``); nil for 64 MiB.
    public var shmSize: Int64?
    /// Its added groups (``ContainerOptions/groupAdd``); nil for none.
    public var groupAdd: [String]?
    /// Whether it shares the host's PID namespace (``ContainerOptions/hostPID``).
    public var hostPID: Bool?
    /// Whether it shares the host's UTS namespace (``ContainerOptions/hostUTS``).
    public var hostUTS: Bool?
    /// ``ContainerOptions/privateCgroupNamespace`` as given.
    public var privateCgroupNamespace: Bool?
    /// Its log driver (``ContainerOptions/logDriver``); nil for json-file.
    public var logDriver: String?
    /// Its isolation as given (``ContainerOptions/isolation``): `default` or nil.
    public var isolation: String?
    /// Its `--log-opt`s as given (``ContainerOptions/logOptions``).
    public var logOptions: [String: String]?
    /// When its log is rotated (from ``logOptions`` and the driver); nil: never.
    public var logRotation: LogRotation?
    /// The containers it took volumes from, as given (``ContainerOptions/volumesFrom``).
    public var volumesFrom: [String]?
    /// ``ContainerOptions/volumeDriver`` as given.
    public var volumeDriver: String?
    /// Whether it runs under an init (``ContainerOptions/initProcess``).
    public var initProcess: Bool?

    /// The init `--init` runs, found on the host: dockerd's docker-init, else Debian's
    /// tini-static (both tini, linked statically so that any image can run it).
    public static var initBinary: String? {
        ["/usr/bin/docker-init", "/usr/libexec/docker/docker-init", "/usr/local/bin/docker-init", "/usr/bin/tini-static"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Its restart policy (``ContainerOptions/restartPolicy``); nil for `no`.
    public var restartPolicy: RestartPolicy?
    /// How many times its policy started it again since it was last started by hand.
    public var restartCount: Int?
    /// Stopped or killed by hand since its last start: its policy does not start it again
    /// (but `always` does when the server starts, as dockerd's).
    public var manuallyStopped: Bool?
    /// The health check given at create (``ContainerOptions/healthcheck``); the image's
    /// fills what it leaves unset (``effectiveHealthcheck(image:)``).
    public var healthcheck: Healthcheck?
    /// What its health checks found (dockerd's `State.Health`); nil until a run with a
    /// check starts.
    public var health: HealthState?

    /// The health check its runs get, as dockerd merges the image's in; nil for none
    /// (none given, or `NONE`).
    public func effectiveHealthcheck(image: ContainerConfig?) -> Healthcheck? {
        let merged = Healthcheck.merged(container: healthcheck, image: Healthcheck(image?.Healthcheck))
        return merged?.probeCommand == nil ? nil : merged
    }

    /// Whether its runs get a cgroup namespace of their own: as asked, else dockerd's default
    /// for the host (private on cgroup v2).
    public var usesPrivateCgroupNamespace: Bool { privateCgroupNamespace ?? ContainerInfo.cgroupV2 }

    /// Whether the host runs the unified cgroup hierarchy (cgroup v2) only.
    public static let cgroupV2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")

    /// Whether it keeps a log (``ContainerOptions/logDriver`` is not `none`).
    public var keepsLog: Bool { logDriver != "none" }

    /// Its hostname inside its runs: the one given at create, else its short ID, as dockerd's.
    public var effectiveHostname: String { hostname ?? String(id.prefix(12)) }

    /// The state as Docker names it: ``state``, or `paused` for a frozen run.
    public var dockerState: String { state == "running" && paused == true ? "paused" : state }

    /// What its runs execute, as dockerd merges the image's config in: the ENTRYPOINT given
    /// at create (or else the image's) followed by the command given at create, or by the
    /// image's CMD when none was given. A new ENTRYPOINT drops the image's CMD; an empty one
    /// (`--entrypoint ""`) drops the image's ENTRYPOINT and keeps its CMD. Empty when there is
    /// nothing to run.
    public func effectiveCommand(image: ContainerConfig?) -> [String] {
        Self.effectiveCommand(entrypoint: entrypoint, command: command, image: image)
    }

    /// ``effectiveCommand(image:)`` for an ENTRYPOINT and command not yet in a container
    /// (``ContainerOptions/entrypoint``, ``ContainerOptions/command``).
    public static func effectiveCommand(entrypoint: [String]?, command: [String], image: ContainerConfig?) -> [String] {
        if let entrypoint, !entrypoint.isEmpty { return entrypoint + command }
        let cmd = command.isEmpty ? image?.Cmd ?? [] : command
        return entrypoint == nil ? (image?.Entrypoint ?? []) + cmd : cmd
    }
}
