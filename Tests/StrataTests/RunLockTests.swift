import Foundation
import Testing
@testable import Strata

/// The run lock says whether a run is live, and every other process may look at it at any
/// moment (`strata ps`, `docker ps` through `strata serve`, recovery, a waiter). A look must
/// never make a start fail as "already running".
@Suite struct RunLockTests {
    /// Another process's looks at the lock: it takes it shared for 100 µs, lets it go for
    /// 100 µs, over and over (an open file description of its own, as another process has).
    final class Prober: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private(set) var looks = 0
        let done = DispatchSemaphore(value: 0)

        init(path: String) {
            Thread.detachNewThread { [self] in
                let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                defer { close(fd); done.signal() }
                while !isStopped {
                    if flock(fd, LOCK_SH | LOCK_NB) == 0 {
                        usleep(100)
                        flock(fd, LOCK_UN)
                        lock.withLock { looks += 1 }
                    }
                    usleep(100)
                }
            }
        }

        var isStopped: Bool { lock.withLock { stopped } }

        func stop() -> Int {
            lock.withLock { stopped = true }
            done.wait()
            return lock.withLock { looks }
        }
    }

    @Test func looksAtTheLockNeverRefuseAStart() async throws {
        guard Peer.require("runc") else { return }
        let dir = try TempDir()
        let store = try await dir.store()
        _ = try await store.importRootfs(from: try Fixtures.busyboxRootfs(in: dir), reference: "lock/base:1")
        let id = try await store.createContainer(from: "lock/base:1", options: ContainerOptions(
            name: "probed", command: ["/bin/true"], snapshotter: .copy)).id
        let prober = Prober(path: store.runLockPath(id))
        var refused = 0
        for _ in 0..<12 {
            do {
                #expect(try await store.start(id) == 0)
            } catch let e as StrataError where e.code == .conflict {
                refused += 1
            }
        }
        let looks = prober.stop()
        #expect(refused == 0, "\(refused) of 12 starts refused while another process looked at the lock")
        #expect(looks > 100, "the prober looked \(looks) times")
        // A live run still holds it: a start meanwhile is refused, and the look says running.
        let input = try ContainerInput()
        let live = try await store.createContainer(from: "lock/base:1", options: ContainerOptions(
            name: "live", command: ["/bin/cat"], snapshotter: .copy))
        let (started, signal) = AsyncStream<Void>.makeStream()
        let run = Task { try await store.start(live.id, input: input, started: { signal.yield() }) }
        for await _ in started { break }
        #expect(try await store.isRunning(live.id))
        await #expect(throws: StrataError.self) { _ = try await store.start(live.id) }
        input.close()
        #expect(try await run.value == 0)
        #expect(try await !store.isRunning(live.id))
    }
}
