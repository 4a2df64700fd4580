import Foundation
import NIOHTTP1
import OCI
import Strata

/// Creating containers: `docker create` and the first half of `docker run`. Every setting
/// of Docker's container config is either applied (the command, environment, user,
/// hostname, binds, volumes, `--volumes-from` and `--mount`s, tmpfs mounts and the /dev/shm
/// size, ports, network none or host, the host's PID or UTS namespace, a cgroup namespace,
/// added groups, the log driver (json-file, local, none) and its rotation, health checks, a read-only root, labels,
/// stdin and TTY, auto-remove, the stop signal and timeout, memory, CPU and process limits) or, when a request sets it to anything but its "not set"
/// value, refused with a 501 that names it (``unappliedSettings``): a container never runs
/// without a limit, capability or policy its creator asked for.
extension EngineRouter {
    /// `POST /containers/create?name=` with Docker's container config: 201 `{"Id", "Warnings"}`.
    func createContainer(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard case .data(let body) = req.body, let o = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EngineError.badRequest("expected a JSON object")
        }
        guard let image = o["Image"] as? String, !image.isEmpty else { throw EngineError.badRequest("config is missing the Image field") }
        try Self.checkName(image)
        var host = o["HostConfig"] as? [String: Any] ?? [:]
        var warnings: [String] = []
        // As dockerd on cgroup v2, which has no swappiness: the setting is dropped with its
        // warning (on v1 it is a limit as the others).
        if ContainerInfo.cgroupV2, let s = host["MemorySwappiness"] as? Int, s != -1 {
            warnings.append(ContainerResources.swappinessDiscarded)
            host["MemorySwappiness"] = nil
        }
        try Self.refuseUnappliedSettings(config: o, host: host)
        // `bridge` and `default` (what the docker CLI sends unless told) become `none`: strata
        // makes no bridge, so the container's own network namespace is empty.
        let mode = host["NetworkMode"] as? String ?? ""
        guard ["", "default", "bridge", "none", "host"].contains(mode) else {
            throw EngineError(status: .notImplemented, message: "strata runs containers on the none or host network only, not \"\(mode)\"")
        }
        var ports = try Self.portBindings(host["PortBindings"])
        if host["PublishAllPorts"] as? Bool == true {
            // -P: every exposed port (the request's and the image's) on a free host port.
            var exposed = Set((o["ExposedPorts"] as? [String: Any] ?? [:]).keys)
            exposed.formUnion(try await store.inspect(image).config.config?.ExposedPorts ?? [])
            for key in exposed.sorted() where !ports.contains(where: { $0.key == key }) {
                ports.append(try PublishedPort(parsing: key))
            }
        }
        if mode == "host", !ports.isEmpty {
            // As dockerd: on the host's network a container's ports are the host's.
            warnings.append("Published ports are discarded when using host network mode")
            ports = []
        }
        // -v SOURCE:/path[:MODE] comes as a bind; -v /path (a new anonymous volume) as a key
        // of Config.Volumes, where the image's VOLUME paths join it at create.
        var volumes = try (try Self.strings(host["Binds"], "HostConfig.Binds") ?? []).map { try VolumeMount(parsing: $0) }
        switch o["Volumes"] {
        case nil, is NSNull: break
        case let paths as [String: Any]:
            for path in paths.keys.sorted() {
                let m = try VolumeMount(parsing: path)
                guard m.anonymous == true, m.mode == nil else { throw EngineError.badRequest("Volumes keys must be paths in the container, not \"\(path)\"") }
                if !volumes.contains(where: { $0.destination == m.destination }) { volumes.append(m) }
            }
        default: throw EngineError.badRequest("Volumes must be an object")
        }
        var tmpfs = try (host["Tmpfs"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }.map { path, options in
            guard let options = options as? String else { throw EngineError.badRequest("HostConfig.Tmpfs values must be strings") }
            return try TmpfsMount(destination: path, options: options)
        }
        try Self.mounts(host["Mounts"], volumes: &volumes, tmpfs: &tmpfs)
        let name = req.string("name").flatMap { $0.isEmpty ? nil : $0 }
        let command = try Self.strings(o["Cmd"], "Cmd") ?? []
        var entrypoint = try Self.strings(o["Entrypoint"], "Entrypoint")
        if entrypoint == [""] {
            // `--entrypoint ""`: as dockerd, no ENTRYPOINT at all, and not the image's CMD either.
            guard !command.isEmpty else { throw EngineError.badRequest("No command specified") }
            entrypoint = []
        }
        var options = ContainerOptions(name: name, command: command, env: try Self.strings(o["Env"], "Env") ?? [],
                                       workingDir: (o["WorkingDir"] as? String).flatMap { $0.isEmpty ? nil : $0 }, volumes: volumes,
                                       entrypoint: entrypoint, autoRemove: host["AutoRemove"] as? Bool ?? false,
                                       openStdin: o["OpenStdin"] as? Bool ?? false,
                                       // Docker's StdinOnce (false when absent): `docker run -i` and
                                       // `docker create -i` set it, `docker run -d -i` does not.
                                       keepsStdinOpen: !(o["StdinOnce"] as? Bool ?? false), tty: o["Tty"] as? Bool ?? false)
        options.labels = try Self.labels(o["Labels"])
        options.healthcheck = try Self.healthcheck(o["Healthcheck"])
        switch host["Isolation"] {
        case nil, is NSNull: break
        case let i as String: options.isolation = i
        default: throw EngineError.badRequest("HostConfig.Isolation must be a string")
        }
        options.hostNetwork = mode == "host"
        options.ports = ports
        options.exposedPorts = (o["ExposedPorts"] as? [String: Any] ?? [:]).keys.sorted()
        options.user = try Self.string(o["User"], "User")
        options.hostname = try Self.string(o["Hostname"], "Hostname")
        options.readOnlyRootfs = host["ReadonlyRootfs"] as? Bool ?? false
        options.resources = try Self.resources(host)
        options.groupAdd = try Self.strings(host["GroupAdd"], "HostConfig.GroupAdd") ?? []
        options.volumesFrom = try Self.strings(host["VolumesFrom"], "HostConfig.VolumesFrom") ?? []
        try Self.namespaces(host, into: &options)
        if let log = host["LogConfig"] as? [String: Any] {
            if let type = log["Type"] as? String, !type.isEmpty { options.logDriver = type }
            switch log["Config"] {
            case nil, is NSNull: break
            case let opts as [String: Any]:
                options.logOptions = try opts.mapValues { v in
                    guard let s = v as? String else { throw EngineError.badRequest("HostConfig.LogConfig.Config values must be strings") }
                    return s
                }
            default: throw EngineError.badRequest("HostConfig.LogConfig.Config must be an object")
            }
        }
        // A volume driver other than local: as dockerd, an error only when a volume is to be
        // made (the image's VOLUMEs count), for want of the plugin.
        options.restartPolicy = try Self.restartPolicy(host["RestartPolicy"])
        options.initProcess = host["Init"] as? Bool ?? false
        // As dockerd: an init layer under the writable layer (diff and commit show only what
        // the process changed; /etc/hostname, hosts and resolv.conf are the container's own).
        options.initLayer = true
        options.volumeDriver = host["VolumeDriver"] as? String
        if let driver = options.volumeDriver, !["", "local"].contains(driver) {
            let imageVolumes = try await store.inspect(image).config.config?.Volumes ?? []
            if volumes.contains(where: { !$0.isBind }) || !imageVolumes.isEmpty {
                // (A 400, not dockerd's 404: on a 404 the docker CLI goes to pull the image.)
                throw EngineError.badRequest("error looking up volume plugin \(driver): plugin \"\(driver)\" not found")
            }
        }
        options.tmpfs = tmpfs
        options.shmSize = try Self.integer(host["ShmSize"], "HostConfig.ShmSize")
        options.stopSignal = try Self.string(o["StopSignal"], "StopSignal")
        switch o["StopTimeout"] {
        case nil, is NSNull: break
        case let n as Int: options.stopTimeout = n
        default: throw EngineError.badRequest("StopTimeout must be a number of seconds")
        }
        // As dockerd (mergeAndVerifyConfig): nothing to run is refused at create, not at start.
        let imageID = try await store.resolve(image)
        let imageConfig = try ImageConfig.decode(try await store.imageConfigData(imageID), digest: imageID).config
        if ContainerInfo.effectiveCommand(entrypoint: options.entrypoint, command: options.command, image: imageConfig).isEmpty {
            throw EngineError.badRequest("No command specified")
        }
        let c = try await store.createContainer(from: image, options: options)
        // docker sends its window's size ([height, width]) when the client is a terminal.
        if options.tty, let size = host["ConsoleSize"] as? [Int], size.count == 2,
           let rows = UInt16(exactly: size[0]), let columns = UInt16(exactly: size[1]), rows > 0, columns > 0 {
            await runner.setConsoleSize(c.id, rows: rows, columns: columns)
        }
        try await res.sendJSON(["Id": c.id, "Warnings": warnings] as [String: Any], status: .created)
    }

