import Foundation
import Testing

/// Bind propagation (`-v /src:/dst:rshared`, `--mount …,bind-propagation=rslave`) through the
/// docker CLI, beside podman's runs: the mount inside the container is shared, a slave, or
/// private as asked (its mountinfo's optional fields), a host mount made under a slave bind
/// after the start shows inside, a source on a private mount is refused with dockerd's words,
/// and inspect reads the propagation back.
@Suite struct EnginePropagationTests {
    @Test func propagationAgreesWithPodman() throws {
        guard EngineHarness.dockerAvailable(), geteuid() == 0 else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        guard let podman = try h.podman() else { return }
        // A shared mount of our own to bind from (this machine's / is private).
        try h.shell("mkdir -p sh/src/sub priv && mount --bind sh/src sh/src && mount --make-shared sh/src")
        defer { _ = try? h.shell("umount -l sh/src/sub 2>/dev/null; umount -l sh/src") }
        try h.start()
        defer { h.stop() }
        let src = h.file("sh/src")
        // The optional fields of the mount at /mnt, as kinds: shared, master (a slave), or none.
        let probe = ["sh", "-c", #"awk '$5 == "/mnt" { k = ""; for (i = 7; $i != "-"; i++) { split($i, a, ":"); k = k a[1] " " } print k "." }' /proc/self/mountinfo"#]
        for mode in ["rshared", "shared", "rslave", "slave", "rprivate", "private"] {
            let ours = try h.docker(["run", "--rm", "-v", "\(src):/mnt:\(mode)", "busybox:latest"] + probe)
            let theirs = try h.run("/usr/bin/env", podman + ["run", "--rm"] + EngineHarness.podmanRunFlags
                                   + ["-v", "\(src):/mnt:\(mode)", "localhost/busybox:latest"] + probe)
            #expect(ours.status == 0 && !ours.out.isEmpty && ours.out == theirs.out, "\(mode): strata \(ours) podman \(theirs)")
        }
        // A slave sees what the host mounts under it after the start.
        #expect(try h.docker(["run", "-d", "--name", "sl", "--mount", "type=bind,src=\(src),dst=/mnt,bind-propagation=rslave",
                              "busybox:latest", "sh", "-c", "while :; do busybox sleep 1; done"]).status == 0)
        try h.shell("mount -t tmpfs probe sh/src/sub")
        let seen = try h.docker(["exec", "sl", "sh", "-c", "grep -c ' /mnt/sub ' /proc/self/mountinfo"])
        #expect(seen.out == "1\n", "\(seen)")
        #expect(try h.docker(["inspect", "--format", "{{range .Mounts}}{{.Propagation}}{{end}}", "sl"]).out == "rslave\n")
        #expect(try h.docker(["rm", "-f", "sl"]).status == 0)
        // A source on a private mount cannot be shared: dockerd's refusal at the start.
        let refused = try h.docker(["run", "--rm", "-v", h.file("priv") + ":/mnt:rshared", "busybox:latest", "true"])
        #expect(refused.status != 0 && refused.err.contains("is mounted on / but it is not a shared mount"), "\(refused)")
        let volume = try h.docker(["run", "--rm", "-v", "named:/mnt:rshared", "busybox:latest", "true"])
        #expect(volume.status != 0 && volume.err.contains("applies to host directories"), "\(volume)")
    }
}
