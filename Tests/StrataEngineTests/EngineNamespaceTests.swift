import Foundation
import Testing

/// `--group-add`, `--pid host`, `--uts host`, `--cgroupns` and `--log-driver` through the
/// docker CLI, compared with podman's runs of the same image: the process's groups for
/// generated users and added groups (names from the image's /etc/group, and numbers), the
/// host's PID 1 and hostname seen through the shared namespaces, and the cgroup paths a
/// cgroup namespace of its own shows.
@Suite struct EngineNamespaceTests {
    /// Fixed, so that a failure reproduces.
    static let seed: UInt64 = 2026

    @Test func groupsAndNamespacesAgreeWithPodman() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        guard let podman = try h.podman() else { return }
        // An image with users and groups: alice is listed in wheel; bob's primary group is audio.
        try h.shell("""
            cp -a r g && printf 'root:x:0:0::/:/bin/sh\\nalice:x:1000:1000::/:/bin/sh\\nbob:x:1001:29::/:/bin/sh\\n' > g/etc/passwd
            printf 'root:x:0:\\nwheel:x:10:alice\\naudio:x:29:\\nstaff:x:50:bob\\nalice:x:1000:\\n' > g/etc/group
            tar -C g -cf groups.tar .
            """)
        #expect(try h.strata(["import", h.file("groups.tar"), "groups:1"]).status == 0)
        #expect(try h.run("/usr/bin/env", podman + ["import", "-q", h.file("groups.tar"), "groups:1"]).status == 0)
        try h.start()
        defer { h.stop() }
        func both(_ flags: [String], _ command: [String], image: String = "groups:1") throws -> (String, String) {
            let ours = try h.docker(["run", "--rm"] + flags + [image] + command)
            let theirs = try h.run("/usr/bin/env", podman + ["run", "--rm"] + EngineHarness.podmanRunFlags + flags + ["localhost/" + image] + command)
            #expect(ours.status == 0 && theirs.status == 0, "\(flags): strata \(ours.err) podman \(theirs.err)")
            return (ours.out, theirs.out)
        }

        var state = Self.seed
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let users = ["", "alice", "bob", "1000:50", "2000", "bob:wheel"]
        let groups = ["wheel", "staff", "audio", "4242", "50", "alice"]
        for round in 0..<8 {
            var flags: [String] = []
            let user = users[next(users.count)]
            if !user.isEmpty { flags += ["-u", user] }
            for g in groups where next(3) == 0 { flags += ["--group-add", g] }
            let (ours, theirs) = try both(flags, ["busybox", "sh", "-c", "busybox id -u; busybox id -g; busybox id -G"])
            #expect(!ours.isEmpty && ours == theirs, "round \(round) \(flags):\nstrata \(ours)\npodman \(theirs)")
        }
        // A group the image does not have: refused at start, as under podman and dockerd.
        let unknown = try h.docker(["run", "--rm", "--group-add", "nosuchgroup", "groups:1", "true"])
        #expect(unknown.status != 0 && unknown.err.contains("nosuchgroup"), "\(unknown)")

