import Foundation
import GRDB

extension Store {
    /// The lock a run of the container holds (``start(_:hostNetwork:output:started:)``) from
    /// before its row says running until its exit is recorded.
    func runLockPath(_ id: String) -> String { containerDirs(id).base.appendingPathComponent("run.lock").path }

    /// Takes the container's run lock for a new run, or nil when a run holds it.
    ///
    /// Others take it for an instant too (``isRunning(_:)`` shared, interrupted-run recovery
    /// and a waiter for another process's run exclusive), so a lock that is busy is tried again
    /// for a quarter of a second before the container counts as running: a live run holds it
    /// for its whole life.
    func takeRunLock(_ id: String) async throws -> FileLock? {
        let path = runLockPath(id)
        for attempt in 0..<50 {
            if let lock = try FileLock(tryPath: path) { return lock }
            if attempt < 49 { try? await Task.sleep(nanoseconds: 5_000_000) }
        }
        return nil
    }

    /// The exit status recorded for a run whose process died without recording one, as
    /// dockerd reports a container that its restart found dead.
    public static let interruptedRunStatus: Int32 = 255

    /// Records as exited (status ``interruptedRunStatus``) every container whose row says
    /// running but whose run is gone: the process that ran it (`strata run`, `strata serve`)
    /// was killed (SIGKILL, a crash, a power cut) before it recorded the exit. A live run
    /// holds its container's run lock, so only rows nobody holds are touched, whichever
    /// process asks. A runtime process the dead run left behind is killed and its runtime
    /// state deleted first (runc `kill KILL`, `delete --force`), so the container is really
    /// stopped and can start again. `strata serve` calls this when it starts; `strata ps`,
    /// `GET /containers/json` and `GET /containers/{id}/json` before they answer.
    ///
    /// ```swift
    /// for id in try await store.recoverInterruptedRuns() { print("exited (255):", id.prefix(12)) }
    /// ```
    /// - Returns: the IDs recorded as exited.
    @discardableResult
    public func recoverInterruptedRuns() async throws -> [String] {
        let running = try await read { db in
            try String.fetchAll(db, sql: "SELECT id FROM containers WHERE state = 'running' ORDER BY id")
        }
        var recovered: [String] = []
        for id in running {
            // No lock file or no directory: not a run this store can vouch for; nil: a live run.
            guard let lock = try? FileLock(tryPath: runLockPath(id)) else { continue }
            if let runtime = try? OCIRuntime.find() {
                for args in [["kill", id, "KILL"], ["delete", "--force", id]] {
                    _ = try? await runtimeCommand(runtime, args)
                }
            }
            // Still running under the lock: no new run can have started meanwhile.
            if try await container(id).state == "running" {
                try await recordExit(id, status: Self.interruptedRunStatus)
                recovered.append(id)
            }
            withExtendedLifetime(lock) {}
        }
        return recovered
    }
}
