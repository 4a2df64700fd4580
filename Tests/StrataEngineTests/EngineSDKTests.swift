import Foundation
import Testing

/// The Docker SDK for Python (docker-py) against `strata serve`: `tools/engine-sdk-test.py`
/// lists, pulls from a loopback docker-registry, builds, saves, loads, runs containers to
/// completion and reads their logs, copies files in and out of a container, diffs and commits
/// it, and checks each answer; this test then checks the store itself: the images the SDK
/// built, loaded and committed are in it, with the IDs the SDK reported and the commit's
/// message and file.
/// A missing SDK (the script's exit 77), python3 or docker-registry skips the test on a
/// user's machine and fails it under CI=true. The script runs with the `python3` on PATH,
/// the one tools/setup installs the SDK for.
@Suite(.serialized) struct EngineSDKTests {
    @Test func pythonSDKListsPullsBuildsSavesLoadsAndRuns() throws {
        let ci = ProcessInfo.processInfo.environment["CI"] == "true"
        let peers = ["/usr/bin/docker-registry", "/usr/bin/env"]
        guard peers.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) else {
            if ci { Issue.record("CI=true but docker-registry is missing: run tools/setup") }
            return
        }
        let h = try EngineHarness()
        guard try h.run("/usr/bin/env", ["python3", "--version"]).status == 0 else {
            if ci { Issue.record("CI=true but python3 is missing: run tools/setup") }
            return
        }
        let registry = try h.startRegistry()
        // The registry holds team/base:1, pushed by strata from a busybox rootfs.
        try h.importBusybox()
        let base = try h.images().first?["id"] as? String
        #expect(try h.strata(["tag", "busybox:latest", "\(registry)/team/base:1"]).status == 0)
        let pushed = try h.strata(["push", "\(registry)/team/base:1"])
        try #require(pushed.status == 0, "\(pushed.err)")
        #expect(try h.strata(["rmi", "busybox:latest", "\(registry)/team/base:1"]).status == 0)
        try #require(try h.images().isEmpty)
        try h.start()
        defer { h.stop() }

        let script = EngineHarness.repo.appendingPathComponent("tools/engine-sdk-test.py").path
        let work = h.file("sdk")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let r = try h.run("/usr/bin/env", ["python3", script, h.socket, registry, work])
        if r.status == 77 {
            if ci { Issue.record("CI=true but the docker SDK for Python is missing: run tools/setup (\(r.out))") }
            return
        }
        #expect(r.status == 0, "engine-sdk-test.py failed:\n\(r.out)\n\(r.err)\nserver: \(h.serverLog().suffix(2000))")
        #expect(r.out.hasSuffix("all ok\n"))