    /// `HostConfig.Mounts` (`docker run --mount`): a `bind` (its source must exist, as
    /// dockerd's), a `volume` (named, or anonymous without a source) or a `tmpfs`, each
    /// read-only when asked. Other types and options strata cannot apply are refused by name.
    static func mounts(_ value: Any?, volumes: inout [VolumeMount], tmpfs: inout [TmpfsMount]) throws {
        guard let value, !(value is NSNull) else { return }
        guard let list = value as? [[String: Any]] else { throw EngineError.badRequest("HostConfig.Mounts must be a list of objects") }
        for m in list {
            let type = m["Type"] as? String ?? ""
            guard let target = m["Target"] as? String, !target.isEmpty else { throw EngineError.badRequest("a mount needs a Target") }
            guard target.hasPrefix("/") else { throw EngineError.badRequest("invalid mount config: mount path must be absolute: '\(target)'") }
            let source = m["Source"] as? String ?? ""
            let readOnly = m["ReadOnly"] as? Bool ?? false
            switch type {
            case "bind":
                let options = m["BindOptions"] as? [String: Any] ?? [:]
                let propagation = options["Propagation"] as? String ?? ""
                guard propagation.isEmpty || VolumeMount.propagationWords.contains(Substring(propagation)) else {
                    throw EngineError.badRequest("invalid mount config for type \"bind\": invalid propagation mode: \(propagation)")
                }
                if options["NonRecursive"] as? Bool == true { throw EngineError(status: .notImplemented, message: "strata does not apply bind-nonrecursive") }
                guard source.hasPrefix("/") else { throw EngineError.badRequest("invalid mount config for type \"bind\": invalid mount path: '\(source)' mount path must be absolute") }
                guard FileMeta.of(source) != nil else {
                    throw EngineError.badRequest("invalid mount config for type \"bind\": bind source path does not exist: \(source)")
                }
                let mode = [readOnly ? "ro" : nil, propagation.isEmpty ? nil : propagation].compactMap { $0 }.joined(separator: ",")
                volumes.append(try VolumeMount(source: source, destination: target, mode: mode.isEmpty ? nil : mode))
            case "volume":
                let options = m["VolumeOptions"] as? [String: Any] ?? [:]
                if let driver = options["DriverConfig"] as? [String: Any], let name = driver["Name"] as? String, !["", "local"].contains(name) {
                    throw EngineError(status: .notImplemented, message: "strata serves the local volume driver only")
                }
                if let sub = options["Subpath"] as? String, !sub.isEmpty { throw EngineError(status: .notImplemented, message: "strata does not apply volume-subpath") }
                let mode = [readOnly ? "ro" : nil, options["NoCopy"] as? Bool == true ? "nocopy" : nil].compactMap { $0 }.joined(separator: ",")
                guard !source.hasPrefix("/") else { throw EngineError.badRequest("invalid mount config for type \"volume\": invalid volume name \"\(source)\"") }
                volumes.append(try VolumeMount(source: source, destination: target, mode: mode.isEmpty ? nil : mode))
            case "tmpfs":
                let options = m["TmpfsOptions"] as? [String: Any] ?? [:]
                var given: [String] = readOnly ? ["ro"] : []
                if let size = options["SizeBytes"] as? Int, size > 0 { given.append("size=\(size)") }
                if let mode = options["Mode"] as? Int, mode > 0 { given.append("mode=" + String(mode, radix: 8)) }
                tmpfs.append(try TmpfsMount(destination: target, options: given.joined(separator: ",")))
            default:
                throw EngineError(status: .notImplemented, message: "strata does not serve mounts of type \"\(type)\": use bind, volume or tmpfs")
            }
        }
    }

