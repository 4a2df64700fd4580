import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Health checks through `strata serve` with the real docker CLI, against dockerd's rules
/// (moby's daemon/health.go): a pass makes a container healthy, `--health-retries` failures
/// in a row unhealthy, failures within the start period do not count, a probe that outlives
/// its timeout fails with -1 and dockerd's words, output is cut at 4096 bytes, five probes
/// are kept, and a stopped container reads unhealthy. `docker ps` shows the status, its
/// `health=` filter finds it, and each change is a `health_status` event. The Config.Healthcheck
/// a create body sets is compared with podman's in tools/engine-parity (EngineParityTests).
@Suite(.serialized) struct EngineHealthTests {
    struct Health: Decodable {
        struct Probe: Decodable { let ExitCode: Int; let Output: String }
        let Status: String
        let FailingStreak: Int
        let Log: [Probe]
    }

    /// Polls `check` for up to 20 s.
    static func eventually(_ check: () throws -> Bool) rethrows -> Bool {
        try EngineHarness.eventually(within: 20, check)
    }

    @Test func checksDecideTheStatusAsDockerdDoes() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        func health(_ name: String) throws -> Health? {
            let r = try h.docker(["inspect", "--format", "{{json .State.Health}}", name])
            return try? JSONDecoder().decode(Health.self, from: Data(r.out.utf8))
        }
        func run(_ name: String, _ flags: [String], image: String = "busybox") throws {
            let r = try h.docker(["run", "-d", "--name", name] + flags + [image, "busybox", "sleep", "600"])
            #expect(r.status == 0, "\(name): \(r.err)")
        }
        let fast = ["--health-interval", "200ms"]
        try run("ok", ["--health-cmd", "echo hi"] + fast + ["--health-retries", "2"])
        try run("bad", ["--health-cmd", "echo nope >&2; exit 3"] + fast + ["--health-retries", "2"])
        try run("slow", ["--health-cmd", "echo started; busybox sleep 30", "--health-timeout", "300ms", "--health-retries", "1"] + fast)
        try run("loud", ["--health-cmd", "busybox head -c 5000 /dev/zero | busybox tr '\\0' x"] + fast)
        try run("late", ["--health-cmd", "false", "--health-start-period", "4s", "--health-retries", "1"] + fast)
        try run("plain", [])
        let t0 = Date()

        #expect(try Self.eventually { try health("ok")?.Status == "healthy" })
        let ok = try health("ok")
        #expect(ok?.FailingStreak == 0 && ok?.Log.last?.ExitCode == 0 && ok?.Log.last?.Output == "hi\n", "\(String(describing: ok))")

        // Two failures in a row; the log keeps the last five probes.
        #expect(try Self.eventually { try health("bad")?.Status == "unhealthy" })
        #expect(try Self.eventually { (try health("bad")?.FailingStreak ?? 0) >= 6 })
        let bad = try health("bad")
        #expect(bad?.Log.count == 5 && bad?.Log.allSatisfy { $0.ExitCode == 3 && $0.Output == "nope\n" } == true, "\(String(describing: bad))")

        // Out of time: exit code -1, dockerd's words with the output so far.
        #expect(try Self.eventually { try health("slow")?.Status == "unhealthy" })
        let slow = try health("slow")
        #expect(slow?.Log.first?.ExitCode == -1 && slow?.Log.first?.Output == "Health check exceeded timeout (300ms): started\n", "\(String(describing: slow))")

        #expect(try Self.eventually { try health("loud")?.Log.isEmpty == false })
        #expect(try health("loud")?.Log.first?.Output == String(repeating: "x", count: 4096) + "...")

        // Within the start period failures do not count; after it one is enough.
        if Date().timeIntervalSince(t0) < 3 {
            let late = try health("late")
            #expect(late?.Status == "starting" && late?.FailingStreak == 0, "\(String(describing: late))")
        }
        #expect(try Self.eventually { try health("late")?.Status == "unhealthy" })
        #expect(Date().timeIntervalSince(t0) >= 3.5)
        #expect(try health("late").map { $0.Log.count > 1 } == true)

