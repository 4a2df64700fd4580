import Foundation
import Strata
import Synchronization

/// The containers the server is running, as tasks (its only state): each runs
/// ``Store/start(_:hostNetwork:output:started:)``, which writes the container's log and
/// records its state and exit status in the store. The runner fans the output out to the
/// connections attached to the container and answers the `wait` requests when the run ends.
actor ContainerRunner {
    /// One piece of a container's output.
    typealias Chunk = (stream: ContainerStream, data: Data)

    private let store: Store
    private var tasks: [String: Task<Void, Never>] = [:]
    /// Attached connections by container ID, kept before a start (`docker run` attaches first).
    private let hubs = Attachments()
    /// The stdin of each container's current run, or of its next one when an attach with
    /// stdin came before the start (`docker run -i` attaches first). A container created
    /// with `OpenStdin` always runs with one: made at the start when no attach came first,
    /// it stays open for the attaches to come (`docker run -d -i`), as dockerd's stdin pipe.
    private var inputs: [String: ContainerInput] = [:]
    /// The terminal of each running TTY container, for resizes.
    private var terminals: [String: ContainerTerminal] = [:]
    /// The terminal size a TTY container was created with (`HostConfig.ConsoleSize`), for its
    /// next start: the process sees it from its first instruction.
    private var consoleSizes: [String: (rows: UInt16, columns: UInt16)] = [:]
    private var exitWaiters: [String: [CheckedContinuation<Int32?, Never>]] = [:]
    private var nextKey = 0
    private var stopping = false
    /// Restarts a restart policy scheduled (``RestartPolicy``), waiting out their delay.
    private var pendingRestarts: [String: Task<Void, Never>] = [:]
    /// The delay before each container's last restart and when its current run started:
    /// the next delay doubles unless that run lasted 10 s (dockerd's back-off).
    private var restartDelays: [String: Duration] = [:]
    private var runStarts: [String: ContinuousClock.Instant] = [:]
    /// Containers their policy is starting again right now (after the delay, before the run).
    private var startingByPolicy: Set<String> = []
    /// The restart policy of each container run here, as its run started (or as updated
    /// since): a run's end schedules nothing for a container without one.
    private var policies: [String: RestartPolicy] = [:]

    init(store: Store) {
        self.store = store
    }

    func isRunning(_ id: String) -> Bool { tasks[id] != nil }

    /// The server is shutting down (``stopAll()`` was called): endless streams end.
    var isStopping: Bool { stopping }

    /// Starts the container's command in a task; returns once the process is starting.
    /// Errors before that (no command, an unknown user, already running) are thrown.
    func start(_ id: String) async throws {
        guard !stopping else { throw EngineError(status: .serviceUnavailable, message: "the server is shutting down") }
        pendingRestarts.removeValue(forKey: id)?.cancel()
        let (ready, readyC) = AsyncStream<Void>.makeStream()
        let store = self.store
        let hubs = self.hubs
        let result = StartError()
        let size = consoleSizes.removeValue(forKey: id) ?? (24, 80)
        let container = try await store.container(id)
        policies[id] = container.restartPolicy
        let terminal = container.tty == true ? try ContainerTerminal(rows: size.rows, columns: size.columns) : nil
        // The stdin an attach prepared, else (OpenStdin) one of the run's own for later attaches.
        let input: ContainerInput?
        if let waiting = inputs[id] {
            input = waiting
        } else if container.openStdin == true {
            let made = try ContainerInput()
            inputs[id] = made
            input = made
        } else {
            input = nil
        }
        terminals[id] = terminal
        tasks[id] = Task {
            var status: Int32?
            do {
                status = try await store.start(id, input: input, terminal: terminal, output: { stream, data in
                    for c in hubs.table.withLock({ Array(($0[id] ?? [:]).values) }) { c.yield((stream, data)) }
                }, started: { readyC.yield() })
            } catch {
                result.error.withLock { $0 = error }
            }
            readyC.finish()
            self.finished(id, status: status)
        }
        runStarts[id] = .now
        for await _ in ready { return }
        if let e = result.error.withLock({ $0 }) { throw e }
    }

    /// Whether the container waits to be started again by its restart policy (dockerd's
    /// `restarting` state).
    func isRestarting(_ id: String) -> Bool { pendingRestarts[id] != nil || startingByPolicy.contains(id) }

    /// `docker update --restart` on a container: its next end follows the new policy.
    func policyChanged(_ id: String, _ policy: RestartPolicy?) {
        policies[id] = policy.flatMap { $0.name == .no ? nil : $0 }
    }

    /// A stop, kill or removal by hand: a restart the policy scheduled does not happen.
    func cancelRestart(_ id: String) {
        pendingRestarts.removeValue(forKey: id)?.cancel()
        restartDelays[id] = nil
    }

    /// After a run ended with `status`: when the container's restart policy says so, it is
    /// started again after dockerd's delay (100 ms, doubled each time up to a minute, back to
    /// 100 ms after a run of 10 s), unless stopped, removed or started by hand meanwhile.
    private func scheduleRestart(_ id: String, status: Int32) {
        let ran = runStarts.removeValue(forKey: id).map { ContinuousClock.now - $0 } ?? .zero
        guard policies.removeValue(forKey: id) != nil else { return }
        let store = self.store
        pendingRestarts[id] = Task {
            guard let c = try? await store.container(id), let policy = c.restartPolicy,
                  policy.shouldRestart(exitCode: status, restartCount: c.restartCount ?? 0, manuallyStopped: c.manuallyStopped == true) else {
                self.restartEnded(id)
                return
            }
            let delay = RestartPolicy.delay(after: await self.lastDelay(id), ran: ran)
            await self.setDelay(id, delay)
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled else { return }
            // Looked at again: a stop by hand from another process, or a removal, meanwhile.
            guard let now = try? await store.container(id), now.manuallyStopped != true, now.state != "running" else {
                self.restartEnded(id)
                return
            }
            await self.restartNow(id)
        }
    }

    private func lastDelay(_ id: String) -> Duration? { restartDelays[id] }
    private func setDelay(_ id: String, _ delay: Duration) { restartDelays[id] = delay }
    private func restartEnded(_ id: String) {
        pendingRestarts[id] = nil
        restartDelays[id] = nil
    }

    private func restartNow(_ id: String) async {
        // (Out of pendingRestarts, which start() cancels, but still restarting until it runs.)
        pendingRestarts[id] = nil
        guard !stopping, tasks[id] == nil else { return }
        startingByPolicy.insert(id)
        defer { startingByPolicy.remove(id) }
        do {
            try await store.noteStart(id, byPolicy: true)
            try await start(id)
        } catch {
            // A start that fails (the image's command is gone, a port in use) ends the chain,
            // as a failed start does under dockerd.
            restartDelays[id] = nil
        }
    }

    /// When the server starts: the containers whose restart policy says they run (dockerd's
    /// daemon start: `always` ones that ran before, `unless-stopped` ones not stopped by
    /// hand, `on-failure` ones whose last run failed within their retries).
    func startByPolicy() async {
        guard let all = try? await store.containers(all: true) else { return }
        for c in all where c.state != "running" && c.startedAt != nil {
            guard let p = c.restartPolicy,
                  p.startsWithRunner(exitCode: c.exitCode ?? 0, restartCount: c.restartCount ?? 0, manuallyStopped: c.manuallyStopped == true)
            else { continue }
            try? await start(c.id)
        }
    }

    /// The run of `id` ended (status nil: it did not start): attached streams end, waiters get
    /// the status.
    private func finished(_ id: String, status: Int32?) {
        tasks[id] = nil
        inputs[id] = nil
        terminals[id] = nil
        for c in hubs.table.withLock({ $0.removeValue(forKey: id) ?? [:] }).values { c.finish() }
        for w in exitWaiters.removeValue(forKey: id) ?? [] { w.resume(returning: status) }
        if !stopping, let status {
            scheduleRestart(id, status: status)
        } else {
            runStarts[id] = nil
            policies[id] = nil
        }
    }

    /// The output of the container's next (or current) run, until it ends.
    func attach(_ id: String) -> AsyncStream<Chunk> {
        let (stream, c) = AsyncStream<Chunk>.makeStream()
        nextKey += 1
        let key = nextKey
        hubs.table.withLock { $0[id, default: [:]][key] = c }
        c.onTermination = { [hubs] _ in hubs.table.withLock { _ = $0[id]?.removeValue(forKey: key) } }
        return stream
    }

    /// The stdin an attach feeds: the current run's (nil when it runs without one: what the
    /// client sends is dropped, as dockerd does for a container without an open stdin), or
    /// the next run's, made here when none is waiting yet. It stays here after the attach:
    /// closed when the attach ended it (`StdinOnce`), the next run reads what it holds, then
    /// end-of-file; open, the next run reads it and whatever later attaches send.
    func input(for id: String) throws -> ContainerInput? {
        if let i = inputs[id] { return i }
        if tasks[id] != nil { return nil }
        let i = try ContainerInput()
        inputs[id] = i
        return i
    }

    /// The size of the terminal of the container's next run (`HostConfig.ConsoleSize` at create).
    func setConsoleSize(_ id: String, rows: UInt16, columns: UInt16) {
        consoleSizes[id] = (rows, columns)
    }

    /// Resizes the terminal of a running TTY container (nothing for others).
    func resize(_ id: String, rows: UInt16, columns: UInt16) {
        terminals[id]?.resize(rows: rows, columns: columns)
    }

    /// The container is removed: a stdin waiting for its next run is dropped, and a write
    /// still waiting on it fails.
    func forget(_ id: String) {
        cancelRestart(id)
        guard tasks[id] == nil else { return }
        consoleSizes[id] = nil
        inputs.removeValue(forKey: id)?.cancel()
    }

    /// The end of this server's current run of the container: its exit status (nil inside:
    /// it could not start), or nil at once when none runs. One call on the actor, so a run
    /// cannot end between "does it run" and "wait for it" (a waiter added after the end
    /// would never be answered).
    func waitForCurrentRun(_ id: String) async -> Int32?? {
        guard tasks[id] != nil else { return .none }
        return .some(await withCheckedContinuation { exitWaiters[id, default: []].append($0) })
    }

    /// Waits for the end of the container's next run (or the current one) and returns its
    /// exit status; nil when the run could not start.
    func waitForExit(_ id: String) async -> Int32? {
        await withCheckedContinuation { exitWaiters[id, default: []].append($0) }
    }

    /// Kills the container's run, if any, and waits until it is recorded as exited.
    func kill(_ id: String) async {
        guard let t = tasks[id] else { return }
        t.cancel()
        await t.value
    }

    /// Waits until this server's run of the container, if any, has ended and been cleared
    /// (after a stop: before the next start).
    func settle(_ id: String) async {
        if let t = tasks[id] { await t.value }
    }

    /// Kills every running container (each is recorded as exited) and waits for the tasks.
    func stopAll() async {
        stopping = true
        for t in pendingRestarts.values { t.cancel() }
        pendingRestarts = [:]
        let running = Array(tasks.values)
        for t in running { t.cancel() }
        for t in running { await t.value }
    }
}

/// The connections attached to each container: written by the actor, read by the reader
/// threads of a run (which cannot wait for the actor), so under a lock of its own.
private final class Attachments: Sendable {
    let table = Mutex<[String: [Int: AsyncStream<ContainerRunner.Chunk>.Continuation]]>([:])
}

/// The error a run task met before its process started, for the start request to throw.
private final class StartError: Sendable {
    let error = Mutex<(any Error)?>(nil)
}
