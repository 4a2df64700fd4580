import Foundation
import Testing

/// `docker container prune` and `docker system prune` through `strata serve` with the real
/// docker CLI, and `strata container prune`: stopped and created containers go with their
/// writable layers, a running one stays, filters narrow the choice.
@Suite(.serialized) struct EnginePruneTests {
    @Test func containerAndSystemPrune() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        func id(_ name: String) throws -> String {
            try h.docker(["inspect", "--format", "{{.Id}}", name]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let seconds = String(Int.random(in: 30000..<40000))
        #expect(try h.docker(["run", "-d", "--name", "live", "busybox", "busybox", "sleep", seconds]).status == 0)
        #expect(try h.docker(["create", "--name", "made", "busybox", "true"]).status == 0)
        // 200 KiB in its writable layer: what the prune reclaims.
        let done = try h.docker(["run", "--name", "done", "busybox", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=200"])
        #expect(done.status == 0, "\(done)")
        let (liveID, madeID, doneID) = (try id("live"), try id("made"), try id("done"))
        #expect(EngineRunTests.waitForProcesses(sleeping: seconds, count: 1))

        // Filters that keep everything: all are younger than an hour; none has this label.
        for filter in ["until=1h", "label=stage"] {
            let r = try h.docker(["container", "prune", "-f", "--filter", filter])
            #expect(r.status == 0 && r.out == "Total reclaimed space: 0B\n", "\(filter): \(r)")
        }
        let bad = try h.docker(["container", "prune", "-f", "--filter", "color=red"])
        #expect(bad.status != 0 && bad.err.contains("invalid filter"), "\(bad)")
        #expect(try h.docker(["ps", "-a", "-q"]).out.split(separator: "\n").count == 3)

        // docker system prune: containers (and networks, images, build cache) in one go.
        let sys = try h.docker(["system", "prune", "-f"])
        #expect(sys.status == 0, "\(sys)")
        #expect(sys.out.contains("Deleted Containers:\n"), "\(sys.out)")
        #expect(sys.out.contains(madeID) && sys.out.contains(doneID) && !sys.out.contains(liveID), "\(sys.out)")
        let reclaimed = sys.out.split(separator: "\n").last { $0.hasPrefix("Total reclaimed space: ") } ?? ""
        #expect(reclaimed.hasSuffix("kB") || reclaimed.hasSuffix("MB"), "\(sys.out)")
        #expect(try h.docker(["ps", "-a", "--format", "{{.Names}}"]).out == "live\n")
        #expect(EngineRunTests.waitForProcesses(sleeping: seconds, count: 1))  // untouched

        // The CLI: once stopped, strata container prune removes it.
        #expect(try h.docker(["stop", "-t", "0", "live"]).status == 0)
        let cli = try h.strata(["container", "prune", "-f"])
        #expect(cli.status == 0 && cli.out.hasPrefix("Deleted Containers:\n\(liveID)\n"), "\(cli)")
        #expect(try h.docker(["ps", "-a", "-q"]).out == "")

        // Labels narrow it as dockerd's: label= takes the containers with it, label!= spares them.
        #expect(try h.docker(["create", "--name", "kept", "--label", "keep=1", "busybox", "true"]).status == 0)
        #expect(try h.docker(["create", "--name", "staged", "--label", "stage=x", "busybox", "true"]).status == 0)
        #expect(try h.docker(["create", "--name", "plain", "busybox", "true"]).status == 0)
        let (keptID, stagedID, plainID) = (try id("kept"), try id("staged"), try id("plain"))
        let staged = try h.docker(["container", "prune", "-f", "--filter", "label=stage"])
        #expect(staged.status == 0 && staged.out.contains(stagedID) && !staged.out.contains(plainID) && !staged.out.contains(keptID), "\(staged)")
        let unkept = try h.docker(["container", "prune", "-f", "--filter", "label!=keep=1"])
        #expect(unkept.status == 0 && unkept.out.contains(plainID) && !unkept.out.contains(keptID), "\(unkept)")
        #expect(try h.docker(["ps", "-a", "--format", "{{.Names}}"]).out == "kept\n")
    }
}
