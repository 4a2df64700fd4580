import Foundation
import Testing
import Strata

/// End-to-end tests of the `strata` binary: exit codes, output shapes, one-line errors.
@Suite struct CLITests {
    static let binary: String = {
        // Tests/StrataCLITests/CLITests.swift → package root → .build/debug/strata
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/strata").path
    }()

    struct Result { var status: Int32; var out: String; var err: String }

    final class Env: @unchecked Sendable {
        let dir: URL
        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-cli-\(UUID().uuidString.prefix(12))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(at: dir) }
        var root: String { dir.appendingPathComponent("store").path }

        @discardableResult
        func run(_ args: [String], stdin: String? = nil, path: String? = nil, environment: [String: String] = [:]) throws -> Result {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLITests.binary)
            p.arguments = args
            p.environment = ["STRATA_ROOT": root, "PATH": path ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
                .merging(environment) { $1 }
            let out = dir.appendingPathComponent("out-\(UUID().uuidString)"), err = dir.appendingPathComponent("err-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: out.path, contents: nil)
            FileManager.default.createFile(atPath: err.path, contents: nil)
            p.standardOutput = try FileHandle(forWritingTo: out)
            p.standardError = try FileHandle(forWritingTo: err)
            p.standardInput = try stdin.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            return Result(status: p.terminationStatus, out: try String(contentsOf: out, encoding: .utf8), err: try String(contentsOf: err, encoding: .utf8))
        }

        func shell(_ script: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-euo", "pipefail", "-c", script]
            p.currentDirectoryURL = dir
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        }

        func rootfs() throws -> String {
            try shell("""
                mkdir -p r/bin r/etc && cp "$(command -v busybox || echo /bin/busybox)" r/bin/busybox && ln -sf busybox r/bin/sh
                echo 'root:x:0:0::/:/bin/sh' > r/etc/passwd && tar -C r -cf rootfs.tar .
                """)
            return dir.appendingPathComponent("rootfs.tar").path
        }
    }

    @Test func importImagesHistoryAndRoundTrip() throws {
        let env = try Env()
        let imported = try env.run(["import", "-m", "from cli", try env.rootfs(), "cli/base:1"])
        #expect(imported.status == 0)
        #expect(imported.out.hasPrefix("sha256:"))
        let id = String(imported.out.dropFirst(7).prefix(12))

        let images = try env.run(["images"])
        let lines = images.out.split(separator: "\n")
        #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"])
        #expect(lines.count == 2)
        #expect(lines[1].split(separator: " ").prefix(3) == ["cli/base", "1", Substring(id)])
        // Docker's tabwriter: columns padded to the widest cell + 3, at least 10.
        #expect(lines[0].hasPrefix("REPOSITORY   TAG       IMAGE ID       CREATED"))
        #expect(lines[1].contains(id))
        #expect(try env.run(["images", "-q"]).out == id + "\n")

        let history = try env.run(["history", "cli/base:1"])
        #expect(history.out.split(separator: "\n").last?.hasSuffix("from cli") == true)
        #expect(try env.run(["--root", env.root, "history", "-q", "cli/base:1"]).out == id + "\n")

        let json = try env.run(["images", "--format", "json"])
        let decoded = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        #expect((decoded?.first?["tags"] as? [String]) == ["cli/base:1"])

        let inspect = try JSONSerialization.jsonObject(with: Data(try env.run(["inspect", "cli/base:1"]).out.utf8)) as? [[String: Any]]
        #expect((inspect?.first?["Id"] as? String)?.hasPrefix("sha256:" + id) == true)
        #expect((inspect?.first?["RepoTags"] as? [String]) == ["cli/base:1"])

        let tar = env.dir.appendingPathComponent("out.tar").path
        #expect(try env.run(["save", "-o", tar, "cli/base:1"]).status == 0)
        let load = try env.run(["--root", env.root + "2", "load", "-i", tar])
        #expect(load.out == "Loaded image: cli/base:1\n")
        // From standard input, as `docker load < file`.
        let piped = try env.run(["--root", env.root + "3", "load"], stdin: tar)
        #expect(piped.out == "Loaded image: cli/base:1\n", "\(piped.err)")

        #expect(try env.run(["tag", "cli/base:1", "cli/other:2"]).status == 0)
        let rmi = try env.run(["rmi", "cli/other:2"])
        #expect(rmi.out == "Untagged: cli/other:2\n")
        let rmi2 = try env.run(["rmi", "cli/base:1"])
        #expect(rmi2.out.hasPrefix("Untagged: cli/base:1\nDeleted: sha256:\(id)"))
        #expect(try env.run(["images", "-aq"]).out == "")
    }