        // ps: the status in STATUS, and the health= filter.
        let ps = try h.docker(["ps", "--format", "{{.Names}} {{.Status}}"]).out
        #expect(ps.split(separator: "\n").contains { $0.hasPrefix("ok Up ") && $0.hasSuffix("(healthy)") }, "\(ps)")
        #expect(ps.split(separator: "\n").contains { $0.hasPrefix("plain Up ") && !$0.contains("(") }, "\(ps)")
        func filtered(_ f: String) throws -> [String] {
            try h.docker(["ps", "--filter", "health=\(f)", "--format", "{{.Names}}"]).out.split(separator: "\n").map(String.init).sorted()
        }
        #expect(try filtered("healthy") == ["loud", "ok"])
        #expect(try filtered("unhealthy") == ["bad", "late", "slow"])
        #expect(try filtered("none") == ["plain"])
        #expect(try health("plain") == nil)

        let events = try h.docker(["events", "--since", "0", "--until", "0s", "--filter", "event=health_status", "--format", "{{.Action}} {{.Actor.Attributes.name}}"]).out
        #expect(events.contains("health_status: healthy ok") && events.contains("health_status: unhealthy bad"), "\(events)")

        // A stopped container reads unhealthy (its monitor stopped), as under dockerd; a new run starts over.
        #expect(try h.docker(["stop", "-t", "0", "ok"]).status == 0)
        #expect(try health("ok")?.Status == "unhealthy")
        #expect(try h.docker(["start", "ok"]).status == 0)
        #expect(try ["starting", "healthy"].contains(health("ok")?.Status ?? ""))
        #expect(try Self.eventually { try health("ok")?.Status == "healthy" })
        _ = try h.docker(["rm", "-f", "ok", "bad", "slow", "loud", "late", "plain"])
    }

    @Test func theImagesCheckIsMergedAsDockerdMergesIt() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        func config(_ name: String) throws -> [String: Any] {
            let r = try h.docker(["inspect", "--format", "{{json .Config.Healthcheck}}", name])
            return (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]) ?? [:]
        }
        // A HEALTHCHECK through commit --change (dockerd takes it there, as in a Dockerfile).
        #expect(try h.docker(["create", "--name", "base", "busybox", "true"]).status == 0)
        let committed = try h.docker(["commit", "-c", "HEALTHCHECK --interval=200ms --retries=1 CMD exit 1", "base", "checked:1"])
        #expect(committed.status == 0, "\(committed.err)")
        #expect(try h.docker(["image", "inspect", "--format", "{{json .Config.Healthcheck}}", "checked:1"]).out
            == "{\"Test\":[\"CMD-SHELL\",\"exit 1\"],\"Interval\":200000000,\"Retries\":1}\n")

        // The image's check runs; a container's setting replaces that one alone.
        #expect(try h.docker(["run", "-d", "--name", "inherits", "checked:1", "busybox", "sleep", "600"]).status == 0)
        #expect(try h.docker(["run", "-d", "--name", "slower", "--health-interval", "300ms", "checked:1", "busybox", "sleep", "600"]).status == 0)
        #expect(try h.docker(["run", "-d", "--name", "off", "--no-healthcheck", "checked:1", "busybox", "sleep", "600"]).status == 0)
        #expect(try config("slower")["Test"] as? [String] == ["CMD-SHELL", "exit 1"])
        #expect(try (config("slower")["Interval"] as? NSNumber)?.int64Value == 300_000_000)
        #expect(try (config("slower")["Retries"] as? NSNumber)?.intValue == 1)
        #expect(try config("off")["Test"] as? [String] == ["NONE"])
        #expect(try EngineHealthTests.eventually {
            try h.docker(["inspect", "--format", "{{.State.Health.Status}}", "inherits"]).out == "unhealthy\n"
        })
        #expect(try h.docker(["inspect", "--format", "{{json .State.Health}}", "off"]).out == "null\n")

        // What dockerd refuses at create is a 400 with its words, and nothing is created.
        let tooFast = try h.docker(["create", "--name", "tooFast", "--health-cmd", "true", "--health-interval", "500us", "busybox"])
        #expect(tooFast.status != 0 && tooFast.err.contains("Interval in Healthcheck cannot be less than 1ms"), "\(tooFast.err)")
        #expect(try h.docker(["inspect", "tooFast"]).status != 0)
        _ = try h.docker(["rm", "-f", "inherits", "slower", "off", "base"])
    }
}
