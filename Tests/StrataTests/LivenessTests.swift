import Foundation
import GRDB
import Testing
@testable import Strata
import TestSupport

/// Every command that deletes, checked against the one liveness rule (``Liveness``) on small
/// declared graphs, as containerd's pkg/gc tests do: each case is a graph, a command, and
/// what must remain. After each command, a gc with no grace period finds nothing more the
/// rule calls dead (the command applied the whole rule, not a copy of its own), and fsck
/// finds no row pointing at a missing file.
@Suite struct LivenessTests {
    enum Command: Sendable, CustomStringConvertible {
        case rmi(String, force: Bool)
        case prune(all: Bool)
        case builderPrune(all: Bool)
        /// image prune, then every build-cache entry, then gc: `system prune` after its container
        /// prune, with the graph's containers standing for running ones (a prune keeps those).
        case systemPrune(all: Bool)

        /// Runs the command on `store`; system prune ends with its gc unless `gc` is false.
        func run(on store: Store, gc: Bool = true) async throws {
            switch self {
            case .rmi(let ref, let force): _ = try await store.removeImage(ref, force: force)
            case .prune(let all): _ = try await store.pruneImages(PruneOptions(all: all))
            case .builderPrune(let all): _ = try await store.pruneBuildCache(BuildCachePruneOptions(all: all))
            case .systemPrune(let all):
                _ = try await store.pruneImages(PruneOptions(all: all))
                _ = try await store.pruneBuildCache()
                if gc { _ = try await store.collectGarbage(GCOptions(grace: 0)) }
            }
        }

        var description: String {
            switch self {
            case .rmi(let r, let f): return "rmi\(f ? " -f" : "") \(r)"
            case .prune(let a): return "image prune\(a ? " -a" : "")"
            case .builderPrune(let a): return "builder prune\(a ? " -a" : "")"
            case .systemPrune(let a): return "system prune\(a ? " -a" : "")"
            }
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        var graph: GCCase
        var command: Command
        /// Diff names whose file index (layer_indexes row) exists before the command.
        var indexed: [String] = []
        var description: String { "\(command): \(graph.description)" }
    }

    static let base: [(chain: String, diff: String, parent: String?)] = [("c1", "d1", nil)]