    /// An integer of a HostConfig: nil when absent or null.
    static func integer(_ value: Any?, _ key: String) throws -> Int64? {
        switch value {
        case nil, is NSNull: return nil
        case let n as NSNumber where n.doubleValue == n.doubleValue.rounded():
            guard let v = Int64(exactly: n.doubleValue) else { throw EngineError.badRequest("\(key) is out of range") }
            return v
        default: throw EngineError.badRequest("\(key) must be an integer")
        }
    }

    /// The limits of a HostConfig (``ContainerResources``); the store checks them.
    static func resources(_ host: [String: Any]) throws -> ContainerResources {
        func int(_ key: String) throws -> Int64? { try integer(host[key], key) }
        var r = ContainerResources(memory: try int("Memory"), memorySwap: try int("MemorySwap"), memoryReservation: try int("MemoryReservation"),
                                   nanoCPUs: try int("NanoCpus"), cpuShares: try int("CpuShares"), cpuPeriod: try int("CpuPeriod"),
                                   cpuQuota: try int("CpuQuota"), cpusetCPUs: try string(host["CpusetCpus"], "CpusetCpus"),
                                   pidsLimit: try int("PidsLimit"))
        r.memorySwappiness = try int("MemorySwappiness")
        return r
    }

    /// The `Labels` of a container or volume config: an object of strings, or null.
    static func labels(_ value: Any?) throws -> [String: String] {
        switch value {
        case nil, is NSNull: return [:]
        case let given as [String: Any]:
            return try given.mapValues { v in
                guard let v = v as? String else { throw EngineError.badRequest("Labels must be an object of strings") }
                return v
            }
        default: throw EngineError.badRequest("Labels must be an object of strings")
        }
    }

