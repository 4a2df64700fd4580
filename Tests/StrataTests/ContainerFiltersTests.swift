import Foundation
import Testing
@testable import Strata

/// `docker ps --filter` over a real store. The expectations are written from dockerd's rules
/// (the `docker ps` reference and moby's `daemon/list.go`), container by container, not by
/// asking ``ContainerFilters`` again.
@Suite struct ContainerFiltersTests {
    /// Six containers, created in this order:
    /// - `web-1`: base image, volume `data:/data`, ran `true` (exited 0)
    /// - `web-2`: base image, ran `exit 3` (exited 3)
    /// - `db`: base image, bind mount `<dir>/srv:/srv`, never started (created)
    /// - `kid`: the image committed from `web-1` (`filt/child:1`, built on base), created
    /// - an unnamed one: an unrelated image (`filt/lone:1`), created
    /// - `live`: base image, running `cat` until ``finish()`` (or the world goes) closes its stdin
    final class World: Sendable {
        let dir: TempDir
        let store: Store
        let base: Digest, child: Digest
        let web1: String, web2: String, db: String, kid: String, lone: String, live: String
        let bindSource: String
        let input: ContainerInput
        let run: Task<Int32, any Error>
        var all: Set<String> { [web1, web2, db, kid, lone, live] }

        /// The world, with `live` running; nil without runc (an issue under CI).
        static func make() async throws -> World? {
            guard Peer.require("runc") else { return nil }
            let dir = try TempDir()
            let store = try await dir.store()
            let base = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "filt/base:1").id
            try ArchiveFixtures.tar(dir.file("lone.tar").path, [("etc/lone", Data("alone\n".utf8))])
            _ = try await store.importRootfs(from: dir.file("lone.tar"), reference: "filt/lone:1")
            let bindSource = dir.file("srv").path
            try FileManager.default.createDirectory(atPath: bindSource, withIntermediateDirectories: true)
            func create(_ image: String, _ name: String?, _ command: [String] = ["/bin/true"], volumes: [String] = []) async throws -> String {
                try await store.createContainer(from: image, options: ContainerOptions(
                    name: name, command: command, snapshotter: .copy, volumes: try volumes.map { try VolumeMount(parsing: $0) })).id
            }
            let web1 = try await create("filt/base:1", "web-1", volumes: ["data:/data"])
            let web2 = try await create("filt/base:1", "web-2", ["/bin/sh", "-c", "exit 3"])
            let db = try await create("filt/base:1", "db", volumes: [bindSource + ":/srv"])
            #expect(try await store.start(web1) == 0)
            #expect(try await store.start(web2) == 3)
            let child = try await store.commit(web1, options: CommitOptions(reference: "filt/child:1")).id
            let kid = try await create("filt/child:1", "kid")
            let lone = try await create("filt/lone:1", nil)
            let live = try await create("filt/base:1", "live", ["/bin/cat"])
            let input = try ContainerInput()
            let (started, signal) = AsyncStream<Void>.makeStream()
            let run = Task { try await store.start(live, input: input, started: { signal.yield() }) }
            for await _ in started { break }
            return World(dir: dir, store: store, base: base, child: child, web1: web1, web2: web2, db: db, kid: kid, lone: lone,
                         live: live, bindSource: bindSource, input: input, run: run)
        }

        private init(dir: TempDir, store: Store, base: Digest, child: Digest, web1: String, web2: String, db: String, kid: String,
                     lone: String, live: String, bindSource: String, input: ContainerInput, run: Task<Int32, any Error>) {
            self.dir = dir; self.store = store; self.base = base; self.child = child
            self.web1 = web1; self.web2 = web2; self.db = db; self.kid = kid; self.lone = lone; self.live = live
            self.bindSource = bindSource; self.input = input; self.run = run
        }

        /// Ends `live` (end of its stdin) and waits for it: `cat` exits 0.
        func finish() async throws {
            input.close()
            #expect(try await run.value == 0)
        }

        /// A test that threw ends `live` too.
        deinit { input.close() }

        /// The IDs `Store.containers(all:filters:)` lists.
        func ids(all: Bool = true, _ f: ContainerFilters) async throws -> Set<String> {
            Set(try await store.containers(all: all, filters: f).map(\.id))
        }