    static let cases: [Case] = [
        Case(graph: GCCase(description: "a live lease holds a layer blob of the removed image",
                           layers: base, layerBlobs: [("b1", "d1", "none")],
                           images: [.init(name: "A", manifest: "mA", layers: [("c1", "b1")])],
                           tags: [("a:1", "A")], leases: [("pull", 600, ["b1"])],
                           survivors: ["b1"]),
             command: .rmi("a:1", force: false)),
        Case(graph: GCCase(description: "every encoding of the removed image's layer goes, and its file index",
                           layers: base, layerBlobs: [("b1", "d1", "none"), ("gz1", "d1", "gzip")],
                           images: [.init(name: "A", manifest: "mA", layers: [("c1", "b1")])],
                           tags: [("a:1", "A")], survivors: []),
             command: .rmi("a:1", force: false), indexed: ["d1"]),
        Case(graph: GCCase(description: "a layer another image shares stays, with its file index",
                           layers: [("c1", "d1", nil), ("c2", "d2", "c1")],
                           layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
                           images: [.init(name: "A", manifest: "mA", layers: [("c1", "b1")]),
                                    .init(name: "B", manifest: "mB", layers: [("c1", "b1"), ("c2", "b2")])],
                           tags: [("a:1", "A"), ("b:1", "B")],
                           survivors: ["B", "mB", "c1", "c2", "b1", "b2"]),
             command: .rmi("a:1", force: false), indexed: ["d1", "d2"]),
        Case(graph: GCCase(description: "the last platform of an index takes the other platforms' content",
                           layers: [("c1", "d1", nil), ("c2", "d2", nil)],
                           layerBlobs: [("l-amd", "d1", "gzip"), ("l-arm", "d2", "gzip")],
                           extraBlobs: ["m-arm", "ARM"],
                           images: [.init(name: "AMD", manifest: "m-amd", index: "idx", layers: [("c1", "l-amd")])],
                           edges: [("idx", "m-amd", "manifest"), ("idx", "m-arm", "manifest"),
                                   ("m-amd", "AMD", "config"), ("m-amd", "l-amd", "layer"), ("m-arm", "ARM", "config"), ("m-arm", "l-arm", "layer")],
                           tags: [("multi:1", "AMD")], survivors: []),
             command: .rmi("multi:1", force: false)),
        Case(graph: GCCase(description: "an untagged parent held by a lease stays",
                           layers: [("c1", "d1", nil), ("c2", "d2", "c1")],
                           layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
                           images: [.init(name: "P", manifest: "mP", layers: [("c1", "b1")]),
                                    .init(name: "C", manifest: "mC", layers: [("c1", "b1"), ("c2", "b2")], parent: "P")],
                           tags: [("c:1", "C")], leases: [("save", 600, ["image:P"])],
                           survivors: ["P", "mP", "c1", "b1"]),
             command: .rmi("c:1", force: false)),
        Case(graph: GCCase(description: "prune leaves a dangling image a lease holds",
                           layers: [("c1", "d1", nil), ("c2", "d2", nil)],
                           layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
                           images: [.init(name: "Held", manifest: "mH", layers: [("c1", "b1")]),
                                    .init(name: "Free", manifest: "mF", layers: [("c2", "b2")])],
                           leases: [("push", 600, ["image:Held"])],
                           survivors: ["Held", "mH", "c1", "b1"]),
             command: .prune(all: false), indexed: ["d1", "d2"]),
        Case(graph: GCCase(description: "prune -a keeps what containers use, tagged or not",
                           layers: [("c1", "d1", nil), ("c2", "d2", nil)],
                           layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
                           images: [.init(name: "Used", manifest: "mU", layers: [("c1", "b1")]),
                                    .init(name: "Tagged", manifest: "mT", layers: [("c2", "b2")])],
                           tags: [("t:1", "Tagged")], containers: [("ctr", "Used")],
                           survivors: ["Used", "mU", "c1", "b1"]),
             command: .prune(all: true)),
        Case(graph: GCCase(description: "builder prune takes the images only the cache kept",
                           layers: [("c1", "d1", nil), ("c2", "d2", nil)],
                           layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
                           images: [.init(name: "Step", manifest: "mS", layers: [("c1", "b1")]),
                                    .init(name: "Final", manifest: "mF", layers: [("c2", "b2")])],
                           tags: [("app:1", "Final")], buildCache: [("k1", "Step", 60), ("k2", "Final", 60)],
                           survivors: ["Final", "mF", "c2", "b2"]),
             command: .builderPrune(all: false), indexed: ["d1"]),
        Case(graph: GCCase(description: "system prune -a: only containers and leases keep anything",
                           layers: [("c1", "d1", nil), ("c2", "d2", nil)],
                           layerBlobs: [("b1", "d1", "none"), ("b2", "d2", "none")],
                           images: [.init(name: "Used", manifest: "mU", layers: [("c1", "b1")]),
                                    .init(name: "Cached", manifest: "mC", layers: [("c2", "b2")])],
                           containers: [("ctr", "Used")], buildCache: [("k", "Cached", 60)],
                           survivors: ["Used", "mU", "c1", "b1"]),
             command: .systemPrune(all: true)),
    ]