    /// Bad input: exit 1, one `error:` line naming the problem. Usage errors: exit 2.
    /// `strata events`: the store's events as docker prints them, within `--since`/`--until`
    /// (a timestamp or a duration back from now), filtered, or as JSON lines.
    @Test func eventsShowWhatChanged() throws {
        let env = try Env()
        let since = String(Int(Date().timeIntervalSince1970) - 1)
        let id = try env.run(["import", try env.rootfs(), "ev:1"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try env.run(["tag", "ev:1", "ev:2"]).status == 0)
        #expect(try env.run(["rmi", "ev:2"]).status == 0)
        let all = try env.run(["events", "--since", since, "--until", "0s"])
        #expect(all.status == 0, "\(all.err)")
        let words = all.out.split(separator: "\n").map { $0.split(separator: " ").dropFirst().joined(separator: " ") }
        #expect(words == ["image tag \(id) (name=ev:1)", "image import \(id) (name=\(id))", "image tag \(id) (name=ev:2)",
                          "image untag \(id) (name=\(id))"], "\(all.out)")
        // Docker's time stamps: RFC 3339, nine digits of fraction, UTC.
        #expect(all.out.split(separator: "\n").allSatisfy { $0.prefix(30).range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"#, options: .regularExpression) != nil })
        let json = try env.run(["events", "--since", "1m", "--until", "0s", "--filter", "event=untag", "--format", "json"])
        let message = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        #expect(message?["Action"] as? String == "untag" && message?["id"] as? String == id && message?["Type"] as? String == "image", "\(json.out)")
        let bad = try env.run(["events", "--filter", "colour=red"])
        #expect(bad.status == 1 && bad.err == "error: invalid filter 'colour'\n", "\(bad.err)")
    }

    @Test func errorsAreOneLineWithStableExitCodes() throws {
        let env = try Env()
        try env.shell("printf 'not a tar at all' > junk.tar; mkdir -p empty")
        let cases: [([String], String)] = [
            (["load", "-i", env.dir.appendingPathComponent("junk.tar").path], "not a tar archive"),
            (["load", "-i", env.dir.appendingPathComponent("missing.tar").path], "no such file"),
            (["load", "-i", env.dir.appendingPathComponent("empty").path], "neither manifest.json nor index.json"),
            (["history", "nope:1"], "no such image"),
            (["tag", "nope:1", "x:1"], "no such image"),
            (["tag", "nope:1", "UPPER"], "must be lowercase"),
            (["rmi", "nope"], "no such image"),
            (["images", "--filter", "bogus=1"], "invalid filter"),
            (["images", "--filter", "label"], "invalid filter"),
            (["image", "prune", "--filter", "bogus=1", "-f"], "invalid filter"),
            (["image", "prune", "--filter", "until=soon", "-f"], "invalid duration"),
            (["ps", "--filter", "colour=red"], "invalid filter 'colour'"),
            (["ps", "--filter", "status=sleepy"], "invalid filter 'status=sleepy'"),
            (["ps", "--filter", "status"], "expected key=value"),
            (["volume", "ls", "--filter", "dangling=maybe"], "invalid filter 'dangling=maybe'"),
            (["load", "-i", env.dir.appendingPathComponent("junk.tar").path, "--platform", "linux"], "invalid platform"),
        ]
        for (args, needle) in cases {
            let r = try env.run(args)
            #expect(r.status == 1, "\(args)")
            #expect(r.err.hasPrefix("error: "), "\(args): \(r.err)")
            #expect(r.err.split(separator: "\n").count == 1, "\(args): \(r.err)")
            #expect(r.err.contains(needle), "\(args): \(r.err)")
        }
        for args in [["images", "--bogus"], ["frobnicate"], ["save", "--format", "zip", "-o", "x", "a"], ["images", "--format", "yaml"], ["gc", "--format", "xml"]] {
            #expect(try env.run(args).status == 2, "\(args)")
        }
        #expect(try env.run(["--help"]).status == 0)
    }
}

