import Foundation
import Testing
@testable import Strata

/// `analyze` against dive 0.13 (`dive --source docker-archive --ci --json`) on the same
/// docker-archive: efficiency to 4 decimals, wasted bytes, the inefficient files.
@Suite struct AnalyzeTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var layers: [String]
        var format: String = "gnu"
        /// Files dive misses because it ignores opaque markers and keeps a replaced
        /// directory's children: (path, size). They are hidden in the unpacked image.
        var hidden: [(String, Int64)] = []
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "whiteouts", layers: [
            "mkdir -p etc data/sub emptydir; head -c 1000 /dev/urandom > etc/a.conf; head -c 2000 /dev/urandom > etc/b.conf; head -c 3000 /dev/urandom > data/x; head -c 4000 /dev/urandom > data/y; head -c 500 /dev/urandom > data/sub/z",
            "mkdir etc; : > etc/.wh.a.conf; : > .wh.data; head -c 10 /dev/urandom > etc/c.conf",
            ": > .wh.emptydir; mkdir etc; head -c 2500 /dev/urandom > etc/b.conf",
        ]),
        Case(name: "hardlinks", layers: [
            "mkdir bin lib; head -c 5000 /dev/urandom > bin/tool; ln bin/tool bin/tool2; head -c 100 /dev/urandom > lib/x",
            "mkdir bin lib; head -c 6000 /dev/urandom > bin/tool; head -c 700 /dev/urandom > lib/h1; ln lib/h1 lib/h2",
            "mkdir bin; : > bin/.wh.tool2; head -c 6100 /dev/urandom > bin/tool",
        ]),
        Case(name: "three-overwrites", layers: [
            "head -c 100 /dev/urandom > f; mkdir -p usr/share; head -c 50000 /dev/urandom > usr/share/big",
            "head -c 200 /dev/urandom > f",
            "head -c 300 /dev/urandom > f; chmod 600 f",
        ]),
        Case(name: "three-overwrites-pax", layers: [
            "head -c 100 /dev/urandom > f; mkdir -p usr/share/\(String(repeating: "long-directory-name-", count: 6)); head -c 5000 /dev/urandom > usr/share/\(String(repeating: "long-directory-name-", count: 6))/ünïcode",
            "head -c 200 /dev/urandom > f; chown 3000000:3000000 f",
            "head -c 300 /dev/urandom > f; mkdir -p usr/share/\(String(repeating: "long-directory-name-", count: 6)); head -c 10 /dev/urandom > usr/share/\(String(repeating: "long-directory-name-", count: 6))/ünïcode",
        ], format: "pax"),
        Case(name: "opaque-directory", layers: [
            "mkdir -p opq/sub keep; head -c 700 /dev/urandom > opq/a; head -c 800 /dev/urandom > opq/b; head -c 900 /dev/urandom > opq/sub/c; head -c 10 /dev/urandom > keep/k",
            "mkdir opq; : > opq/.wh..wh..opq; head -c 50 /dev/urandom > opq/new",
        ], hidden: [("/opq/a", 700), ("/opq/b", 800)]),
        Case(name: "directory-replaced-by-file", layers: [
            "mkdir -p d other; head -c 300 /dev/urandom > d/x; head -c 400 /dev/urandom > d/y; head -c 20 /dev/urandom > other/o",
            "head -c 50 /dev/urandom > d",
        ], hidden: [("/d/x", 300), ("/d/y", 400)]),
    ]

    struct File: Hashable, CustomStringConvertible {
        var count: Int
        var bytes: Int64
        var path: String
        var description: String { "\(count) \(bytes) \(path)" }
    }

    static func round4(_ x: Double) -> Double { (x * 10000).rounded() / 10000 }

    @Test(arguments: cases)
    func matchesDive(_ c: Case) async throws {
        guard Peer.require("dive") else { return }
        let dir = try TempDir()
        let layers = try c.layers.map { try IndexFixtures.layer(dir, $0, format: c.format) }
        let archive = try IndexFixtures.dockerArchive(dir, layers: layers, tag: "analyze/\(c.name):1")
        let store = try await dir.store()
        _ = try await store.load(from: archive)
        let dive = try IndexFixtures.dive(archive, in: dir)
        let diveFiles = Set(dive.image.fileReference.map { File(count: $0.count, bytes: $0.sizeBytes, path: $0.file) })

        // Bit for bit with dive when asked to be.
        let compat = try await store.analyze("analyze/\(c.name):1", options: AnalyzeOptions(diveCompatible: true))
        #expect(Self.round4(compat.efficiency) == Self.round4(dive.image.efficiencyScore))
        #expect(compat.wastedBytes == dive.image.inefficientBytes)
        #expect(compat.sizeBytes == dive.image.sizeBytes)
        #expect(Set(compat.inefficientFiles.map { File(count: $0.count, bytes: $0.wastedBytes, path: $0.path) }) == diveFiles)

        // strata's own numbers: the same, plus what dive misses.
        let ours = try await store.analyze("analyze/\(c.name):1")
        let extra = Set(c.hidden.map { File(count: 2, bytes: $0.1, path: $0.0) })
        #expect(Set(ours.inefficientFiles.map { File(count: $0.count, bytes: $0.wastedBytes, path: $0.path) }) == diveFiles.union(extra))
        #expect(ours.wastedBytes == dive.image.inefficientBytes + c.hidden.reduce(0) { $0 + $1.1 })
        if c.hidden.isEmpty {
            #expect(Self.round4(ours.efficiency) == Self.round4(dive.image.efficiencyScore))
        } else {
            #expect(ours.efficiency < dive.image.efficiencyScore)
            // dive is wrong here: the unpacked image does not have these files, so every byte
            // of them in the lower layer is wasted.
            if Peer.require("umoci") {
                let rootfs = try await Self.unpack(store, "analyze/\(c.name):1", in: dir)
                for (p, _) in c.hidden { #expect(!FileManager.default.fileExists(atPath: rootfs + p), "\(p) should be hidden") }
            }
        }
    }

    /// Unpacks an image with umoci (the peer) and returns its rootfs path.
    static func unpack(_ store: Store, _ ref: String, in dir: TempDir) async throws -> String {
        let name = "unpack-\(UUID().uuidString.prefix(8))"
        let layout = dir.file(name + "-layout").path
        try await store.save([ref], to: URL(fileURLWithPath: layout), format: .ociDirectory)
        let tag = try bash("python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"manifests\"][0][\"annotations\"][\"org.opencontainers.image.ref.name\"])' \(layout)/index.json").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try sh(["umoci", "unpack", "--image", "\(layout):\(tag)", dir.file(name).path])
        return dir.file(name).path + "/rootfs"
    }

    @Test func strataSaveOutputReadsTheSameInDive() async throws {
        guard Peer.require("dive") else { return }
        let dir = try TempDir()
        let c = Self.cases[2]
        let layers = try c.layers.map { try IndexFixtures.layer(dir, $0) }
        let store = try await dir.store()
        _ = try await store.load(from: try IndexFixtures.dockerArchive(dir, layers: layers, tag: "three:1"))
        let saved = dir.file("saved.tar")
        try await store.save(["three:1"], to: saved)
        let dive = try IndexFixtures.dive(saved, in: dir)
        let ours = try await store.analyze("three:1")
        #expect(Self.round4(ours.efficiency) == Self.round4(dive.image.efficiencyScore))
        #expect(ours.wastedBytes == dive.image.inefficientBytes)
        #expect(ours.inefficientFiles.map(\.path) == ["/f"])
        #expect(ours.inefficientFiles.first?.count == 3)
        #expect(ours.inefficientFiles.first?.wastedBytes == 600)
        #expect(ours.layers.map(\.changed) == [0, 1, 1])
    }

    @Test func rulesFailLikeDiveCI() async throws {
        guard Peer.require("dive") else { return }
        let dir = try TempDir()
        let layers = try Self.cases[0].layers.map { try IndexFixtures.layer(dir, $0) }
        let archive = try IndexFixtures.dockerArchive(dir, layers: layers, tag: "rules:1")
        let store = try await dir.store()
        _ = try await store.load(from: archive)
        let a = try await store.analyze("rules:1")
        for (eff, wasted, pct) in [("0.1", "disabled", "0.99"), ("0.99", "disabled", "0.99"), ("0.1", "1KB", "0.99"),
                                   ("0.1", "100MB", "0.01"), ("0.1", "disabled", "1")] {
            let diveStatus = try sh(["dive", "--source", "docker-archive", "--ci", "--lowestEfficiency", eff, "--highestWastedBytes", wasted,
                                     "--highestUserWastedPercent", pct, archive.path], env: ["CI": "true"], check: false).status
            let rules = AnalyzeRules(lowestEfficiency: Double(eff), highestWastedBytes: AnalyzeRules.parseBytes(wasted),
                                     highestUserWastedPercent: Double(pct))
            let passed = rules.evaluate(a).allSatisfy(\.passed)
            #expect(passed == (diveStatus == 0), "rules \(eff) \(wasted) \(pct): dive exited \(diveStatus)")
        }
    }
}