        // Ground truth from the store: the pulled base (its ID as strata pushed it) and the
        // SDK's build, loaded back, tagged app:1 with the ID the SDK printed.
        let images = try h.images()
        let pulled = images.first { ($0["tags"] as? [String])?.contains("\(registry)/team/base:1") == true }
        #expect(pulled?["id"] as? String == base)
        let app = images.first { ($0["tags"] as? [String])?.contains("app:1") == true }
        let appID = try #require(app?["id"] as? String)
        #expect(r.out.contains("ok: images.load() gives back \(appID)\n"), "\(r.out)")
        let committed = images.first { ($0["tags"] as? [String])?.contains("app:2") == true }
        #expect(committed?["labels"] as? [String: String] == ["stage": "sdk"])
        #expect(try h.strata(["history", "app:2"]).out.contains("sdk commit"))
        let file = try h.strata(["run", "--rm", "app:2", "cat", "/sdk.txt"])
        #expect(file.out == "from the sdk\n", "\(file.err)")
        // Every container the script made is gone; its runs left nothing behind.
        #expect(try h.strata(["ps", "-a", "-q"]).out == "")
    }

    /// What docker-py expects of dockerd beyond what the docker CLI shows
    /// (`tools/engine-sdk-compat.py`): build messages in dockerd's order with a RUN's stderr
    /// in red, `cache_from`, `extra_hosts`, `network_mode='none'` and a failed RUN's status,
    /// frames of a TTY exec started without Tty, log frames per line, output there when
    /// `start` returns, kill that returns once stopped, dockerd's refusal to remove a running
    /// container, unnamed volumes that prune takes, and load errors inside a 200 stream.
    /// This test then checks the store: only the images the script tagged are left, and the
    /// RUN's extra host never reached a layer.
    @Test func pythonSDKSeesDockerdsBehaviour() throws {
        let ci = ProcessInfo.processInfo.environment["CI"] == "true"
        let h = try EngineHarness()
        guard try h.run("/usr/bin/env", ["python3", "--version"]).status == 0 else {
            if ci { Issue.record("CI=true but python3 is missing: run tools/setup") }
            return
        }
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let script = EngineHarness.repo.appendingPathComponent("tools/engine-sdk-compat.py").path
        let r = try h.run("/usr/bin/env", ["python3", script, h.socket, "busybox:latest"])
        if r.status == 77 {
            if ci { Issue.record("CI=true but the docker SDK for Python is missing: run tools/setup (\(r.out))") }
            return
        }
        #expect(r.status == 0, "engine-sdk-compat.py failed:\n\(r.out)\n\(r.err)\nserver: \(h.serverLog().suffix(2000))")
        #expect(r.out.hasSuffix("all ok\n"))
        let tags = try h.images().flatMap { ($0["tags"] as? [String]) ?? [] }.sorted()
        #expect(tags == ["busybox:latest", "compat-cache:1", "compat-commit:1", "compat-hosts:1", "compat-init:1", "compat:1"], "\(tags)")
        // The commit of a run holds its one change: nothing of the init layer or mount points.
        let layer = try h.strata(["image", "diff", "busybox:latest", "compat-init:1"])
        #expect(layer.status == 0 && layer.out.contains("/test") && !layer.out.contains("dockerenv") && !layer.out.contains("/proc")
                && !layer.out.contains("hostname"), "\(layer.out)")
        // The extra host was in the RUN's /etc/hosts only: busybox has no /etc/hosts, and the
        // image built on it has none either (the bind's stub went after the step).
        let etc = try h.strata(["run", "--rm", "compat-hosts:1", "ls", "-a", "/etc"])
        #expect(etc.status == 0 && !etc.out.contains("hosts"), "\(etc.out) \(etc.err)")
        #expect(try h.strata(["run", "--rm", "compat-hosts:1", "cat", "/hosts-file"]).out.contains("extra.compat.test"))
        #expect(try h.strata(["ps", "-a", "-q"]).out == "")
        #expect(try h.strata(["volume", "ls", "-q"]).out == "")
        // The same through `strata build`'s flags: --add-host, --network none, --cache-from.
        try h.shell("""
            mkdir -p cli/hosts cli/none cli/cache
            printf 'FROM busybox:latest\\nRUN cat /etc/hosts > /h\\n' > cli/hosts/Dockerfile
            printf 'FROM busybox:latest\\nRUN ls /sys/class/net > /n\\n' > cli/none/Dockerfile
            printf 'FROM busybox:latest\\nENV COMPAT=1\\nRUN touch /a\\nRUN touch /b\\n' > cli/cache/Dockerfile
            """)
        #expect(try h.strata(["build", "-q", "-t", "cli-hosts:1", "--add-host", "cli.test:127.0.0.3", h.file("cli/hosts")]).status == 0)
        #expect(try h.strata(["run", "--rm", "cli-hosts:1", "cat", "/h"]).out.contains("127.0.0.3\tcli.test\n"))
        #expect(try h.strata(["build", "-q", "-t", "cli-none:1", "--network", "none", h.file("cli/none")]).status == 0)
        #expect(try h.strata(["run", "--rm", "cli-none:1", "cat", "/n"]).out == "lo\n")
        #expect(try h.strata(["build", "-q", "-t", "cli-cache:1", h.file("cli/cache")]).status == 0)
        let warm = try h.strata(["build", "--cache-from", "cli-cache:1", h.file("cli/cache")])
        #expect(warm.out.components(separatedBy: "Using cache").count == 4, "\(warm.out)")
        let cold = try h.strata(["build", "--cache-from", "no-such:1", h.file("cli/cache")])
        #expect(cold.status == 0 && !cold.out.contains("Using cache"), "\(cold.out)")
    }

    /// testcontainers-python, a tool built on docker-py, against `strata serve`
    /// (`tools/engine-testcontainers-test.py`): it builds an image, runs a web server in a
    /// container on the host's network with an environment variable and a bind mount, waits
    /// for its log line, fetches its page, execs in it, reads its logs, and removes both.
    /// This test then checks the store: nothing of it is left. Missing testcontainers (the
    /// script's exit 77) skips on a user's machine and fails under CI=true.
    @Test func testcontainersBuildsRunsAndCleansUp() throws {
        let ci = ProcessInfo.processInfo.environment["CI"] == "true"
        let h = try EngineHarness()
        guard try h.run("/usr/bin/env", ["python3", "--version"]).status == 0 else {
            if ci { Issue.record("CI=true but python3 is missing: run tools/setup") }
            return
        }
        try h.importBusybox()
        let before = try h.strata(["images", "-q", "--filter", "dangling=false"]).out
        try h.start()
        defer { h.stop() }
        let script = EngineHarness.repo.appendingPathComponent("tools/engine-testcontainers-test.py").path
        let work = h.file("tc")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let r = try h.run("/usr/bin/env", ["python3", script, h.socket, String(EngineHarness.freePort()), work])
        if r.status == 77 {
            if ci { Issue.record("CI=true but testcontainers is missing: run tools/setup (\(r.out))") }
            return
        }
        #expect(r.status == 0, "engine-testcontainers-test.py failed:\n\(r.out)\n\(r.err)\nserver: \(h.serverLog().suffix(2000))")
        #expect(!r.out.contains("FAILED") && r.out.contains("ok: the page from the container"), "\(r.out)")
        // What the bind mount got, read here; and the store's tagged images and containers are
        // as they were (the build's steps stay as its cache, which `builder prune` takes).
        #expect(try String(contentsOfFile: work + "/data/out", encoding: .utf8) == "hello from the environment\n")
        #expect(try h.strata(["ps", "-a", "-q"]).out == "")
        #expect(try h.strata(["images", "-q", "--filter", "dangling=false"]).out == before)
    }
}