    /// A string in a container config: nil when absent, null or empty.
    static func string(_ value: Any?, _ field: String) throws -> String? {
        switch value {
        case nil, is NSNull: return nil
        case let s as String: return s.isEmpty ? nil : s
        default: throw EngineError.badRequest("\(field) must be a string")
        }
    }

    /// A list of strings in a container config: an array, a lone string (old clients), or null.
    static func strings(_ value: Any?, _ field: String) throws -> [String]? {
        switch value {
        case nil, is NSNull: return nil
        case let s as String: return [s]
        case let a as [Any]:
            return try a.map {
                guard let s = $0 as? String else { throw EngineError.badRequest("\(field) must be a list of strings") }
                return s
            }
        default: throw EngineError.badRequest("\(field) must be a list of strings")
        }
    }

    /// The settings strata does not apply, each with the docker CLI flag that sets it (for the
    /// message; empty when the API alone does) and the values that mean "not set" (what the
    /// docker CLI, docker-py and testcontainers send when the user gave nothing). Besides
    /// these, null, `false`, `0`, `""`, `[]` and `{}` always mean "not set".
    static let unappliedSettings: [(key: String, flag: String, unset: Set<String>)] = [
        // Resources (cgroups) beyond ContainerResources.
        ("KernelMemory", "", []),
        ("KernelMemoryTCP", "", []), ("CpuRealtimePeriod", "", []), ("CpuRealtimeRuntime", "", []), ("CpusetMems", "--cpuset-mems", []), ("CpuCount", "", []),
        ("CpuPercent", "", []), ("BlkioWeight", "--blkio-weight", []), ("BlkioWeightDevice", "", []), ("BlkioDeviceReadBps", "", []),
        ("BlkioDeviceWriteBps", "", []), ("BlkioDeviceReadIOps", "", []), ("BlkioDeviceWriteIOps", "", []), ("IOMaximumIOps", "", []),
        ("IOMaximumBandwidth", "", []), ("Ulimits", "--ulimit", []), ("OomKillDisable", "--oom-kill-disable", []), ("OomScoreAdj", "--oom-score-adj", []),
        ("CgroupParent", "--cgroup-parent", []), ("Devices", "--device", []), ("DeviceCgroupRules", "", []), ("DeviceRequests", "--gpus", []),
        // Privileges and security.
        ("Privileged", "--privileged", []), ("CapAdd", "--cap-add", []), ("CapDrop", "--cap-drop", []), ("SecurityOpt", "--security-opt", []), ("MaskedPaths", "", []), ("ReadonlyPaths", "", []),
        ("UsernsMode", "--userns", ["host"]),
        // Namespaces shared with the host or another container (PidMode, UTSMode and
        // CgroupnsMode are read by ``namespaces(_:)``).
        ("IpcMode", "--ipc", ["private", "shareable", "none"]), ("Cgroup", "", []),
        // Networking beyond none and host.
        ("Dns", "--dns", []), ("DnsOptions", "--dns-option", []), ("DnsSearch", "--dns-search", []), ("ExtraHosts", "--add-host", []), ("Links", "--link", []),
        // Everything else.
        ("StorageOpt", "--storage-opt", []), ("Sysctls", "--sysctl", []),
        ("Runtime", "--runtime", ["runc"]),
    ]

    /// `HostConfig.RestartPolicy` (`{"Name", "MaximumRetryCount"}`); nil when absent or `no`.
    static func restartPolicy(_ value: Any?) throws -> RestartPolicy? {
        guard let o = value as? [String: Any] else { return nil }
        let name = o["Name"] as? String ?? ""
        guard !name.isEmpty, name != "no" else { return nil }
        do {
            guard let n = RestartPolicy.Name(rawValue: name) else { return try RestartPolicy(parsing: name) }
            return try RestartPolicy(n, maximumRetryCount: (o["MaximumRetryCount"] as? Int) ?? 0)
        } catch let e as StrataError {
            throw EngineError.badRequest(e.message)
        }
    }

