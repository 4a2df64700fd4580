import Foundation
import Testing
@testable import Strata
@testable import StrataBuild
import StrataCLI

@Suite("BuilderCache")
struct BuilderCacheTests {
    /// Random bytes (not compressible, not deduplicated by anything).
    static func random(_ path: String, bytes: Int) throws {
        try buildShell("head -c \(bytes) /dev/urandom > '\(path)'")
    }

    @Test func duPruneAndGcFollowThePolicy() async throws {
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try FileManager.default.createDirectory(atPath: dir.file("ctx"), withIntermediateDirectories: true)
        try Self.random(dir.file("ctx/a"), bytes: 1_000_000)
        try Self.random(dir.file("ctx/b"), bytes: 2_000_000)
        try Self.random(dir.file("ctx/c"), bytes: 3_000_000)
        let builder = Builder(store: store)
        let tagged = try await builder.build(dir.file("ctx"), "FROM base:1\nCOPY a /a\nLABEL x=1\n", log: BuildLog(), tags: ["app:1"])
        let loose = try await builder.build(dir.file("ctx"), "FROM base:1\nCOPY b /b\n", log: BuildLog())

        var entries = try await store.buildCacheEntries()
        #expect(entries.count == 3)
        let b = try #require(entries.first { $0.resultImageID == loose.imageID.string })
        #expect(b.reclaimable && b.size >= 2_000_000 && b.size < 2_100_000 && b.uses == 1)
        #expect(entries.filter { !$0.reclaimable }.count == 2)
        #expect(entries.first { $0.resultImageID == tagged.imageID.string }?.size == 0)

        // gc treats recently used cache entries as roots.
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await store.resolve(loose.imageID.string) == loose.imageID)

        // A budget that fits keeps everything; a duration not yet passed keeps everything.
        #expect(try await store.pruneBuildCache(BuildCachePruneOptions(keepStorage: 10_000_000)).removed.isEmpty)
        #expect(try await store.pruneBuildCache(BuildCachePruneOptions(keepDuration: 3600)).removed.isEmpty)

        // Duration-only frees space once entries are older than it.
        try await Task.sleep(nanoseconds: 2_100_000_000)
        let byAge = try await store.pruneBuildCache(BuildCachePruneOptions(keepDuration: 1))
        #expect(byAge.removed == [b.key])
        #expect(byAge.reclaimedBytes >= 2_000_000)
        await #expect(throws: StrataError.self) { try await store.resolve(loose.imageID.string) }

        // keep-storage with keep-duration: recent entries over the budget go, least recently used first.
        let c1 = try await builder.build(dir.file("ctx"), "FROM base:1\nCOPY c /c\n", log: BuildLog())
        try await Task.sleep(nanoseconds: 1_100_000_000)
        let c2 = try await builder.build(dir.file("ctx"), "FROM base:1\nCOPY b /b2\n", log: BuildLog())
        let both = try await store.pruneBuildCache(BuildCachePruneOptions(keepDuration: 3600, keepStorage: 2_500_000))
        entries = try await store.buildCacheEntries()
        #expect(both.removed.count == 1)
        #expect(entries.contains { $0.resultImageID == c2.imageID.string })
        #expect(!entries.contains { $0.resultImageID == c1.imageID.string })
        #expect(both.reclaimedBytes >= 3_000_000)

        // -a removes the entries of tagged images too; the images stay (the tag keeps them).
        let all = try await store.pruneBuildCache(BuildCachePruneOptions(all: true))
        #expect(all.removed.count == 3)
        #expect(try await store.buildCacheEntries().isEmpty)
        #expect(try await store.resolve("app:1") == tagged.imageID)
        let report = try await store.check()
        #expect(report.problems.isEmpty)
    }

    @Test func pruneRemovesUnpackedSnapshotsOfItsImages() async throws {
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["a": "a\n", "b": "b\n"], in: "ctx")
        // The second COPY runs in a container over the first step's layer: its snapshot is unpacked.
        let r = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nCOPY a /a\nCOPY b /b\n", log: BuildLog())
        let snapshots = store.root.appendingPathComponent("snapshots").path
        let before = try FileManager.default.contentsOfDirectory(atPath: snapshots).count
        let report = try await store.pruneBuildCache(BuildCachePruneOptions())
        #expect(report.removed.count == 2)
        await #expect(throws: StrataError.self) { try await store.resolve(r.imageID.string) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: snapshots).count == before - 1)
        #expect(try await store.check().problems.isEmpty)
    }

    @Test func builderCommandsOnTheCLI() async throws {
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["Dockerfile": "FROM base:1\nCOPY f /f\nENV A=1\n", "f": "x\n"], in: "ctx")
        let root = store.root.path
        #expect(await StrataCommand.main(arguments: ["build", "--root", root, "-t", "cli:1", "--timestamp", "1700000000", dir.file("ctx")]) == 0)
        let id = try await store.resolve("cli:1")
        #expect(await StrataCommand.main(arguments: ["build", "--root", root, "-q", "-t", "cli:2", "--timestamp", "1700000000", dir.file("ctx")]) == 0)
        #expect(try await store.resolve("cli:2") == id)
        #expect(await StrataCommand.main(arguments: ["builder", "du", "--root", root, "--format", "json"]) == 0)
        #expect(await StrataCommand.main(arguments: ["builder", "prune", "--root", root, "--keep-storage", "nonsense", "-f"]) == 1)
        #expect(await StrataCommand.main(arguments: ["builder", "prune", "--root", root, "-a", "--filter", "until=1h", "-f"]) == 0)
        #expect(try await store.buildCacheEntries().count == 2)
        #expect(await StrataCommand.main(arguments: ["builder", "prune", "--root", root, "-a", "-f"]) == 0)
        #expect(try await store.buildCacheEntries().isEmpty)
        // Bad input: one error line, exit 1 or 2, nothing changed.
        #expect(await StrataCommand.main(arguments: ["build", "--root", root, dir.file("missing")]) == 1)
        #expect(await StrataCommand.main(arguments: ["build", "--root", root, "-t", "Bad Name", dir.file("ctx")]) == 2)
    }
}
