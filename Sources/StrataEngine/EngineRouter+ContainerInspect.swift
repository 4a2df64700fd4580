import Foundation
import OCI
import Strata

/// `GET /containers/{id}/json`: dockerd's container object for API 1.43, every key it sends.
///
/// What strata knows comes from the container's row (command, env, state, times, volumes,
/// terminal and stdin settings) and, for a live run, the runtime (`State.Pid`). What strata
/// does not do has dockerd's value for "not set": no address (`NetworkMode` `none`, or
/// `host` for a container on the host's network; the ports a run published are in
/// `NetworkSettings.Ports`), no restart policy (`no`), no resource limits (0), no labels from SELinux or
/// AppArmor. `LogPath` is empty: the log file is strata's own frame format, not json-file
/// lines for a log shipper to read.
extension EngineRouter {
    func inspectContainer(_ ref: String, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        try await store.recoverInterruptedRuns()
        let c = try await store.container(ref)
        let pid = c.state == "running" ? (try? await store.mainPID(c.id)) ?? nil : nil
        let image = (try? ImageConfig.decode(try await store.imageConfigData(c.imageID), digest: c.imageID))?.config
        try await res.sendJSON(Self.containerJSON(c, pid: pid, mounts: mounts(c), image: image, restarting: await runner.isRestarting(c.id)))
    }

