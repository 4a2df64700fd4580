import Foundation
import Testing

/// Volumes through the docker CLI, as dockerd keeps them: an image's VOLUME and `-v /path`
/// get anonymous volumes filled from the image; `--rm` and `rm -v` remove those and keep
/// named ones; `volume prune` takes anonymous ones unless `-a`; labels; read-only mounts.
/// (tools/volume-parity proves the contents against podman.)
@Suite struct EngineVolumeTests {
    @Test func anonymousNamedReadOnlyAndLabelled() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.shell("""
            mkdir -p app host && echo from-host > host/f
            printf 'FROM busybox\\nRUN mkdir -p /data && echo seed > /data/f && chown -R 1000:1000 /data && chmod 700 /data\\nVOLUME /data\\n' > app/Dockerfile
            """)
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["build", "-q", "-t", "vol:1", "."], cwd: h.file("app")).status == 0)
        func volumes(_ filter: [String] = []) throws -> [String] {
            try h.docker(["volume", "ls", "-q"] + filter).out.split(separator: "\n").map(String.init)
        }

        // The image's VOLUME and -v /cache: two anonymous volumes, the first filled from the image.
        let run = try h.docker(["run", "--name", "a", "-v", "/cache", "vol:1", "sh", "-c", "stat -c '%u %a' /data; cat /data/f; ls -A /cache"])
        #expect(run.status == 0 && run.out == "1000 700\nseed\n", "\(run)")
        let anonymous = try volumes(["--filter", "label=com.docker.volume.anonymous"])
        #expect(anonymous.count == 2 && anonymous.allSatisfy { $0.count == 64 }, "\(anonymous)")
        let mounts = try h.docker(["inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}} {{.Driver}}|{{end}}{{json .Config.Volumes}}", "a"])
        #expect(mounts.out == "volume /cache true local|volume /data true local|{\"/cache\":{},\"/data\":{}}\n", "\(mounts)")
        // --rm takes the anonymous volumes of its container.
        #expect(try h.docker(["run", "--rm", "vol:1", "sh", "-c", ":"]).status == 0)
        #expect(try volumes().count == 2)

        // A named volume covers the VOLUME: no anonymous one; filled from the image once.
        #expect(try h.docker(["run", "--name", "b", "-v", "keep:/data", "vol:1", "sh", "-c", "echo more > /data/g"]).status == 0)
        #expect(try h.docker(["inspect", "--format", "{{json .HostConfig.Binds}} {{json .Config.Volumes}}", "b"]).out == "[\"keep:/data\"] {\"/data\":{}}\n")
        #expect(try h.docker(["run", "--rm", "-v", "keep:/data:ro", "vol:1", "sh", "-c", "ls /data; touch /data/x || echo refused"]).out
                == "f\ng\nrefused\n")
        let bind = try h.docker(["run", "--rm", "-v", "\(h.file("host")):/data:ro", "vol:1", "sh", "-c", "cat /data/f; touch /data/x 2>/dev/null || echo refused"])
        #expect(bind.out == "from-host\nrefused\n", "\(bind)")
        #expect(try h.docker(["inspect", "--format", "{{range .Mounts}}{{.Mode}} {{.RW}}{{end}}", "b"]).out == " true\n")
        // docker cp reads and writes a container's volumes (not the directory they hide), as
        // dockerd's does; a read-only one refuses the write.
        try h.shell("echo copied > host/new.txt")
        let into = try h.docker(["cp", h.file("host/new.txt"), "b:/data/"])
        #expect(into.status == 0, "\(into)")
        #expect(try h.docker(["run", "--rm", "-v", "keep:/data", "vol:1", "cat", "/data/new.txt"]).out == "copied\n")
        let out = try h.docker(["cp", "b:/data/g", "-"])
        #expect(out.status == 0 && out.out.contains("more\n"), "\(out)")
        #expect(try h.docker(["create", "--name", "ro", "-v", "keep:/data:ro", "vol:1", "sh"]).status == 0)
        let refused = try h.docker(["cp", h.file("host/new.txt"), "ro:/data/other.txt"])
        #expect(refused.status != 0 && refused.err.contains("read-only"), "\(refused)")
        #expect(try h.docker(["rm", "ro"]).status == 0)

        // rm -v: a's anonymous volumes go; b's named one stays.
        #expect(try h.docker(["rm", "-v", "a", "b"]).status == 0)
        #expect(try volumes() == ["keep"])

        // Labels; a plain prune keeps named volumes and takes an unused anonymous one.
        #expect(try h.docker(["volume", "create", "--label", "team=db", "labelled"]).status == 0)
        #expect(try h.docker(["volume", "inspect", "--format", "{{.Labels.team}}", "labelled"]).out == "db\n")
        #expect(try volumes(["--filter", "label=team=db"]) == ["labelled"])
        // (Nothing to run is refused at create, as by dockerd: the image has no CMD.)
        let nothing = try h.docker(["create", "vol:1"])
        #expect(nothing.status != 0 && nothing.err.contains("No command specified"), "\(nothing)")
        #expect(try h.docker(["create", "--name", "c", "vol:1", "sh"]).status == 0)
        #expect(try h.docker(["rm", "c"]).status == 0)
        let left = try volumes(["--filter", "dangling=true", "--filter", "label=com.docker.volume.anonymous"])
        #expect(left.count == 1)
        let prune = try h.docker(["volume", "prune", "-f"])
        #expect(prune.status == 0 && prune.out.contains(left.first ?? "?") && !prune.out.contains("keep"), "\(prune)")
        #expect(try volumes() == ["keep", "labelled"])
        let all = try h.docker(["volume", "prune", "-a", "-f", "--filter", "label!=team=db"])
        #expect(all.status == 0 && all.out.contains("keep") && !all.out.contains("labelled"), "\(all)")

        // Refused, and nothing made: a volume over a file; a propagation on a volume (it applies to binds).
        let overFile = try h.docker(["run", "--rm", "-v", "/etc/passwd", "vol:1", "sh", "-c", ":"])
        #expect(overFile.status != 0 && overFile.err.contains("cannot mount volume over existing file"), "\(overFile)")
        let shared = try h.docker(["run", "--rm", "-v", "x:/data:shared", "vol:1", "sh", "-c", ":"])
        #expect(shared.status != 0 && shared.err.contains("propagation shared applies to host directories"), "\(shared)")
        #expect(try volumes() == ["labelled"])
        #expect(try h.docker(["ps", "-a", "-q"]).out == "")
    }
}
