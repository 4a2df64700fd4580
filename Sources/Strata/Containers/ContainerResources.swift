import Foundation

/// The limits a container's runs get from the kernel (cgroups, applied by the OCI runtime):
/// `docker run --memory --memory-swap --memory-reservation --memory-swappiness --cpus
/// --cpu-shares --cpu-period --cpu-quota --cpuset-cpus --pids-limit`, with dockerd's meanings and checks. Nil (or, as
/// in Docker's API, 0) is "no limit".
///
/// ```swift
/// var o = ContainerOptions(command: ["sh"])
/// o.resources = ContainerResources(memory: 64 << 20, nanoCPUs: 500_000_000, pidsLimit: 100)
/// ```
public struct ContainerResources: Sendable, Codable, Hashable {
    /// Bytes of memory (`--memory`); at least 6 MiB, as dockerd.
    public var memory: Int64?
    /// Memory plus swap, in bytes (`--memory-swap`); -1 for unlimited swap. Needs ``memory``;
    /// when left out with ``memory`` set it is twice ``memory``, as dockerd makes it.
    public var memorySwap: Int64?
    /// A soft limit in bytes (`--memory-reservation`), below ``memory``.
    public var memoryReservation: Int64?
    /// CPUs in billionths (`--cpus 1.5` is 1,500,000,000); not with ``cpuPeriod`` or ``cpuQuota``.
    public var nanoCPUs: Int64?
    /// A relative CPU weight (`--cpu-shares`; the kernel's default is 1024), brought into 2 to
    /// 262144 as dockerd does.
    public var cpuShares: Int64?
    /// The CFS period in microseconds (`--cpu-period`, 1000 to 1,000,000).
    public var cpuPeriod: Int64?
    /// The CFS quota in microseconds per period (`--cpu-quota`, at least 1000).
    public var cpuQuota: Int64?
    /// The CPUs it may run on (`--cpuset-cpus 0-1,3`).
    public var cpusetCPUs: String?
    /// The most processes it may have (`--pids-limit`); 0 or less: no limit.
    public var pidsLimit: Int64?
    /// How readily the kernel swaps its memory out (`--memory-swappiness`, 0 to 100); -1 or
    /// nil: the kernel's default. cgroup v2 has no such setting: there dockerd drops it with
    /// a warning, and so does the engine API; the runtime spec leaves it out.
    public var memorySwappiness: Int64?

    public init(memory: Int64? = nil, memorySwap: Int64? = nil, memoryReservation: Int64? = nil, nanoCPUs: Int64? = nil,
                cpuShares: Int64? = nil, cpuPeriod: Int64? = nil, cpuQuota: Int64? = nil, cpusetCPUs: String? = nil,
                pidsLimit: Int64? = nil) {
        self.memory = memory
        self.memorySwap = memorySwap
        self.memoryReservation = memoryReservation
        self.nanoCPUs = nanoCPUs
        self.cpuShares = cpuShares
        self.cpuPeriod = cpuPeriod
        self.cpuQuota = cpuQuota
        self.cpusetCPUs = cpusetCPUs
        self.pidsLimit = pidsLimit
    }

    /// dockerd's warning when it drops a swappiness the kernel cannot apply (cgroup v2).
    public static let swappinessDiscarded = "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."

    /// Whether any limit is set.
    public var isEmpty: Bool { normalized() == ContainerResources() }

    /// Zero means "not set" in Docker's API; a pids limit of 0 or less is none; dockerd's
    /// default swap (twice the memory) is filled in.
    func normalized() -> ContainerResources {
        func set(_ v: Int64?) -> Int64? { v.flatMap { $0 == 0 ? nil : $0 } }
        var r = ContainerResources(memory: set(memory), memorySwap: set(memorySwap), memoryReservation: set(memoryReservation),
                                   nanoCPUs: set(nanoCPUs), cpuShares: set(cpuShares), cpuPeriod: set(cpuPeriod), cpuQuota: set(cpuQuota),
                                   cpusetCPUs: cpusetCPUs.flatMap { $0.isEmpty ? nil : $0 }, pidsLimit: pidsLimit.flatMap { $0 <= 0 ? nil : $0 })
        r.memorySwappiness = memorySwappiness.flatMap { $0 == -1 ? nil : $0 }
        if let m = r.memory, r.memorySwap == nil, m <= Int64.max / 2 { r.memorySwap = m * 2 }
        // As dockerd: CPU shares below 0 are none, and the rest are brought into the
        // kernel's range (2 to 262144) instead of refused.
        if let shares = r.cpuShares { r.cpuShares = shares < 0 ? nil : min(max(shares, 2), 262_144) }
        return r
    }