@Suite struct RunTests {
    /// run goes through runc: output streams through and the exit status comes back.
    @Test func runStreamsOutputAndReturnsTheStatus() throws {
        guard ProcessInfo.processInfo.environment["CI"] == "true" || FileManager.default.isExecutableFile(atPath: "/usr/bin/runc") else { return }
        if geteuid() != 0 { return }
        let env = try CLITests.Env()
        #expect(try env.run(["import", try env.rootfs(), "run/base:1"]).status == 0)
        for snapshotter in ["overlay", "copy"] {
            let r = try env.run(["run", "--rm", "--snapshotter", snapshotter, "-e", "GREETING=hi", "run/base:1",
                                 "sh", "-c", "echo $GREETING from $(cat /etc/passwd | head -c 4); ls /proc >/dev/null && exit 7"])
            #expect(r.status == 7, "\(snapshotter): \(r.err)")
            #expect(r.out == "hi from root\n", "\(snapshotter): \(r.out) \(r.err)")
        }
        #expect(try env.run(["ps", "-q"]).out == "")
        // Without an OCI runtime: one line saying what to install.
        let none = try env.run(["run", "--rm", "run/base:1", "sh"], path: "/nonexistent")
        #expect(none.status == 1 && none.err.contains("install runc"), "\(none.err)")
        // A kept container records its exit.
        #expect(try env.run(["run", "--name", "kept", "run/base:1", "sh", "-c", "exit 0"]).status == 0)
        #expect(try env.run(["ps"]).out.contains("Exited"))
        #expect(try env.run(["rm", "kept"]).status == 0)
        // A volume written by one container is there for the next.
        #expect(try env.run(["run", "--rm", "-v", "data:/data", "run/base:1", "sh", "-c", "echo persisted > /data/f"]).status == 0)
        let r = try env.run(["run", "--rm", "-v", "data:/data", "run/base:1", "sh", "-c", "cat /data/f"])
        #expect(r.out == "persisted\n", "\(r.err)")
        #expect(try env.run(["volume", "ls", "-q"]).out == "data\n")
        // A plain prune keeps a named volume; -a takes it (the sizes as docker prints them).
        #expect(try env.run(["volume", "prune", "-f"]).out == "Total reclaimed space: 0B\n")
        #expect(try env.run(["volume", "prune", "-a", "-f"]).out == "Deleted Volumes:\ndata\n\nTotal reclaimed space: 10B\n")
    }

    /// A foreground `strata run` probes its container's health check itself: `strata ps`
    /// from another process shows it healthy meanwhile, and the record says unhealthy once
    /// the run is over (dockerd's "monitor stopped"); bad flags are one-line errors.
    @Test func aForegroundRunProbesItsHealthCheck() async throws {
        guard ProcessInfo.processInfo.environment["CI"] == "true" || FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc") else { return }
        if geteuid() != 0 { return }
        let env = try CLITests.Env()
        #expect(try env.run(["import", try env.rootfs(), "run/base:1"]).status == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = ["run", "--name", "hc", "--health-cmd", "echo ok", "--health-interval", "200ms", "run/base:1", "busybox", "sleep", "600"]
        p.environment = ["STRATA_ROOT": env.root, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var status = ""
        let deadline = Date().addingTimeInterval(60)
        while !status.contains("(healthy)"), Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            status = try env.run(["ps", "--filter", "name=hc"]).out
        }
        #expect(status.contains(" Up ") && status.contains("(healthy)"), "\(status)")
        #expect(try env.run(["ps", "-q", "--filter", "health=healthy"]).out.count == 13)
        // Stopped from another process: the foreground run ends, and its monitor with it.
        #expect(try env.run(["stop", "-t", "0", "hc"]).status == 0)
        p.waitUntilExit()
        let store = try await Store.open(at: URL(fileURLWithPath: env.root))
        let c = try await store.container("hc")
        #expect(c.health?.Status == "unhealthy" && c.health?.Log.last?.Output == "ok\n", "\(String(describing: c.health))")
        #expect(c.healthcheck?.Test == ["CMD-SHELL", "echo ok"] && c.healthcheck?.Interval == 200_000_000)
        for (flags, says) in [(["--health-interval", "5"], "invalid duration \"5\""), (["--no-healthcheck", "--health-cmd", "true"], "conflicts")] {
            let r = try env.run(["create"] + flags + ["run/base:1", "sh"])
            #expect(r.status == 1 && r.err.contains(says) && r.err.split(separator: "\n").count == 1, "\(flags): \(r.err)")
        }
    }

