import Foundation
import Testing
@testable import Strata

/// `docker volume ls --filter` over a real store, with expectations written from dockerd's
/// rules (the `docker volume ls` reference), volume by volume.
@Suite struct VolumeFiltersTests {
    @Test func eachKeyAndTheirCombinations() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "vf/base:1")
        try await store.createVolume("data2")
        try await store.createVolume("cache")
        // Creating the container creates `data1`, which it then uses.
        _ = try await store.createContainer(from: "vf/base:1", options: ContainerOptions(snapshotter: .copy, volumes: [try VolumeMount(parsing: "data1:/d")]))
        func names(_ byKey: [String: [String]]) async throws -> [String] {
            try await store.volumes(filters: try VolumeFilters(byKey)).map(\.name)
        }
        // Listed by name, whatever the filter.
        #expect(try await names([:]) == ["cache", "data1", "data2"])
        // dangling: used by no container (true, 1, any case) or by one (false, 0).
        #expect(try await names(["dangling": ["true"]]) == ["cache", "data2"])
        #expect(try await names(["dangling": ["1"]]) == ["cache", "data2"])
        #expect(try await names(["dangling": ["FALSE"]]) == ["data1"])
        #expect(try await names(["dangling": ["0", "true"]]) == ["cache", "data1", "data2"])
        // name: exact or an unanchored expression; alternatives within the key.
        #expect(try await names(["name": ["data1"]]) == ["data1"])
        #expect(try await names(["name": ["data"]]) == ["data1", "data2"])
        #expect(try await names(["name": ["^c", "2$"]]) == ["cache", "data2"])
        #expect(try await names(["name": ["nothing"]]) == [])
        // driver: every volume is local; label: none has labels.
        #expect(try await names(["driver": ["local"]]) == ["cache", "data1", "data2"])
        #expect(try await names(["driver": ["nfs"]]) == [])
        #expect(try await names(["label": ["k"]]) == [])
        // Different keys must all match.
        #expect(try await names(["name": ["data"], "dangling": ["true"]]) == ["data2"])
        #expect(try await names(["name": ["data"], "driver": ["local"], "dangling": ["false"]]) == ["data1"])
        #expect(try await names(["name": ["data"], "label": ["k"]]) == [])
        // The typed form is the same filter.
        #expect(try VolumeFilters(["name": ["a"], "dangling": ["true"], "driver": ["local"], "label": ["k=v"]])
                == VolumeFilters(names: ["a"], dangling: [true], drivers: ["local"], labels: ["k=v"]))
        #expect(try await store.volumes(filters: VolumeFilters(dangling: [false])).map(\.name) == ["data1"])
    }

    @Test func refusesWhatDockerdRefuses() {
        let bad: [([String: [String]], String)] = [
            (["colour": ["red"]], "invalid filter 'colour'"),
            (["dangling": ["maybe"]], "invalid filter 'dangling=maybe'"),
            (["dangling": ["true", "yes"]], "invalid filter 'dangling=yes'"),
        ]
        for (byKey, message) in bad {
            #expect { _ = try VolumeFilters(byKey) } throws: { e in
                let e = e as? StrataError
                return e?.code == .invalidArgument && e?.message == message
            }
        }
    }
}