        // The host's namespaces: its PID 1 and its hostname.
        let pid = try both(["--pid", "host"], ["busybox", "cat", "/proc/1/comm"])
        let hostInit = try String(contentsOfFile: "/proc/1/comm", encoding: .utf8)
        #expect(pid.0 == hostInit && pid.1 == hostInit, "\(pid) \(hostInit)")
        let own = try h.docker(["run", "--rm", "groups:1", "busybox", "cat", "/proc/1/comm"])
        #expect(own.out == "busybox\n", "\(own)")
        let uts = try both(["--uts", "host"], ["busybox", "hostname"])
        #expect(uts.0 == ProcessInfo.processInfo.hostName + "\n" && uts.0 == uts.1, "\(uts)")
        #expect(try h.docker(["run", "--rm", "--name", "n1", "groups:1", "busybox", "hostname"]).out.count == 13)
        // A cgroup namespace of its own: every hierarchy is its root there.
        let cg = try both(["--cgroupns", "private"], ["busybox", "sh", "-c", "busybox cut -d: -f3 /proc/self/cgroup | busybox sort -u"])
        #expect(cg.0 == "/\n" && cg.0 == cg.1, "\(cg)")
        let hostCG = try h.docker(["run", "--rm", "--cgroupns", "host", "groups:1", "busybox", "sh", "-c", "busybox cut -d: -f3 /proc/self/cgroup | busybox sort -u"])
        #expect(hostCG.status == 0 && hostCG.out != "/\n", "\(hostCG)")
        #expect(try h.docker(["create", "--name", "ns", "--pid", "host", "--uts", "host", "--cgroupns", "private", "--group-add", "wheel",
                              "--log-driver", "none", "groups:1", "true"]).status == 0)
        let inspect = try h.docker(["inspect", "--format",
                                    "{{.HostConfig.PidMode}} {{.HostConfig.UTSMode}} {{.HostConfig.CgroupnsMode}} {{.HostConfig.GroupAdd}} {{.HostConfig.LogConfig.Type}}", "ns"])
        #expect(inspect.out == "host host private [wheel] none\n", "\(inspect)")

        // --volumes-from: the other container's volumes (named and anonymous) and binds, at
        // the same paths, shared, read-only with :ro; as under podman.
        try h.shell("mkdir -p vf && echo bound > vf/b")
        let probe = ["busybox", "sh", "-c", "busybox cat /named/n /anon/a /bind/b; busybox touch /named/w 2>/dev/null && echo rw || echo ro"]
        for (tool, prefix) in [("strata", [String]()), ("podman", podman)] {
            let make = ["create", "--name", "vsrc", "-v", "vf-named:/named", "-v", "/anon", "-v", h.file("vf") + ":/bind",
                        tool == "podman" ? "localhost/groups:1" : "groups:1", "true"]
            #expect((tool == "strata" ? try h.docker(make) : try h.run("/usr/bin/env", prefix + make)).status == 0)
            let fill = ["run", "--rm"] + (tool == "podman" ? EngineHarness.podmanRunFlags : []) + ["--volumes-from", "vsrc", tool == "podman" ? "localhost/groups:1" : "groups:1",
                        "busybox", "sh", "-c", "echo named > /named/n; echo anon > /anon/a"]
            #expect((tool == "strata" ? try h.docker(fill) : try h.run("/usr/bin/env", prefix + fill)).status == 0)
        }
        let rw = try both(["--volumes-from", "vsrc"], probe)
        #expect(rw.0 == "named\nanon\nbound\nrw\n" && rw.0 == rw.1, "\(rw)")
        let ro = try both(["--volumes-from", "vsrc:ro"], probe)
        #expect(ro.0 == "named\nanon\nbound\nro\n" && ro.0 == ro.1, "\(ro)")
        #expect(try h.run("/usr/bin/env", podman + ["rm", "-v", "vsrc"]).status == 0)
        #expect(try h.run("/usr/bin/env", podman + ["volume", "rm", "-f", "vf-named"]).status == 0)
        // The anonymous volume is vsrc's: `rm -v` of a container that borrowed it keeps it.
        #expect(try h.docker(["create", "--name", "borrower", "--volumes-from", "vsrc", "groups:1", "true"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{json .HostConfig.VolumesFrom}}", "borrower"]).out == "[\"vsrc\"]\n")
        #expect(try h.docker(["rm", "-v", "borrower"]).status == 0)
        #expect(try h.docker(["volume", "ls", "-q"]).out.split(separator: "\n").count == 2)
        #expect(try h.docker(["rm", "-v", "vsrc"]).status == 0)
        #expect(try h.docker(["volume", "ls", "-q"]).out == "vf-named\n")

        // A volume driver other than local: kept when no volume is made; without its plugin,
        // a volume to make is refused (dockerd's words), and nothing is made.
        #expect(try h.docker(["create", "--name", "vd", "--volume-driver", "foo", "groups:1", "true"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{.HostConfig.VolumeDriver}}", "vd"]).out == "foo\n")
        let plugin = try h.docker(["create", "--volume-driver", "foo", "-v", "vd-vol:/v", "groups:1", "true"])
        #expect(plugin.status != 0 && plugin.err.contains("error looking up volume plugin foo"), "\(plugin)")
        #expect(try h.docker(["volume", "ls", "-q"]).out == "vf-named\n")

        // --log-driver none: the run's output reaches an attached client, no log is kept.
        let quiet = try h.docker(["run", "--name", "quiet", "--log-driver", "none", "groups:1", "echo", "said"])
        #expect(quiet.out == "said\n", "\(quiet)")
        let logs = try h.docker(["logs", "quiet"])
        #expect(logs.status != 0 && logs.err.contains("configured logging driver does not support reading"), "\(logs)")
        let bogus = try h.docker(["run", "--rm", "--log-driver", "bogus", "groups:1", "true"])
        #expect(bogus.status != 0 && bogus.err.contains("logger: no log driver named 'bogus' is registered"), "\(bogus)")
        let syslog = try h.docker(["run", "--rm", "--log-driver", "syslog", "groups:1", "true"])
        #expect(syslog.status != 0 && syslog.err.contains("log driver \"syslog\""), "\(syslog)")
    }
}