    /// dockerd's checks, with its messages; the limits as they will be recorded.
    func validated() throws -> ContainerResources {
        let r = normalized()
        func bad(_ message: String) -> StrataError { StrataError(.invalidArgument, message) }
        if let m = r.memory {
            guard m >= 6 << 20 else { throw bad("Minimum memory limit allowed is 6MB") }
        }
        if let s = r.memorySwap, s != -1 {
            guard let m = r.memory else { throw bad("You should always set the Memory limit when using Memoryswap limit") }
            guard s >= m else { throw bad("Minimum memoryswap limit should be larger than memory limit, see usage") }
        }
        if let reservation = r.memoryReservation {
            guard reservation > 0 else { throw bad("invalid memory reservation \(reservation): it must be positive") }
            if let m = r.memory, reservation > m {
                throw bad("Minimum memory limit can not be less than memory reservation limit, see usage")
            }
        }
        if let s = r.memorySwappiness, s < 0 || s > 100 {
            throw bad("Invalid value: \(s), valid memory swappiness range is 0-100")
        }
        if let n = r.nanoCPUs {
            guard r.cpuPeriod == nil else { throw bad("Conflicting options: Nano CPUs and CPU Period cannot both be set") }
            guard r.cpuQuota == nil else { throw bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set") }
            let cpus = Int64(ProcessInfo.processInfo.activeProcessorCount)
            guard n >= 10_000_000, n <= cpus * 1_000_000_000 else {
                throw bad("Range of CPUs is from 0.01 to \(cpus).00, as there are only \(cpus) CPUs available")
            }
        }
        if let p = r.cpuPeriod, p < 1000 || p > 1_000_000 { throw bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)") }
        if let q = r.cpuQuota, q < 1000 { throw bad("CPU cfs quota can not be less than 1ms (i.e. 1000)") }
        if let set = r.cpusetCPUs {
            guard set.range(of: #"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$"#, options: .regularExpression) != nil else {
                throw bad("Invalid value \(set) for cpuset cpus")
            }
        }
        return r
    }

    /// The OCI runtime spec's `linux.resources`. The swap limit goes only where the kernel
    /// accounts swap (cgroup v1's `memory.memsw.*`, or cgroup v2): dockerd likewise drops it
    /// there, with a warning.
    func runtimeSpec() -> [String: Any] {
        var out: [String: Any] = [:]
        var mem: [String: Any] = [:]
        if let m = memory { mem["limit"] = m }
        if let s = memorySwap, memory != nil, Self.swapAccounted { mem["swap"] = s }
        if let r = memoryReservation { mem["reservation"] = r }
        if let s = memorySwappiness, !ContainerInfo.cgroupV2 { mem["swappiness"] = s }
        if !mem.isEmpty { out["memory"] = mem }
        var cpu: [String: Any] = [:]
        if let s = cpuShares { cpu["shares"] = s }
        if let n = nanoCPUs {
            cpu["period"] = 100_000
            cpu["quota"] = n * 100_000 / 1_000_000_000
        }
        if let p = cpuPeriod { cpu["period"] = p }
        if let q = cpuQuota { cpu["quota"] = q }
        if let set = cpusetCPUs { cpu["cpus"] = set }
        if !cpu.isEmpty { out["cpu"] = cpu }
        if let p = pidsLimit { out["pids"] = ["limit": p] }
        return out
    }

    /// Whether the kernel accounts swap per cgroup.
    static var swapAccounted: Bool {
        FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
            || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    }
}