    /// The log drivers dockerd has built in.
    static let dockerdLogDrivers: Set<String> = ["json-file", "local", "none", "syslog", "journald", "gelf", "fluentd", "awslogs",
                                                "splunk", "etwlogs", "gcplogs", "logentries"]

    /// `PidMode`, `UTSMode` (empty, `private` or `host`; another container's is a 501) and
    /// `CgroupnsMode` (empty: dockerd's default for the host; `private` or `host`).
    static func namespaces(_ host: [String: Any], into options: inout ContainerOptions) throws {
        func mode(_ key: String, _ flag: String) throws -> Bool {
            switch host[key] {
            case nil, is NSNull: return false
            case let v as String where ["", "private"].contains(v): return false
            case let v as String where v == "host": return true
            case let v as String where v.hasPrefix("container:"):
                throw EngineError(status: .notImplemented, message: "strata does not share another container's namespaces: HostConfig.\(key) \(v) (\(flag))")
            case let v: throw EngineError.badRequest("invalid \(flag) mode: \(v)")
            }
        }
        options.hostPID = try mode("PidMode", "--pid")
        options.hostUTS = try mode("UTSMode", "--uts")
        switch host["CgroupnsMode"] {
        case nil, is NSNull: break
        case let v as String where v.isEmpty: break
        case let v as String where v == "private" || v == "host": options.privateCgroupNamespace = v == "private"
        case let v: throw EngineError.badRequest("invalid cgroup namespace mode: \(v)")
        }
    }

    /// Config.Healthcheck (`--health-cmd`, `--health-interval` …, `--no-healthcheck`): Docker's
    /// field names, durations in nanoseconds; what dockerd refuses is a 400.
    static func healthcheck(_ value: Any?) throws -> Healthcheck? {
        switch value {
        case nil, is NSNull: return nil
        case let o as [String: Any]:
            func number(_ key: String) throws -> Int64? {
                switch o[key] {
                case nil, is NSNull: return nil
                case let n as Int: return Int64(n)
                case let d as Double where d.isFinite && abs(d) < 9e18: return Int64(d)
                default: throw EngineError.badRequest("Healthcheck.\(key) must be a number")
                }
            }
            let check = Healthcheck(Test: try strings(o["Test"], "Healthcheck.Test"), Interval: try number("Interval"),
                                    Timeout: try number("Timeout"), StartPeriod: try number("StartPeriod"),
                                    StartInterval: try number("StartInterval"), Retries: try number("Retries").map { Int(clamping: $0) })
            do { try check.validate() } catch let e as StrataError { throw EngineError.badRequest(e.message) }
            return check
        default:
            throw EngineError.badRequest("Healthcheck must be an object")
        }
    }

    /// Refuses a container config that asks for something strata does not do (see
    /// ``unappliedSettings``), naming the first such setting.
    static func refuseUnappliedSettings(config o: [String: Any], host: [String: Any]) throws {
        func isUnset(_ v: Any, _ unset: Set<String>) -> Bool {
            switch v {
            case is NSNull: return true
            case let n as NSNumber: return n.doubleValue == 0 || unset.contains(n.stringValue)
            case let s as String: return s.isEmpty || unset.contains(s)
            case let a as [Any]: return a.isEmpty
            case let d as [String: Any]: return d.isEmpty
            default: return false
            }
        }
        for (key, flag, unset) in unappliedSettings {
            if let v = host[key], !isUnset(v, unset) {
                throw EngineError(status: .notImplemented, message: "strata does not apply HostConfig.\(key)\(flag.isEmpty ? "" : " (\(flag))"): leave it unset")
            }
        }
        // A log driver other than the log it keeps (or none).
        if let log = host["LogConfig"] as? [String: Any] {
            if let type = log["Type"] as? String, !["", "json-file", "local", "none"].contains(type) {
                // dockerd's drivers other than those are not offered; a name it does not know
                // at all gets its words.
                guard dockerdLogDrivers.contains(type) else {
                    throw EngineError.badRequest("logger: no log driver named '\(type)' is registered")
                }
                throw EngineError(status: .notImplemented, message: "strata does not use log driver \"\(type)\" (--log-driver): it keeps a container's log itself (json-file, local) or not at all (none)")
            }
        }
        for key in ["Domainname", "MacAddress", "Shell"] {
            if let v = o[key], !isUnset(v, []) {
                throw EngineError(status: .notImplemented, message: "strata does not apply Config.\(key): leave it unset")
            }
        }
    }
}