    @Test(arguments: cases)
    func commandsFollowTheRule(_ c: Case) async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        try await GCTests.build(c.graph, in: store)
        let d = GCCase.d
        if !c.indexed.isEmpty {
            try await store.db.write { db in
                for diff in c.indexed {
                    try db.execute(sql: "INSERT INTO layer_indexes(diff_id, entries, size, indexed_at) VALUES (?, 0, 0, 0)", arguments: [d(diff)])
                }
            }
        }
        try await c.command.run(on: store)
        var names: [String: String] = [:]
        for i in c.graph.images { for n in [i.name, i.manifest] + (i.index.map { [$0] } ?? []) { names[d(n)] = n } }
        for l in c.graph.layers { names[d(l.chain)] = l.chain }
        for b in c.graph.layerBlobs { names[d(b.blob)] = b.blob }
        for b in c.graph.extraBlobs { names[d(b)] = b }
        for (s, t, _) in c.graph.edges { names[d(s)] = s; names[d(t)] = t }
        let left = try await store.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM images UNION SELECT chain_id FROM layers UNION SELECT digest FROM blobs")
        }
        #expect(Set(left.compactMap { names[$0] }) == c.graph.survivors, "\(c)")
        // The file index lives exactly as long as a chain of its diffID.
        let indexes = Set(try await store.read { db in try String.fetchAll(db, sql: "SELECT diff_id FROM layer_indexes") })
        let chains = Set(try await store.read { db in try String.fetchAll(db, sql: "SELECT diff_id FROM layers") })
        #expect(indexes == Set(c.indexed.map(d)).intersection(chains), "\(c): file indexes")
        // Files follow rows once the queued unlinks ran.
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: store.paths.blobsDir.path))
        let blobRows = Set(try await store.read { db in try String.fetchAll(db, sql: "SELECT digest FROM blobs") }.map { String($0.dropFirst(7)) })
        #expect(files == blobRows, "\(c): files")
        // The command applied the whole rule: gc finds nothing more to free, and nothing it
        // keeps lacks its file.
        let more = try await store.collectGarbage(GCOptions(dryRun: true, grace: 0))
        #expect(more.imagesRemoved == 0 && more.blobsRemoved == 0 && more.layersRemoved == 0, "\(c): gc would still free \(more)")
        #expect(try await store.check(quick: true).clean, "\(c): fsck")
    }
    /// df's form of the rule (``Liveness/deadImagesCTE(_:)``, from the images that are not
    /// roots) names exactly the images gc's mark (``Liveness/liveImagesCTE(_:)``) does not
    /// reach, on random forests of parent links with random tags, containers, live and
    /// expired leases and old and recent build-cache entries (a fixed seed; 12 graphs of up to 60 images).
    @Test func dfsDeadImagesAreTheComplementOfGCsMark() async throws {
        var rng = SplitMix(seed: 0x5eed_0f_df)
        for round in 0..<12 {
            let dir = try TempDir()
            let store = try await dir.store()
            let n = Int(rng.next() % 60) + 1
            var g = GCCase(description: "random \(round)", survivors: [])
            for i in 0..<n {
                // A parent among the earlier images, or none; chains of any depth arise.
                let parent = i > 0 && rng.next() % 3 != 0 ? "I\(Int(rng.next() % UInt64(i)))" : nil
                g.images.append(.init(name: "I\(i)", manifest: "m\(i)", layers: [], parent: parent))
                switch rng.next() % 8 {
                case 0: g.tags.append(("t\(i):1", "I\(i)"))
                case 1: g.containers.append(("c\(i)", "I\(i)"))
                case 2: g.leases.append(("l\(i)", rng.next() % 2 == 0 ? 3600 : -3600, ["image:I\(i)"]))
                case 3: g.buildCache.append(("k\(i)", "I\(i)", rng.next() % 2 == 0 ? 60 : 90 * 86_400))
                default: break
                }
            }
            try await GCTests.build(g, in: store)
            let now = Int64(Date().timeIntervalSince1970)
            let args: StatementArguments = ["now": now, "cacheCutoff": now - Int64(GCOptions().buildCacheKeep)]
            let (dead, live, all) = try await store.read { db in
                (Set(try String.fetchAll(db, sql: Liveness.deadImagesCTE(.gc) + "SELECT id FROM dead_images", arguments: args)),
                 Set(try String.fetchAll(db, sql: Liveness.liveImagesCTE(.gc) + "SELECT id FROM live_images", arguments: args)),
                 Set(try String.fetchAll(db, sql: "SELECT id FROM images")))
            }
            #expect(dead == all.subtracting(live), "\(g.description): \(n) images")
            #expect(!live.isEmpty || g.tags.isEmpty, "\(g.description)")
        }
    }
}
