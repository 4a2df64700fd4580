import Foundation
import GRDB
import Testing
@testable import Strata

/// The store's events (`docker events`): written by the transaction of each change, so every
/// writer records them, in order, and a change that fails records none.
@Suite struct StoreEventTests {
    /// The events from `since` to now, as (type, action, actor, attributes).
    static func recorded(_ store: Store, since: Date, filters: EventFilters = EventFilters()) async throws -> [StoreEvent] {
        var out: [StoreEvent] = []
        for try await e in store.events(since: since, until: Date().addingTimeInterval(0.01), filters: filters, poll: .milliseconds(20)) {
            out.append(e)
        }
        return out
    }

    @Test func changesAreRecordedInOrderWithDockersWords() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let since = Date().addingTimeInterval(-0.01)
        let ids = try ArchiveFixtures.legacyDockerArchive(dir.file("a.tar").path, in: dir)
        _ = try await store.load(from: dir.file("a.tar"))
        try await store.tag("base:1", as: "other/base:2")
        try await store.tag("app:1", as: "other/base:2")  // moves the tag: an untag and a tag
        var options = ContainerOptions()
        options.name = "c1"
        options.labels = ["team": "x"]
        let c = try await store.createContainer(from: "app:1", options: options)
        _ = try await store.renameContainer("c1", to: "c2")
        _ = try await store.removeContainer("c2")
        _ = try await store.createVolume("v1")
        _ = try await store.removeVolumes(["v1"])
        _ = try await store.removeImage("base:1")

