import Foundation
import Testing

/// `--tmpfs`, `--mount` and `--shm-size` through the docker CLI, compared with podman's: for
/// generated options (sizes, modes, ro, exec, suid, dev, atime), what the kernel mounted at
/// each path inside the container (its mountinfo flags and tmpfs options, and the mount
/// point's mode) must be the same. Where podman 4.3 differs from dockerd (a tmpfs without
/// `exec` or `noexec` is `noexec` under dockerd, not under podman), the option is given
/// explicitly, or the flag is checked against dockerd's rule.
@Suite struct EngineMountTests {
    /// Fixed, so that a failure reproduces.
    static let seed: UInt64 = 2026

    /// What the kernel mounted at `paths`, from the container's mountinfo, and each mode.
    /// (mount point, its flags, then after the separator the type and the tmpfs options).
    static let probe = #"for p in $0 "$@"; do awk -v p=$p '$5 == p { for (i = 7; $i != "-"; i++); print $5, $6, $(i+1), $(i+3) }' /proc/self/mountinfo | sed 's/,relatime//'; stat -c '%n %a' $p; done"#

    @Test func tmpfsMountsAndShmAgreeWithPodman() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        guard let podman = try h.podman() else { return }
        try h.shell("mkdir -p host && echo h > host/f")
        try h.start()
        defer { h.stop() }

        var state = Self.seed
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        for round in 0..<8 {
            var opts = [["exec", "noexec"][next(2)]]
            if next(2) == 0 { opts.append(["ro", "rw"][next(2)]) }
            if next(2) == 0 { opts.append("size=\(1 + next(900))\(["k", "m"][next(2)])") }
            if next(2) == 0 { opts.append("mode=\(String(next(0o1000) | [0, 0o1000][next(2)], radix: 8))") }
            // (podman refuses the atime options for a tmpfs: not generated.)
            if next(3) == 0 { opts.append(["suid", "dev", "nosuid", "nodev"][next(4)]) }
            let size = (1 + next(64)) * 1 << 20
            let mode = String(next(0o1000), radix: 8)
            let flags = ["--tmpfs", "/t:" + opts.joined(separator: ","), "--mount", "type=tmpfs,dst=/m,tmpfs-size=\(size),tmpfs-mode=\(mode)",
                         "--mount", "type=bind,src=\(h.file("host")),dst=/b" + (next(2) == 0 ? ",readonly" : ""),
                         "--shm-size", "\(1 + next(200))m"]
            let command = ["busybox:latest", "sh", "-c", Self.probe, "/t", "/m", "/b", "/dev/shm"]
            let ours = try h.docker(["run", "--rm"] + flags + command)
            let theirs = try h.run("/usr/bin/env", podman + ["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                                                             "--ulimit", "nproc=1024:1024"] + flags + command)
            #expect(ours.status == 0 && theirs.status == 0, "\(flags): strata \(ours.err) podman \(theirs.err)")
            // --mount type=tmpfs has no exec option here: dockerd's noexec is checked alone.
            let mountLine = ours.out.split(separator: "\n").first { $0.hasPrefix("/m ") } ?? ""
            #expect(mountLine.contains("noexec"), "round \(round): \(ours.out)")
            func comparable(_ s: String) -> String {
                s.split(separator: "\n").map { $0.hasPrefix("/m ") ? $0.replacingOccurrences(of: ",noexec", with: "") : String($0) }.joined(separator: "\n")
            }
            #expect(!ours.out.isEmpty && comparable(ours.out) == comparable(theirs.out), "round \(round) \(flags):\nstrata \(ours.out)\npodman \(theirs.out)")
        }
        // dockerd's defaults for a bare --tmpfs, the record in inspect, and a refusal.
        #expect(try h.docker(["create", "--name", "rec", "--tmpfs", "/run:size=64k", "--shm-size", "8m", "busybox:latest", "true"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{json .HostConfig.Tmpfs}} {{.HostConfig.ShmSize}}", "rec"]).out == "{\"/run\":\"size=64k\"} 8388608\n")
        let bare = try h.docker(["run", "--rm", "--tmpfs", "/run", "busybox:latest", "sh", "-c", "grep ' /run ' /proc/self/mountinfo"])
        #expect(bare.out.contains("rw,nosuid,nodev,noexec"), "\(bare)")
        let missing = try h.docker(["run", "--rm", "--mount", "type=bind,src=/nonexistent/x,dst=/x", "busybox:latest", "true"])
        #expect(missing.status != 0 && missing.err.contains("bind source path does not exist: /nonexistent/x"), "\(missing)")
        // A --mount source may hold a colon (-v could not say it).
        try h.shell("mkdir -p 'co:lon' && echo c > 'co:lon/f'")
        let colon = try h.docker(["run", "--rm", "--mount", "type=bind,src=\(h.file("co:lon")),dst=/c,readonly", "busybox:latest", "sh", "-c", "cat /c/f; touch /c/g || :"])
        #expect(colon.out == "c\n" && colon.err.contains("Read-only file system"), "\(colon)")
        let bad = try h.docker(["run", "--rm", "--tmpfs", "/x:size=1m,bogus", "busybox:latest", "true"])
        #expect(bad.status != 0 && bad.err.contains("invalid tmpfs option \"bogus\""), "\(bad)")
        let twice = try h.docker(["run", "--rm", "--tmpfs", "/x", "-v", "/x", "busybox:latest", "true"])
        #expect(twice.status != 0 && twice.err.contains("duplicate mount point: /x"), "\(twice)")
        #expect(try h.docker(["volume", "ls", "-q"]).out == "")
    }
}
