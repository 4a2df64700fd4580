import Foundation
import Testing

/// The runtimes `strata serve` launches hold none of the server's descriptors. A `runc run`
/// lives as long as its container: a pipe it inherited from a launch on another thread (a
/// `runc state` for an inspect, another container's output) never reaches its end while the
/// container runs. That hung `docker inspect` for a container's whole run.
@Suite struct EngineDescriptorTests {
    /// The inodes behind a process's descriptors from 3 up (`pipe:[…]`, `socket:[…]`, paths).
    static func descriptors(_ pid: Int32, from lowest: Int = 3) -> [Int: String] {
        let dir = "/proc/\(pid)/fd"
        var out: [Int: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            guard let fd = Int(name), fd >= lowest,
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + name) else { continue }
            out[fd] = target
        }
        return out
    }

    @Test func runtimesLaunchedTogetherHoldNoneOfTheServersPipes() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer {
            _ = try? h.docker(["rm", "-f", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"])
            h.stop()
        }
        let server = try #require(h.serverPID)
        // Eight containers started at once, while inspects (each a `runc state` with its pipes)
        // and execs go on beside them.
        try h.shell("""
            export DOCKER_HOST=unix://\(h.socket) DOCKER_CONFIG=\(h.file("docker-config"))
            docker run -d --name c1 busybox sh -c 'while :; do busybox sleep 1; done' >/dev/null
            for i in 2 3 4 5 6 7 8; do docker run -d --name c$i busybox sh -c 'while :; do busybox sleep 1; done' >/dev/null & done
            for j in 1 2 3 4; do (for k in $(seq 15); do docker inspect c1 >/dev/null; docker exec c1 true; done) & done
            wait
            """)
        let ours = Set(Self.descriptors(server, from: 0).values.filter { $0.hasPrefix("pipe:") })
        let runtimes = try h.run("/usr/bin/pgrep", ["-P", String(server), "-x", "runc"]).out.split(separator: "\n").compactMap { Int32($0) }
        #expect(runtimes.count == 8, "\(runtimes)")
        for pid in runtimes {
            let held = Self.descriptors(pid)
            // Its stdio (0–2) is its own pipes; from 3 up, none of the server's.
            let shared = held.filter { ours.contains($0.value) }
            #expect(shared.isEmpty, "runc \(pid) holds the server's pipes \(shared)")
            // One socket: Foundation's watch of this runc's own end; others came from launches beside it.
            let sockets = held.values.filter { $0.hasPrefix("socket:") }
            #expect(sockets.count <= 1, "runc \(pid) holds sockets \(sockets)")
        }
        // And the inspect that hung answers.
        #expect(try h.docker(["inspect", "--format", "{{.State.Status}}", "c8"]).out == "running\n")
    }
}
