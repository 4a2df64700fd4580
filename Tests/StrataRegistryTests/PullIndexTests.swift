import Foundation
import Testing
@testable import Strata
import StrataRegistry

/// A pull indexes its layers in the pass that verifies them, as load does.
@Suite struct PullIndexTests {
    @Test func pulledLayersAreIndexedInTheSamePass() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl") else { return }
        let reg = try LocalRegistry()
        let layout = try RegistryTests.layout(reg.dir)
        let (status, out) = try run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:\(layout):img", "docker://\(reg.host)/index/app:1"])
        #expect(status == 0, "\(out)")
        let store = try await Store.open(at: reg.dir.appendingPathComponent("store"))
        _ = try await Registry.pull("\(reg.host)/index/app:1", into: store)
        let layers = try await store.layers(of: "\(reg.host)/index/app:1")
        let indexed = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM layer_indexes") }
        #expect(indexed == Set(layers.map(\.diffID)).count)
        // The same answer as loading the layout itself.
        let loaded = try await Store.open(at: reg.dir.appendingPathComponent("loaded"))
        let img = try await loaded.load(from: URL(fileURLWithPath: layout))
        let want = try await loaded.files(in: img[0].id.string).map { "\($0.path) \($0.entry.size) \($0.entry.digest?.string ?? "")" }
        let got = try await store.files(in: "\(reg.host)/index/app:1").map { "\($0.path) \($0.entry.size) \($0.entry.digest?.string ?? "")" }
        #expect(!got.isEmpty)
        #expect(got == want)
    }
}