        /// The IDs listed through filters by key (`ContainerFilters(_:)`).
        func ids(all: Bool = true, _ byKey: [String: [String]]) async throws -> Set<String> {
            try await ids(all: all, try ContainerFilters(byKey))
        }
    }

    @Test func eachKeyAsDockerdReadsIt() async throws {
        guard let w = try await World.make() else { return }
        // No filter: everything, or without all only what runs.
        #expect(try await w.ids(ContainerFilters()) == w.all)
        #expect(try await w.ids(all: false, ContainerFilters()) == [w.live])

        // status: one of the states, and it lists stopped containers without all.
        #expect(try await w.ids(all: false, ContainerFilters(statuses: ["exited"])) == [w.web1, w.web2])
        #expect(try await w.ids(all: false, ContainerFilters(statuses: ["created"])) == [w.db, w.kid, w.lone])
        #expect(try await w.ids(all: false, ContainerFilters(statuses: ["running"])) == [w.live])
        #expect(try await w.ids(all: false, ContainerFilters(statuses: ["paused", "dead"])) == [])

        // exited: containers that ran and stopped with the code; it does not imply all.
        #expect(try await w.ids(ContainerFilters(exitCodes: [3])) == [w.web2])
        #expect(try await w.ids(ContainerFilters(exitCodes: [0])) == [w.web1])
        #expect(try await w.ids(ContainerFilters(exitCodes: [0, 3])) == [w.web1, w.web2])
        #expect(try await w.ids(all: false, ContainerFilters(exitCodes: [0])) == [])

        // name: exact, unanchored regular expression, the `/NAME` form, a short ID for
        // an unnamed container; a malformed expression only matches exactly.
        #expect(try await w.ids(ContainerFilters(names: ["web-1"])) == [w.web1])
        #expect(try await w.ids(ContainerFilters(names: ["web"])) == [w.web1, w.web2])
        #expect(try await w.ids(ContainerFilters(names: ["^web-[12]$"])) == [w.web1, w.web2])
        // The unnamed container goes by its random short ID, which starts with "db" once in 256.
        #expect(try await w.ids(ContainerFilters(names: ["/db"])) == Set([w.db] + (w.lone.hasPrefix("db") ? [w.lone] : [])))
        #expect(try await w.ids(ContainerFilters(names: ["^/?(db|kid)$"])) == [w.db, w.kid])
        #expect(try await w.ids(ContainerFilters(names: ["^" + String(w.lone.prefix(12)) + "$"])) == [w.lone])
        #expect(try await w.ids(ContainerFilters(names: ["[web"])) == [])

        // id: the full ID, a prefix, or an expression.
        #expect(try await w.ids(ContainerFilters(ids: [w.web2])) == [w.web2])
        #expect(try await w.ids(ContainerFilters(ids: [String(w.web2.prefix(10))])) == [w.web2])
        #expect(try await w.ids(ContainerFilters(ids: ["^" + String(w.db.prefix(6)), String(w.kid.prefix(8))])) == [w.db, w.kid])

        // volume: a volume name, a bind source, or a destination.
        #expect(try await w.ids(ContainerFilters(volumes: ["data"])) == [w.web1])
        #expect(try await w.ids(ContainerFilters(volumes: ["/data"])) == [w.web1])
        #expect(try await w.ids(ContainerFilters(volumes: [w.bindSource])) == [w.db])
        #expect(try await w.ids(ContainerFilters(volumes: ["/srv", "data"])) == [w.web1, w.db])
        #expect(try await w.ids(ContainerFilters(volumes: ["nothing"])) == [])

        // No health check, never a task, no labels, networks or ports.
        #expect(try await w.ids(ContainerFilters(health: ["none"])) == w.all)
        #expect(try await w.ids(ContainerFilters(health: ["healthy", "unhealthy", "starting"])) == [])
        #expect(try await w.ids(ContainerFilters(health: ["healthy", "none"])) == w.all)
        #expect(try await w.ids(ContainerFilters(isTask: [false])) == w.all)
        #expect(try await w.ids(ContainerFilters(isTask: [true])) == [])
        #expect(try await w.ids(ContainerFilters(labels: ["app"])) == [])
        #expect(try await w.ids(ContainerFilters(networks: ["bridge"])) == [])
        #expect(try await w.ids(ContainerFilters(published: ["80"])) == [])
        #expect(try await w.ids(ContainerFilters(exposed: ["80/tcp"])) == [])
        // Networks, as dockerd: by name or ID prefix. These are all on `none`; one created
        // with the host's network is on `host`, and is recorded so.
        #expect(try await w.ids(ContainerFilters(networks: ["none"])) == w.all)
        #expect(try await w.ids(ContainerFilters(networks: [String(ContainerNetwork.none.id.prefix(12))])) == w.all)
        var options = ContainerOptions()
        options.hostNetwork = true
        let shared = try await w.store.createContainer(from: "filt/lone:1", options: options)
        #expect(try await w.store.container(shared.id).network == .host)
        #expect(try await w.ids(ContainerFilters(networks: ["host"])) == [shared.id])
        #expect(try await w.ids(ContainerFilters(networks: ["host", "none"])) == w.all.union([shared.id]))
        _ = try await w.store.removeContainer(shared.id)
        try await w.finish()
    }

    @Test func ancestorBeforeAndSince() async throws {
        guard let w = try await World.make() else { return }
        // ancestor: by name, by ID (full, short), and every image built on it.
        let fromBase: Set = [w.web1, w.web2, w.db, w.kid, w.live]
        #expect(try await w.ids(ContainerFilters(ancestors: ["filt/base:1"])) == fromBase)
        #expect(try await w.ids(ContainerFilters(ancestors: [w.base.string])) == fromBase)
        #expect(try await w.ids(ContainerFilters(ancestors: [String(w.base.encoded.prefix(12))])) == fromBase)
        #expect(try await w.ids(ContainerFilters(ancestors: ["filt/child:1"])) == [w.kid])
        #expect(try await w.ids(ContainerFilters(ancestors: [w.child.string])) == [w.kid])
        #expect(try await w.ids(ContainerFilters(ancestors: ["filt/lone:1"])) == [w.lone])
        // An image the store does not have matches nothing; the others still do.
        #expect(try await w.ids(ContainerFilters(ancestors: ["nosuch:1"])) == [])
        #expect(try await w.ids(ContainerFilters(ancestors: ["nosuch:1", "filt/lone:1"])) == [w.lone])

        // before/since: created strictly before the earliest / after the latest named;
        // by name or ID; they list stopped containers without all, as with dockerd.
        #expect(try await w.ids(ContainerFilters(before: ["db"])) == [w.web1, w.web2])
        #expect(try await w.ids(ContainerFilters(since: ["db"])) == [w.kid, w.lone, w.live])
        #expect(try await w.ids(ContainerFilters(since: [w.kid])) == [w.lone, w.live])
        #expect(try await w.ids(ContainerFilters(before: ["kid", "db"])) == [w.web1, w.web2])
        #expect(try await w.ids(ContainerFilters(since: ["web-1", "kid"])) == [w.lone, w.live])
        #expect(try await w.ids(ContainerFilters(before: ["kid"], since: ["web-1"])) == [w.web2, w.db])
        #expect(try await w.ids(all: false, ContainerFilters(since: ["db"])) == [w.kid, w.lone, w.live])
        #expect(try await w.ids(all: false, ContainerFilters(before: ["web-2"])) == [w.web1])
        await #expect { try await w.store.containers(filters: ContainerFilters(before: ["nosuch"])) } throws: {
            ($0 as? StrataError)?.code == .containerNotFound
        }
        try await w.finish()
    }

    @Test func sameKeyIsAnyDifferentKeysAreAll() async throws {
        guard let w = try await World.make() else { return }
        #expect(try await w.ids(all: false, ["status": ["created", "exited"]]) == [w.web1, w.web2, w.db, w.kid, w.lone])
        #expect(try await w.ids(all: false, ["status": ["exited"], "name": ["web"]]) == [w.web1, w.web2])
        #expect(try await w.ids(all: false, ["status": ["exited"], "name": ["2$"]]) == [w.web2])
        #expect(try await w.ids(["status": ["created"], "ancestor": ["filt/base:1"]]) == [w.db, w.kid])
        #expect(try await w.ids(["name": ["web-1"], "exited": ["3"]]) == [])
        #expect(try await w.ids(["name": ["web-1", "web-2"], "exited": ["3"]]) == [w.web2])
        #expect(try await w.ids(["ancestor": ["filt/base:1"], "since": ["db"], "status": ["running"]]) == [w.live])
        #expect(try await w.ids(["volume": ["data"], "health": ["none"], "is-task": ["false"]]) == [w.web1])
        #expect(try await w.ids(["volume": ["data"], "label": ["app"]]) == [])
        try await w.finish()
    }

    @Test func parsesDockerKeysAndRefusesBadInput() throws {
        let f = try ContainerFilters([
            "id": ["ab"], "name": ["web", "db"], "status": ["exited"], "exited": ["0", "-1"], "ancestor": ["busybox"],
            "before": ["a"], "since": ["b"], "volume": ["/data"], "health": ["none"], "is-task": ["TRUE", "0"],
            "label": ["k=v"], "network": ["host"], "publish": ["80"], "expose": ["443"],
        ])
        #expect(f == ContainerFilters(ids: ["ab"], names: ["web", "db"], statuses: ["exited"], exitCodes: [0, -1],
                                      ancestors: ["busybox"], before: ["a"], since: ["b"], volumes: ["/data"], health: ["none"],
                                      isTask: [true, false], labels: ["k=v"], networks: ["host"], published: ["80"], exposed: ["443"]))
        #expect(try ContainerFilters([:]) == ContainerFilters())

        // dockerd's 400 messages, word for word.
        let bad: [([String: [String]], String)] = [
            (["colour": ["red"]], "invalid filter 'colour'"),
            (["Status": ["exited"]], "invalid filter 'Status'"),
            (["status": ["exited", "sleepy"]], "invalid filter 'status=sleepy'"),
            (["status": ["Exited"]], "invalid filter 'status=Exited'"),
            (["exited": ["x"]], "invalid filter 'exited=x'"),
            (["exited": ["99999999999"]], "invalid filter 'exited=99999999999'"),
            (["health": ["sick"]], "invalid filter 'health=sick'"),
            (["is-task": ["maybe"]], "invalid filter 'is-task=maybe'"),
        ]
        for (byKey, message) in bad {
            #expect { _ = try ContainerFilters(byKey) } throws: { e in
                let e = e as? StrataError
                return e?.code == .invalidArgument && e?.message == message
            }
        }
    }
}
