import Foundation

/// One sample of a running container's resource use (`docker stats`), from the runtime's
/// cgroup counters (`runc events --stats`) and the host's CPU time.
public struct ContainerStats: Sendable, Codable, Hashable {
    /// When the sample was taken.
    public var read: Date
    /// CPU time the container used, in nanoseconds: in all, per CPU, in the kernel, in user space.
    public var cpuTotal: UInt64
    /// CPU time per CPU, in nanoseconds.
    public var cpuPerCPU: [UInt64]
    /// CPU time in the kernel, in nanoseconds.
    public var cpuKernel: UInt64
    /// CPU time in user space, in nanoseconds.
    public var cpuUser: UInt64
    /// The host's CPU time since boot, in nanoseconds, summed over CPUs (`/proc/stat`, as dockerd).
    public var systemCPU: UInt64
    /// The CPUs online on the host.
    public var onlineCPUs: Int
    /// Memory the container's cgroup charges, its peak, and its limit (the host's memory when
    /// it has none, as dockerd reports it), in bytes.
    public var memoryUsage: UInt64
    /// The peak of ``memoryUsage``.
    public var memoryMaxUsage: UInt64
    /// The cgroup's limit, or the host's memory when it has none.
    public var memoryLimit: UInt64
    /// The cgroup's memory counters by name (`cache`, `total_inactive_file`, `inactive_file`, …).
    public var memoryCounters: [String: UInt64]
    /// Processes (and threads) in the container.
    public var pids: UInt64
    /// Bytes read from and written to block devices.
    public var blockRead: UInt64
    /// Bytes written to block devices.
    public var blockWrite: UInt64
}

extension Store {
    /// A sample of a running container's resource use (`docker stats`); a conflict error when
    /// it is not running.
    ///
    /// ```swift
    /// let a = try await store.stats("web"); try await Task.sleep(for: .seconds(1))
    /// let b = try await store.stats("web")
    /// let cpu = Double(b.cpuTotal - a.cpuTotal) / Double(b.systemCPU - a.systemCPU) * Double(b.onlineCPUs) * 100
    /// ```
    public func stats(_ ref: String) async throws -> ContainerStats {
        let (c, name, runtime) = try await liveRun(ref, for: "reading a container's resource use")
        let r = try await runtimeCommand(runtime, ["events", "--stats", c.id])
        guard r.status == 0, let event = try? JSONSerialization.jsonObject(with: r.output) as? [String: Any],
              let data = event["data"] as? [String: Any] else {
            throw StrataError(.io, "cannot read the resource use of container \(name): \(r.error)")
        }
        return Self.stats(from: data, system: Self.hostCPU(), memoryTotal: Self.hostMemory())
    }

    /// A sample from `runc events --stats`' `data` object.
    static func stats(from data: [String: Any], system: (nanoseconds: UInt64, cpus: Int), memoryTotal: UInt64) -> ContainerStats {
        func n(_ v: Any?) -> UInt64 { (v as? NSNumber)?.uint64Value ?? 0 }
        let cpu = (data["cpu"] as? [String: Any])?["usage"] as? [String: Any] ?? [:]
        let memory = data["memory"] as? [String: Any] ?? [:]
        let usage = memory["usage"] as? [String: Any] ?? [:]
        var counters: [String: UInt64] = [:]
        for (k, v) in memory["raw"] as? [String: Any] ?? [:] { counters[k] = n(v) }
        if counters["cache"] == nil, let cache = memory["cache"] { counters["cache"] = n(cache) }
        // A limit this large is "none" (the kernel's page-rounded maximum).
        let limit = n(usage["limit"])
        var read: UInt64 = 0, write: UInt64 = 0
        for e in (data["blkio"] as? [String: Any])?["ioServiceBytesRecursive"] as? [[String: Any]] ?? [] {
            switch (e["op"] as? String ?? "").lowercased() {
            case "read": read += n(e["value"])
            case "write": write += n(e["value"])
            default: break
            }
        }
        return ContainerStats(
            read: Date(), cpuTotal: n(cpu["total"]), cpuPerCPU: (cpu["percpu"] as? [Any] ?? []).map(n),
            cpuKernel: n(cpu["kernel"]), cpuUser: n(cpu["user"]), systemCPU: system.nanoseconds, onlineCPUs: system.cpus,
            memoryUsage: n(usage["usage"]), memoryMaxUsage: n(usage["max"]),
            memoryLimit: limit == 0 || limit >= 1 << 62 ? memoryTotal : limit, memoryCounters: counters,
            pids: n((data["pids"] as? [String: Any])?["current"]), blockRead: read, blockWrite: write)
    }

    /// The host's CPU time since boot (the `cpu` line of /proc/stat: user to softirq, as
    /// dockerd sums it) in nanoseconds, and the CPUs online.
    static func hostCPU() -> (nanoseconds: UInt64, cpus: Int) {
        let text = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
        var ticks: UInt64 = 0
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) {
            for f in line.split(separator: " ").dropFirst().prefix(7) { ticks += UInt64(f) ?? 0 }
        }
        let hz = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        return (ticks * (1_000_000_000 / hz), max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    }

    /// The host's memory in bytes (`MemTotal`).
    static func hostMemory() -> UInt64 {
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
              let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ UInt64($0) }) else { return 0 }
        return kb * 1024
    }
}