    /// USER is resolved in the image's own /etc/passwd and /etc/group: the process runs with
    /// the uid, gid and supplementary groups found there; a passwd that links out to a host
    /// file does not make `evil` a user, and `run --rm` leaves nothing behind.
    @Test func runUsesTheImagesUserAndRefusesUnknownOnes() throws {
        guard ProcessInfo.processInfo.environment["CI"] == "true" || FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc") else { return }
        if geteuid() != 0 { return }
        let env = try CLITests.Env()
        try env.shell("""
            mkdir -p u/bin u/etc && cp "$(command -v busybox || echo /bin/busybox)" u/bin/busybox
            for a in sh id true; do ln -sf busybox u/bin/$a; done
            printf 'root:x:0:0::/:/bin/sh\\napp:x:1000:1000::/:/bin/sh\\n' > u/etc/passwd
            printf 'root:x:0:\\nstaff:x:50:app\\naudio:x:63:app\\napp:x:1000:\\n' > u/etc/group
            tar -C u -cf users.tar .
            echo 'evil:x:4242:4242::/:/bin/sh' > hostpasswd-outside
            mkdir -p h/bin h/etc && cp u/bin/busybox h/bin/busybox && for a in sh id true; do ln -sf busybox h/bin/$a; done
            ln -s "$PWD/hostpasswd-outside" h/etc/passwd
            tar -C h -cf hostile.tar .
            """)
        let dir = env.dir.path
        #expect(try env.run(["import", dir + "/users.tar", "users:1"]).status == 0)
        #expect(try env.run(["import", dir + "/hostile.tar", "hostile:1"]).status == 0)
        for (user, want) in [("app", "1000 1000 1000 50 63"), ("app:staff", "1000 50 50"), ("1234", "1234 0 0"), ("1234:audio", "1234 63 63")] {
            #expect(try env.run(["run", "--name", "c", "users:1", "true"]).status == 0)
            #expect(try env.run(["commit", "-c", "USER \(user)", "c", "users:\(user.replacingOccurrences(of: ":", with: "-"))"]).status == 0)
            #expect(try env.run(["rm", "c"]).status == 0)
            let r = try env.run(["run", "--rm", "users:\(user.replacingOccurrences(of: ":", with: "-"))", "sh", "-c", "echo $(id -u) $(id -g) $(id -G)"])
            #expect(r.out == want + "\n", "USER \(user): \(r.out) \(r.err)")
        }
        #expect(try env.run(["run", "--name", "c", "hostile:1", "true"]).status == 0)
        #expect(try env.run(["commit", "-c", "USER evil", "c", "hostile:evil"]).status == 0)
        #expect(try env.run(["commit", "-c", "USER nosuchuser", "c", "hostile:nosuch"]).status == 0)
        #expect(try env.run(["rm", "c"]).status == 0)
        for (image, name) in [("hostile:evil", "evil"), ("hostile:nosuch", "nosuchuser")] {
            let r = try env.run(["run", "--rm", image, "id"])
            #expect(r.status == 1 && r.err == "error: unable to find user \(name): no matching entries in passwd file\n", "\(r.out) \(r.err)")
            #expect(!r.out.contains("4242"))
        }
        #expect(try env.run(["ps", "-a", "-q"]).out == "")
    }
}