    /// The container object. `Config` is the container's settings with its image's config
    /// merged in, as dockerd merges them at create (moby's `merge`): the environment given,
    /// then each of the image's variables not given; the image's CMD when neither a command
    /// nor an ENTRYPOINT was given, its ENTRYPOINT when none was given; its USER, WORKDIR,
    /// STOPSIGNAL and VOLUMEs where the container has none. `Path` and `Args` are what runs.
    static func containerJSON(_ c: ContainerInfo, pid: Int?, mounts: [[String: Any]], image: ContainerConfig? = nil,
                              restarting: Bool = false) -> [String: Any] {
        let running = c.state == "running"
        let zero = "0001-01-01T00:00:00Z"
        let stdinOnce = c.openStdin == true && c.keepsStdinOpen != true
        let null = NSNull()
        // As dockerd: Binds are the -v SOURCE:/path mounts as given; the anonymous volumes'
        // paths (-v /path, the image's VOLUME) are Config.Volumes.
        let given = (c.volumes ?? []).filter { $0.anonymous != true }
        let binds: Any = given.isEmpty ? null : given.map { "\($0.source):\($0.destination)" + ($0.mode.map { ":" + $0 } ?? "") }
        let declared = Set((c.volumes ?? []).filter { $0.anonymous == true }.map(\.destination) + (image?.Volumes ?? []))
        let volumes: Any = declared.isEmpty ? null : Dictionary(uniqueKeysWithValues: declared.map { ($0, [String: Any]()) })
        let envKeys = Set(c.env.map { $0.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0] })
        let env = c.env + (image?.Env ?? []).filter { !envKeys.contains($0.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]) }
        let cmd = c.command.isEmpty && (c.entrypoint ?? []).isEmpty ? image?.Cmd ?? [] : c.command
        let entrypoint = c.entrypoint ?? image?.Entrypoint
        let runs = c.effectiveCommand(image: image)
        var config: [String: Any] = ["Hostname": c.effectiveHostname, "Domainname": "", "User": c.user ?? image?.User ?? "",
                   // The docker CLI sets StdinOnce exactly when it attaches stdin (-i without -d).
                   "AttachStdin": stdinOnce, "AttachStdout": false, "AttachStderr": false,
                   "Tty": c.tty ?? false, "OpenStdin": c.openStdin ?? false, "StdinOnce": stdinOnce,
                   "Env": env, "Cmd": cmd.isEmpty ? null : cmd, "Image": c.image, "Volumes": volumes,
                   "WorkingDir": c.workingDir ?? image?.WorkingDir ?? "",
                   "Entrypoint": entrypoint.map { $0 as Any } ?? null, "OnBuild": null, "Labels": c.labels ?? [:],
                   "ExposedPorts": c.exposedPorts.map { Dictionary(uniqueKeysWithValues: $0.map { ($0, [String: Any]()) }) as Any } ?? null]
        // As dockerd (omitempty): only when the container or its image sets them.
        if let s = c.stopSignal ?? image?.StopSignal, !s.isEmpty { config["StopSignal"] = s }
        if let t = c.stopTimeout { config["StopTimeout"] = t }
        if let check = Healthcheck.merged(container: c.healthcheck, image: Healthcheck(image?.Healthcheck)) {
            config["Healthcheck"] = healthcheckJSON(check)
        }
        var state: [String: Any] = ["Status": restarting ? "restarting" : c.dockerState, "Running": running, "Paused": c.paused == true,
                                    "Restarting": restarting, "OOMKilled": false,
                                    "Dead": false, "Pid": pid ?? 0, "ExitCode": Int(c.exitCode ?? 0), "Error": "",
                                    "StartedAt": c.startedAt.map(RFC3339.format) ?? zero, "FinishedAt": c.finishedAt.map(RFC3339.format) ?? zero]
        if let h = c.health {
            state["Health"] = ["Status": h.Status, "FailingStreak": h.FailingStreak,
                               "Log": h.Log.map { ["Start": RFC3339.format($0.Start), "End": RFC3339.format($0.End),
                                                   "ExitCode": $0.ExitCode, "Output": $0.Output] as [String: Any] }] as [String: Any]
        }
        return [
            "Id": c.id, "Created": RFC3339.format(c.created),
            "Path": runs.first ?? "", "Args": Array(runs.dropFirst()),
            "State": state,
            "Image": c.imageID.string,
            "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "", "LogPath": "",
            "Name": "/" + (c.name ?? String(c.id.prefix(12))), "RestartCount": c.restartCount ?? 0,
            "Driver": c.snapshotter.rawValue, "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": hostConfig(c, binds: binds),
            "GraphDriver": ["Data": null, "Name": c.snapshotter.rawValue] as [String: Any],
            "Mounts": mounts,
            "Config": config,
            "NetworkSettings": ["Bridge": "", "SandboxID": "", "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                                "Ports": publishedPorts(c), "SandboxKey": "", "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
                                "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
                                "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": endpoints(c)] as [String: Any],
        ]
    }

    /// A health check as dockerd shows it: only the fields set (Go's omitempty).
    static func healthcheckJSON(_ h: Healthcheck) -> [String: Any] {
        var o: [String: Any] = [:]
        if let t = h.Test, !t.isEmpty { o["Test"] = t }
        for (key, value) in [("Interval", h.Interval), ("Timeout", h.Timeout), ("StartPeriod", h.StartPeriod), ("StartInterval", h.StartInterval)] {
            if let v = value, v != 0 { o[key] = v }
        }
        if let r = h.Retries, r != 0 { o["Retries"] = r }
        return o
    }

    /// dockerd's HostConfig: what strata does (its network, binds and volumes, auto-remove, the
    /// log), and dockerd's "not set" for every limit and option it does not offer.
    private static func hostConfig(_ c: ContainerInfo, binds: Any) -> [String: Any] {
        let null = NSNull()
        var h: [String: Any] = [
            // `json-file`: the log can be read back through the API (docker logs, follow),
            // which is what clients infer from it (docker-py's containers.run reads the output
            // back only for json-file and journald); the file itself is Docker's frame format.
            "Binds": binds, "ContainerIDFile": "", "LogConfig": ["Type": c.logDriver ?? "json-file", "Config": c.logOptions ?? [:]] as [String: Any],
            "NetworkMode": c.network.name, "PortBindings": portBindings(c), "RestartPolicy": ["Name": c.restartPolicy?.name.rawValue ?? "no", "MaximumRetryCount": c.restartPolicy?.maximumRetryCount ?? 0] as [String: Any],
            "AutoRemove": c.autoRemove ?? false, "VolumeDriver": c.volumeDriver ?? "", "VolumesFrom": c.volumesFrom ?? null, "ConsoleSize": [0, 0],
            "CapAdd": null, "CapDrop": null, "CgroupnsMode": c.usesPrivateCgroupNamespace ? "private" : "host",
            "Dns": [String](), "DnsOptions": [String](), "DnsSearch": [String](),
            "ExtraHosts": null, "GroupAdd": c.groupAdd ?? null, "IpcMode": "private", "Cgroup": "", "Links": null, "OomScoreAdj": 0,
            "PidMode": c.hostPID == true ? "host" : "", "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": c.readOnlyRootfs == true,
            "SecurityOpt": null, "UTSMode": c.hostUTS == true ? "host" : "",
            "UsernsMode": "", "ShmSize": c.shmSize ?? 67_108_864, "Runtime": "runc", "Isolation": c.isolation ?? "", "MaskedPaths": null, "ReadonlyPaths": null,
            "CgroupParent": "", "BlkioWeightDevice": [Any](), "BlkioDeviceReadBps": [Any](), "BlkioDeviceWriteBps": [Any](),
            "BlkioDeviceReadIOps": [Any](), "BlkioDeviceWriteIOps": [Any](), "CpusetCpus": "", "CpusetMems": "", "Devices": [Any](),
            "DeviceCgroupRules": null, "DeviceRequests": null, "MemorySwappiness": null, "OomKillDisable": null, "PidsLimit": null,
            "Ulimits": null,
        ]
        // As dockerd (omitempty): only when given.
        if c.initProcess == true { h["Init"] = true }
        if let tmpfs = c.tmpfs { h["Tmpfs"] = Dictionary(tmpfs.map { ($0.destination, $0.options) }) { a, _ in a } }
        for zero in ["CpuShares", "Memory", "NanoCpus", "BlkioWeight", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime",
                     "MemoryReservation", "MemorySwap", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "KernelMemory",
                     "KernelMemoryTCP"] {
            h[zero] = 0
        }
        if let r = c.resources {
            for (key, value) in [("Memory", r.memory), ("MemorySwap", r.memorySwap), ("MemoryReservation", r.memoryReservation),
                                 ("NanoCpus", r.nanoCPUs), ("CpuShares", r.cpuShares), ("CpuPeriod", r.cpuPeriod), ("CpuQuota", r.cpuQuota)] {
                if let value { h[key] = value }
            }
            if let set = r.cpusetCPUs { h["CpusetCpus"] = set }
            if let p = r.pidsLimit { h["PidsLimit"] = p }
            if let s = r.memorySwappiness { h["MemorySwappiness"] = s }
        }
        return h
    }

    /// `NetworkSettings.Ports`: while it runs, each exposed port, with the host address and
    /// port its run bound for it or null, as dockerd's (`{"80/tcp": [{"HostIp": "0.0.0.0",
    /// "HostPort": "8080"}], "443/tcp": null}`); none when it is not running.
    static func publishedPorts(_ c: ContainerInfo) -> [String: Any] {
        guard c.state == "running", c.network == .none else { return [:] }
        var out: [String: Any] = [:]
        for key in c.exposedPorts ?? [] { out[key] = NSNull() }
        var bound: [String: [[String: String]]] = [:]
        for p in c.publishedPorts ?? [] {
            bound[p.key, default: []].append(["HostIp": p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP, "HostPort": String(p.hostPort)])
        }
        for (key, list) in bound { out[key] = list }
        return out
    }

    /// `HostConfig.PortBindings`: the ports as asked (a host port 0 is dockerd's "").
    private static func portBindings(_ c: ContainerInfo) -> [String: Any] {
        var out: [String: [[String: String]]] = [:]
        for p in c.ports ?? [] {
            out[p.key, default: []].append(["HostIp": p.hostIP, "HostPort": p.hostPort == 0 ? "" : String(p.hostPort)])
        }
        return out
    }
}