        let events = try await Self.recorded(store, since: since)
        let seen = events.map { "\($0.type) \($0.action) \($0.actorID) \($0.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))" }
        let (b, a) = (ids.base.string, ids.app.string)
        #expect(seen == [
            "image tag \(b) name=base:1", "image load \(b) name=\(b)",
            "image tag \(a) name=app:1", "image tag \(a) name=app:latest", "image load \(a) name=\(a)",
            "image tag \(b) name=other/base:2",
            "image untag \(b) name=\(b)", "image tag \(a) name=other/base:2",
            "container create \(c.id) image=app:1,name=c1,team=x",
            "container rename \(c.id) image=app:1,name=c2,oldName=/c1,team=x",
            "container destroy \(c.id) image=app:1,name=c2,team=x",
            "volume create v1 driver=local", "volume destroy v1 driver=local",
            "image untag \(b) name=\(b)",
        ], "\(seen.joined(separator: "\n"))")
        #expect(events.map(\.sequence) == events.map(\.sequence).sorted())
        // Their times are when they happened: after `since`, before now (a loaded parallel run
        // may take minutes between the two).
        let now = Date().addingTimeInterval(1)
        #expect(events.allSatisfy { $0.time >= since.addingTimeInterval(-1) && $0.time <= now }, "\(events.map(\.time)) \(since) \(now)")

        // Filters, as docker events --filter.
        var f = EventFilters()
        f.types = ["container"]
        #expect(try await Self.recorded(store, since: since, filters: f).map(\.action) == ["create", "rename", "destroy"])
        f = EventFilters()
        f.images = ["app"]
        #expect(try await Self.recorded(store, since: since, filters: f).map(\.action) == ["tag", "tag", "create", "rename", "destroy"])
        f = EventFilters()
        f.labels = ["team=x"]
        f.actions = ["destroy"]
        #expect(try await Self.recorded(store, since: since, filters: f).map(\.actorID) == [c.id])
        f = EventFilters()
        f.containers = ["c2"]
        #expect(try await Self.recorded(store, since: since, filters: f).map(\.action) == ["rename", "destroy"])
    }

    /// The operations that change no row of their own record dockerd's events too: a commit
    /// (after its tag), a save; and image events carry the image's labels, as dockerd's.
    @Test func operationsRecordTheirEventsWithTheImagesLabels() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try ArchiveFixtures.legacyDockerArchive(dir.file("a.tar").path, in: dir)
        _ = try await store.load(from: dir.file("a.tar"))
        var options = ContainerOptions()
        options.name = "c1"
        options.labels = ["team": "x"]
        let c = try await store.createContainer(from: "app:1", options: options)
        // What follows, by sequence (a loaded run may give the create the same millisecond).
        let after = try await store.read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM events") } ?? 0
        let since = Date().addingTimeInterval(-1)
        // The container's label goes into the image (as dockerd's commit), and -c adds one.
        let snap = try await store.commit("c1", options: CommitOptions(message: "first", edits: [.label(key: "tier", value: "db")], reference: "snap:1"))
        try await store.save(["snap:1"], to: dir.file("snap.tar"))
        _ = try await store.removeImage("snap:1")

        let seen = try await Self.recorded(store, since: since).filter { $0.sequence > after }.map {
            "\($0.type) \($0.action) \($0.actorID) \($0.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"
        }
        let s = snap.id.string
        #expect(seen == [
            "image tag \(s) name=snap:1,team=x,tier=db",
            "container commit \(c.id) comment=first,image=app:1,imageID=\(s),imageRef=snap:1,name=c1,team=x",
            "image save \(s) name=\(s),team=x,tier=db",
            "image untag \(s) name=\(s),team=x,tier=db",
            "image delete \(s) name=\(s)",
        ], "\(seen.joined(separator: "\n"))")

        // dockerd's event filter: an exec's action carries its command, and naming one of
        // those actions makes every value a prefix.
        let exec = StoreEvent(sequence: 1, timeNano: 0, type: "container", action: "exec_start: sh -c true", actorID: c.id, attributes: [:])
        let start = StoreEvent(sequence: 2, timeNano: 0, type: "container", action: "start", actorID: c.id, attributes: [:])
        #expect(try EventFilters(["event": ["exec_start"]]).matches(exec))
        #expect(try !EventFilters(["event": ["exec_start"]]).matches(start))
        #expect(try !EventFilters(["event": ["exec"]]).matches(exec))
        #expect(try EventFilters(["event": ["exec_create", "st"]]).matches(start))
        #expect(try !EventFilters(["event": ["st"]]).matches(start))
    }

    /// A change that is refused records nothing; another process's changes (a second open
    /// of the store, as the CLI beside `strata serve`) reach a reader that follows the events.
    @Test func onlyCommittedChangesAndOtherWritersToo() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try ArchiveFixtures.legacyDockerArchive(dir.file("a.tar").path, in: dir)
        _ = try await store.load(from: dir.file("a.tar"))
        let since = Date()
        await #expect(throws: StrataError.self) { try await store.tag("nosuch:1", as: "x:1") }
        await #expect(throws: StrataError.self) { _ = try await store.removeImage("nosuch:2") }
        #expect(try await Self.recorded(store, since: since).isEmpty)

        // Follow from now on; the other "process" tags; the follower sees it within the poll.
        let other = try await Store.open(at: dir.file("store"))
        let from = Date()
        let follower = Task { () -> StoreEvent? in
            for try await e in store.events(since: from, poll: .milliseconds(20)) { return e }
            return nil
        }
        try await Task.sleep(for: .milliseconds(100))
        try await other.tag("app:1", as: "seen:1")
        let got = try await withThrowingTaskGroup(of: StoreEvent?.self) { group in
            group.addTask { try await follower.value }
            group.addTask { try await Task.sleep(for: .seconds(60)); follower.cancel(); return nil }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        #expect(got?.action == "tag" && got?.attributes["name"] == "seen:1", "\(String(describing: got))")
    }

    /// The table is bounded: every thousandth event drops those more than 10,000 back.
    @Test func eventsAreBounded() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        try await store.write { db in
            for i in 0..<12_500 {
                try Store.recordEvent(db, type: "volume", action: "create", actor: "v\(i)", attributes: [:])
            }
        }
        let (count, oldest) = try await store.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0, try String.fetchOne(db, sql: "SELECT actor_id FROM events ORDER BY seq LIMIT 1"))
        }
        #expect(count >= 10_000 && count <= 11_000, "\(count)")
        #expect(oldest != "v0")
    }
}
