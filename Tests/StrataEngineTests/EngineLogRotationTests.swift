import Foundation
import Strata
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `--log-opt max-size/max-file` through `strata serve` with the real docker CLI, by dockerd's
/// rules (moby's loggerutils: a log at its size is rotated before the next line; max-file
/// files are kept; one file starts over): `docker logs` reads the kept lines, oldest first,
/// `-f` follows across rotations without losing a line, and the options dockerd refuses are
/// refused with its words.
@Suite(.serialized) struct EngineLogRotationTests {
    static func numbers(_ text: String) -> [Int] {
        text.split(separator: "\n").compactMap { $0.hasPrefix("line-") ? Int($0.dropFirst(5)) : nil }
    }

    @Test func aRotatedLogKeepsItsNewestLines() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let lines = "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"
        for (name, files) in [("three", 3), ("one", 1)] {
            let r = try h.docker(["run", "--name", name, "--log-opt", "max-size=1k", "--log-opt", "max-file=\(files)", "busybox", "sh", "-c", lines])
            // The attached output is whole: rotation is the log's alone.
            #expect(Self.numbers(r.out) == Array(0..<300), "\(name): \(r.err)")
            let kept = Self.numbers(try h.docker(["logs", name]).out)
            // A suffix of the output, to its last line: the full rotated files (1000 bytes or a
            // record more each, 15 to 17 bytes a line) and the current one.
            #expect(kept.last == 299 && kept == Array((kept.first ?? 0)...299), "\(name): \(kept)")
            #expect(kept.count >= (files - 1) * 58 && kept.count <= files * 68, "\(name): \(kept.count) lines kept")
            let id = try h.docker(["inspect", "--format", "{{.Id}}", name]).out.trimmingCharacters(in: .whitespacesAndNewlines)
            let dir = h.root + "/containers/" + id
            let logs = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("container.log") && !$0.hasSuffix(".times") }
            #expect(logs.sorted() == (["container.log"] + (1..<files).map { "container.log.\($0)" }).sorted(), "\(logs)")
            for f in logs {
                let size = (try FileManager.default.attributesOfItem(atPath: dir + "/" + f)[.size] as? Int) ?? 0
                #expect(size <= 1000 + 17, "\(f): \(size) bytes")
            }
            // --tail and timestamps read across the kept files too.
            let tail = try h.docker(["logs", "--tail", "2", "-t", name]).out.split(separator: "\n")
            #expect(tail.count == 2 && tail[0].hasSuffix(" line-298") && tail[1].hasSuffix(" line-299"), "\(tail)")
            #expect(try h.docker(["inspect", "--format", "{{json .HostConfig.LogConfig}}", name]).out
                == "{\"Type\":\"json-file\",\"Config\":{\"max-file\":\"\(files)\",\"max-size\":\"1k\"}}\n")
        }
        _ = try h.docker(["rm", "-f", "three", "one"])
    }

    @Test func aFollowerReadsOnAcrossRotations() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        #expect(try h.docker(["run", "-d", "--name", "slow", "--log-opt", "max-size=300", "--log-opt", "max-file=2", "busybox", "sh", "-c",
                              "i=0; while [ $i -lt 150 ]; do echo line-$i; i=$((i+1)); busybox usleep 10000; done"]).status == 0)
        let followed = Self.numbers(try h.docker(["logs", "-f", "slow"]).out)
        // From whatever was kept when it began, every line to the end, none twice.
        #expect(followed.last == 149 && followed == Array((followed.first ?? 0)...149), "\(followed)")
        #expect(followed.count > 100)
        _ = try h.docker(["rm", "-f", "slow"])
    }

    @Test func optionsDockerdRefusesAreRefused() throws {
        guard EngineHarness.dockerAvailable() else { return }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        for (opt, message) in [("max-size=lots", "invalid size: 'lots'"), ("max-file=0", "max-file cannot be less than 1"),
                               ("max-size=-1k", "invalid size: '-1k'"), ("bogus=1", "unknown log opt 'bogus' for json-file log driver"),
                               ("tag={{.Name}}", "strata does not apply log option tag"), ("compress=true", "strata does not compress rotated logs")] {
            let r = try h.docker(["create", "--name", "bad", "--log-opt", opt, "busybox", "true"])
            #expect(r.status != 0 && r.err.contains(message), "\(opt): \(r.err)")
            #expect(try h.docker(["inspect", "bad"]).status != 0, "\(opt) created a container")
        }
        // max-file alone never rotates (dockerd's rule); the options are kept for inspect.
        #expect(try h.docker(["run", "--name", "ok", "--log-opt", "max-file=100", "--log-opt", "compress=false", "busybox", "echo", "hi"]).out == "hi\n")
        #expect(try h.docker(["logs", "ok"]).out == "hi\n")
        #expect(try h.docker(["inspect", "--format", "{{json .HostConfig.LogConfig.Config}}", "ok"]).out == "{\"compress\":\"false\",\"max-file\":\"100\"}\n")
        _ = try h.docker(["rm", "-f", "ok"])
    }
}
