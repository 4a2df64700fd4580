import Foundation
import Testing

/// `docker run --memory --memory-swap --memory-reservation --cpus --cpu-shares --cpu-period
/// --cpu-quota --cpuset-cpus --pids-limit` through `strata serve` reach the kernel as they do
/// under podman (which applies Docker's meanings: a swap limit of twice the memory unless
/// given, `--cpus` as a CFS quota over a 100 ms period): for each set of flags, the same
/// container runs under both, and every cgroup file that holds a limit is read from the host
/// and compared. dockerd's refusals (a memory limit under 6 MB, a swap limit without one,
/// more CPUs than the host has) come with dockerd's messages.
@Suite(.serialized) struct EngineResourceTests {
    /// The cgroup files that hold the limits (cgroup v1 and v2 names), by controller path.
    static let limitFiles = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "cpu.cfs_quota_us",
                             "cpu.cfs_period_us", "cpu.shares", "pids.max", "cpuset.cpus", "memory.max", "memory.swap.max", "memory.low",
                             "cpu.max", "cpu.weight", "memory.swappiness"]

    /// Every limit file of the process's cgroups that exists, by name.
    static func limits(of pid: String) throws -> [String: String] {
        var found: [String: String] = [:]
        for line in try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ",").map(String.init)
            let dirs = controllers.isEmpty ? ["/sys/fs/cgroup" + parts[2]] : controllers.map { "/sys/fs/cgroup/\($0)\(parts[2])" }
            for dir in dirs {
                for f in limitFiles {
                    if let v = try? String(contentsOfFile: dir + "/" + f, encoding: .utf8) {
                        found[f] = v.trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                }
            }
        }
        return found
    }

    @Test func limitsReachTheKernelAsUnderPodman() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        guard let podman = try h.podman() else { return }
        try h.start()
        defer { h.stop() }
        let loop = ["busybox:latest", "sh", "-c", "while :; do sleep 1; done"]
        // podman's own default is a limit of 2048 processes; dockerd's is none.
        func podmanDefaults(_ flags: [String]) -> [String] { flags.contains("--pids-limit") ? [] : ["--pids-limit", "-1"] }
        let cases: [[String]] = [
            ["--memory", "64m"], ["--memory", "32m", "--memory-swap", "96m"], ["--memory", "100m", "--memory-swap", "-1"],
            ["--memory", "64m", "--memory-reservation", "20m"], ["--cpus", "1.25"], ["--cpus", "0.5", "--cpu-shares", "512"],
            ["--cpu-period", "50000", "--cpu-quota", "25000"], ["--pids-limit", "7"], ["--cpuset-cpus", "0"], [],
            ["--memory", "48m", "--memory-swappiness", "0"], ["--memory-swappiness", "35"],
        ]
        for flags in cases {
            let ours = try h.docker(["run", "-d", "--name", "lim"] + flags + loop)
            #expect(ours.status == 0, "\(flags): \(ours.err)")
            let theirs = try h.run("/usr/bin/env", podman + ["run", "-d", "--name", "lim", "--network", "none", "--ulimit", "nofile=1024:1024",
                                                             "--ulimit", "nproc=1024:1024"] + flags + podmanDefaults(flags) + loop)
            #expect(theirs.status == 0, "\(flags): \(theirs.err)")
            let ourPID = try h.docker(["inspect", "--format", "{{.State.Pid}}", "lim"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
            let theirPID = try h.run("/usr/bin/env", podman + ["inspect", "--format", "{{.State.Pid}}", "lim"]).out
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let (a, b) = (try Self.limits(of: ourPID), try Self.limits(of: theirPID))
            #expect(!a.isEmpty && a == b, "\(flags): strata \(a), podman \(b)")
            _ = try h.docker(["rm", "-f", "lim"])
            _ = try h.run("/usr/bin/env", podman + ["rm", "-f", "-t", "0", "lim"])
        }
        // docker inspect and docker stats give the limits as dockerd records them.
        #expect(try h.docker(["create", "--name", "rec", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "9"] + loop).status == 0)
        let rec = try h.docker(["inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}", "rec"])
        #expect(rec.out == "67108864 134217728 500000000 9\n", "\(rec)")
        #expect(try h.docker(["start", "rec"]).status == 0)
        let stats = try h.docker(["stats", "--no-stream", "--format", "{{.MemUsage}}", "rec"])
        #expect(stats.out.hasSuffix(" / 64MiB\n"), "\(stats)")
        #expect(try h.docker(["rm", "-f", "rec"]).status == 0)
        // As dockerd (podman refuses it instead): CPU shares below the kernel's 2 are raised to it.
        #expect(try h.docker(["create", "--name", "few", "--cpu-shares", "1"] + loop).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.HostConfig.CpuShares}}", "few"]).out == "2\n")
        #expect(try h.docker(["rm", "few"]).status == 0)

        // dockerd's refusals, and nothing is created.
        for (flags, says) in [(["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
                              (["--memory-swap", "1g"], "You should always set the Memory limit when using Memoryswap limit"),
                              (["--memory", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit should be larger than memory limit"),
                              (["--cpus", "64"], "Range of CPUs is from 0.01 to"),
                              (["--cpuset-cpus", "zero"], "Invalid value zero for cpuset cpus")] {
            let r = try h.docker(["create"] + flags + ["busybox:latest", "true"])
            #expect(r.status != 0 && r.err.contains(says), "\(flags): \(r)")
        }
        #expect(try h.docker(["ps", "-a", "-q"]).out == "")
    }
    /// `docker update` on a live run changes its cgroups as `podman update` does, for the
    /// flags both take the same way (memory with swap, CPUs, shares, cpuset); dockerd's own
    /// rules are checked alone where podman 4.3 differs (a memory limit alone keeps the swap
    /// limit under dockerd, podman doubles it; podman ignores --memory-swap -1 and has no
    /// --pids-limit in update).
    @Test func updateChangesALiveRunAsUnderPodman() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        guard let podman = try h.podman() else { return }
        try h.start()
        defer { h.stop() }
        let start = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "busybox:latest", "sh", "-c", "while :; do sleep 1; done"]
        #expect(try h.docker(["run", "-d", "--name", "up"] + start).status == 0)
        #expect(try h.run("/usr/bin/env", podman + ["run", "-d", "--name", "up", "--network", "none", "--ulimit", "nofile=1024:1024",
                                                     "--ulimit", "nproc=1024:1024"] + start).status == 0)
        let ourPID = try h.docker(["inspect", "--format", "{{.State.Pid}}", "up"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let theirPID = try h.run("/usr/bin/env", podman + ["inspect", "--format", "{{.State.Pid}}", "up"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        for flags in [["--memory", "96m", "--memory-swap", "192m"], ["--cpus", "1"], ["--cpu-shares", "512"], ["--cpuset-cpus", "0"],
                      ["--memory", "80m", "--memory-swap", "160m"], ["--cpu-shares", "4096", "--cpus", "0.25"]] {
            let ours = try h.docker(["update"] + flags + ["up"])
            #expect(ours.status == 0 && ours.out == "up\n", "\(flags): \(ours)")
            #expect(try h.run("/usr/bin/env", podman + ["update"] + flags + ["up"]).status == 0, "\(flags)")
            let (a, b) = (try Self.limits(of: ourPID), try Self.limits(of: theirPID))
            #expect(!a.isEmpty && a == b, "\(flags): strata \(a), podman \(b)")
        }
        _ = try h.run("/usr/bin/env", podman + ["rm", "-f", "-t", "0", "up"])
        // dockerd's rules: a memory limit alone keeps the swap limit, and must stay below it;
        // a pids limit of -1 removes it; inspect records what the run has.
        #expect(try h.docker(["update", "--memory-swap", "256m", "--memory", "96m", "up"]).status == 0)
        #expect(try h.docker(["update", "--memory", "128m", "up"]).status == 0)
        #expect(try Self.limits(of: ourPID)["memory.memsw.limit_in_bytes"] == "\(256 << 20)")
        let above = try h.docker(["update", "--memory", "300m", "up"])
        #expect(above.status != 0 && above.err.contains("Memory limit should be smaller than already set memoryswap limit"), "\(above)")
        #expect(try h.docker(["update", "--pids-limit", "-1", "up"]).status == 0)
        #expect(try Self.limits(of: ourPID)["pids.max"] == "max")
        #expect(try h.docker(["update", "--memory-swap", "-1", "up"]).status == 0)
        #expect(try Self.limits(of: ourPID)["memory.memsw.limit_in_bytes"] == "9223372036854771712")
        let rec = try h.docker(["inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}}", "up"])
        #expect(rec.out == "\(128 << 20) -1 250000000\n", "\(rec)")
        // A setting strata does not apply is refused by name.
        let blkio = try h.docker(["update", "--blkio-weight", "300", "up"])
        #expect(blkio.status != 0 && blkio.err.contains("HostConfig.BlkioWeight"), "\(blkio)")
        // A stopped container gets its new limits at the next start.
        #expect(try h.docker(["rm", "-f", "up"]).status == 0)
        #expect(try h.docker(["create", "--name", "later", "busybox:latest", "sh", "-c", "while :; do sleep 1; done"]).status == 0)
        #expect(try h.docker(["update", "--pids-limit", "33", "later"]).status == 0)
        #expect(try h.docker(["start", "later"]).status == 0)
        let laterPID = try h.docker(["inspect", "--format", "{{.State.Pid}}", "later"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Self.limits(of: laterPID)["pids.max"] == "33")
        #expect(try h.docker(["rm", "-f", "later"]).status == 0)
    }
}
