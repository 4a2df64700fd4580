import Foundation
import Testing

/// Hostile bytes never crash the process, and concurrent writers both succeed.
@Suite struct RobustnessTests {
    /// A small deterministic generator so a failure can be replayed.
    struct LCG {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    @Test func corruptedAndTruncatedArchivesFailCleanly() throws {
        let env = try CLITests.Env()
        let rootfs = try env.rootfs()
        #expect(try env.run(["import", rootfs, "fuzz/base:1"]).status == 0)
        for format in ["docker", "oci-archive"] {
            let good = env.dir.appendingPathComponent("good-\(format).tar")
            #expect(try env.run(["save", "--format", format, "-o", good.path, "fuzz/base:1"]).status == 0)
            let bytes = try Data(contentsOf: good)
            var rng = LCG(state: format == "docker" ? 42 : 7)
            // JSON documents and headers sit at the end of the archive; aim half the flips there.
            for i in 0..<40 {
                var mutated = bytes
                let kind = i % 3
                if kind == 0 {
                    mutated = mutated.prefix(rng.next(mutated.count))
                } else {
                    let tail = i % 2 == 0
                    let pos = tail ? mutated.count - 1 - rng.next(min(8192, mutated.count)) : rng.next(mutated.count)
                    mutated[pos] ^= UInt8(1 + rng.next(255))
                }
                let f = env.dir.appendingPathComponent("m-\(format)-\(i).tar")
                try mutated.write(to: f)
                let r = try env.run(["--root", env.root + "-fuzz", "load", "-i", f.path])
                #expect(r.status == 0 || r.status == 1, "\(format) case \(i): status \(r.status) \(r.err)")
                if r.status == 1 {
                    #expect(r.err.hasPrefix("error: ") && r.err.split(separator: "\n").count == 1, "\(format) case \(i): \(r.err)")
                }
                try? FileManager.default.removeItem(at: f)
            }
        }
        // Whatever loaded is complete and listable.
        #expect(try env.run(["--root", env.root + "-fuzz", "images", "-a"]).status == 0)
    }

    /// `create -m/--memory-swap/--cpus/--pids-limit` as the docker CLI reads them (sizes in
    /// powers of 1024 with b, k, m, g; -1 for unlimited swap), recorded with the container;
    /// a size that does not parse or a limit dockerd refuses creates nothing.
    @Test func containerLimitsFromTheFlags() throws {
        let env = try CLITests.Env()
        #expect(try env.run(["import", try env.rootfs(), "lim/base:1"]).status == 0)
        #expect(try env.run(["create", "--name", "q", "-m", "0.5g", "--memory-swap", "-1", "--cpus", "0.25", "--pids-limit", "9",
                             "--cpuset-cpus", "0", "lim/base:1"]).status == 0)
        #expect(try env.run(["create", "--name", "r", "--memory", "64MiB", "lim/base:1"]).status == 0)
        let listed = try JSONSerialization.jsonObject(with: Data(try env.run(["ps", "-a", "--format", "json"]).out.utf8)) as? [[String: Any]] ?? []
        let limits = Dictionary(uniqueKeysWithValues: listed.compactMap { c in (c["name"] as? String).map { ($0, c["resources"] as? [String: Any] ?? [:]) } })
        #expect(limits["q"]?["memory"] as? Int == 512 << 20 && limits["q"]?["memorySwap"] as? Int == -1)
        #expect(limits["q"]?["nanoCPUs"] as? Int == 250_000_000 && limits["q"]?["pidsLimit"] as? Int == 9 && limits["q"]?["cpusetCPUs"] as? String == "0")
        // dockerd's default swap: twice the memory.
        #expect(limits["r"]?["memory"] as? Int == 64 << 20 && limits["r"]?["memorySwap"] as? Int == 128 << 20, "\(limits)")
        for (args, says) in [(["-m", "64x"], "invalid size \"64x\" for --memory"), (["-m", "1m"], "Minimum memory limit allowed is 6MB"),
                             (["--memory-swap", "1g"], "You should always set the Memory limit"), (["--cpus", "99"], "Range of CPUs")] {
            let r = try env.run(["create"] + args + ["lim/base:1"])
            #expect(r.status != 0 && r.err.contains(says), "\(args): \(r)")
        }
        #expect(try env.run(["ps", "-a", "-q"]).out.split(separator: "\n").count == 2)
    }

    @Test func twoProcessesRemovingOneContainer() throws {
        let env = try CLITests.Env()
        #expect(try env.run(["import", try env.rootfs(), "rm/base:1"]).status == 0)
        let id = try env.run(["create", "--snapshotter", "copy", "rm/base:1"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        var procs: [(Process, URL)] = []
        for i in 0..<2 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLITests.binary)
            p.arguments = ["--root", env.root, "rm", id]
            let err = env.dir.appendingPathComponent("rm-\(i).err")
            FileManager.default.createFile(atPath: err.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: err)
            p.standardOutput = FileHandle.nullDevice
            procs.append((p, err))
        }
        for (p, _) in procs { try p.run() }
        var statuses: [Int32] = []
        var errors = ""
        for (p, err) in procs {
            p.waitUntilExit()
            statuses.append(p.terminationStatus)
            errors += (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        }
        #expect(statuses.sorted() == [0, 1], "\(errors)")
        #expect(errors.contains("no such container"), "\(errors)")
        #expect(!FileManager.default.fileExists(atPath: env.root + "/containers/" + id))
    }

    @Test func twoProcessesIngestingTheSameBlobBothSucceed() throws {
        let env = try CLITests.Env()
        let rootfs = try env.rootfs()
        #expect(try env.run(["images"]).status == 0)
        var procs: [(Process, URL)] = []
        for i in 0..<4 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLITests.binary)
            p.arguments = ["--root", env.root, "import", rootfs, "race/img:\(i)"]
            let err = env.dir.appendingPathComponent("race-\(i).err")
            FileManager.default.createFile(atPath: err.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: err)
            p.standardOutput = FileHandle.nullDevice
            procs.append((p, err))
        }
        for (p, _) in procs { try p.run() }
        for (p, err) in procs {
            p.waitUntilExit()
            let message = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
            #expect(p.terminationStatus == 0, "\(message)")
        }
        let tags = try env.run(["images", "--format", "json"])
        let list = try JSONSerialization.jsonObject(with: Data(tags.out.utf8)) as? [[String: Any]] ?? []
        // Different creation times give different configs, but the layer blob is shared.
        #expect(list.count >= 1)
        let layers = try env.run(["layers", "--format", "json", "race/img:0"])
        #expect(layers.status == 0)
        let blobs = try FileManager.default.contentsOfDirectory(atPath: env.root + "/blobs/sha256")
        #expect(blobs.count == 1 + 2 * list.count)
    }
}
