import Foundation

/// Signalling and stopping a running container (`docker kill`, `docker stop`), from whichever
/// process runs it: a run holds its container's run lock, and its process is known to the OCI
/// runtime under the store's `runtime/` directory, so `strata stop` reaches a container
/// `strata serve` started, and the other way round.
extension Store {
    /// Whether the container's command runs now: its row says running and a live run holds
    /// its run lock (a row left running by a killed process is not running).
    public func isRunning(_ ref: String) async throws -> Bool {
        let c = try await container(ref)
        return try isRunning(id: c.id, state: c.state)
    }

    func isRunning(id: String, state: String) throws -> Bool {
        guard state == "running" else { return false }
        guard FileManager.default.fileExists(atPath: runLockPath(id)) else { return false }
        // Shared, taken at once: no run holds it (a run holds it exclusive), so none is live.
        // Released right away; probes never exclude each other, and a start that meets one
        // tries again (``takeRunLock(_:)``).
        return try FileLock(tryPath: runLockPath(id), mode: .shared) == nil
    }

    /// Sends `signal` to the container's process (`docker kill [-s SIGNAL]`). Throws a conflict
    /// error when the container is not running. The process decides what the signal does;
    /// its run records the exit as usual (128 + the signal when one ended it). SIGKILL
    /// returns once that exit is recorded (10 s at most), as dockerd's kill does.
    ///
    /// ```swift
    /// try await store.kill("web", signal: try ContainerSignal("HUP"))
    /// ```
    public func kill(_ ref: String, signal: ContainerSignal = .kill) async throws {
        let c = try await container(ref)
        guard try isRunning(id: c.id, state: c.state) else { throw Self.notRunning(c) }
        try UserNamespace.requireEntered(for: "signalling a container", ownersOnly: false)
        let runtime = try OCIRuntime.find()
        guard try await waitForRuntime(c.id, runtime: runtime) else { throw Self.notRunning(c) }
        // As dockerd: a container stopped or killed by hand is not started again by its
        // restart policy (until it is started by hand, or `always` and its server starts).
        if c.restartPolicy != nil, c.manuallyStopped != true { try await updateContainer(c.id) { $0.manuallyStopped = true } }
        // As dockerd: a frozen process gets the signal once thawed.
        try await thawIfPaused(c)
        // Recorded as the signal goes, so that it comes before the `die` the signal may cause
        // (the run records that as soon as the process ends), as dockerd orders them. Best
        // effort: a store that cannot take a row (a full disk) must not keep a kill from going.
        try? await recordContainerEvent(c.id, action: "kill", extra: ["signal": String(signal.number)])
        let (status, _, err) = try await runtimeCommand(runtime, ["kill", c.id, String(signal.number)])
        guard status == 0 else {
            guard try await isRunning(c.id) else { throw Self.notRunning(c) }
            throw StrataError(.io, "cannot send \(signal) to container \(String(c.id.prefix(12))): \(err.isEmpty ? "\(runtime.path) kill exited \(status)" : err)")
        }
        // As dockerd: SIGKILL returns once the run is over and its exit recorded (up to 10 s),
        // so a `docker rm` or `inspect` right after sees it exited.
        if signal == .kill { _ = try await waitForRunEnd(c.id, timeout: .seconds(10)) }
    }

    /// Stops the container as `docker stop` does: its stop signal (`signal`, else the one it
    /// was created with, else the image's `STOPSIGNAL`, else SIGTERM), then SIGKILL once
    /// `timeout` passed (nil: the container's ``ContainerInfo/stopTimeout``, else 10 s; zero
    /// kills at once). Returns once the exit is recorded: true, or false when it was not running.
    ///
    /// ```swift
    /// try await store.stop("web", timeout: .seconds(2))
    /// print(try await store.container("web").exitCode ?? -1)   // 143, or 137 after the timeout
    /// ```
    @discardableResult
    public func stop(_ ref: String, timeout: Duration? = nil, signal: ContainerSignal? = nil) async throws -> Bool {
        let c = try await container(ref)
        guard try isRunning(id: c.id, state: c.state) else { return false }
        let wait = timeout ?? c.stopTimeout.map { $0 < 0 ? .seconds(Int64(Int32.max)) : .seconds($0) } ?? .seconds(10)
        try await stopRunning(c, timeout: wait, signal: signal)
        // As dockerd: `kill`, `die`, then `stop` once it is down.
        try? await recordContainerEvent(c.id, action: "stop")
        return true
    }

    private func stopRunning(_ c: ContainerInfo, timeout: Duration, signal: ContainerSignal?) async throws {
        var first = signal ?? .term
        let imageSignal = signal == nil && c.stopSignal == nil ? try await inspect(c.imageID.string).config.config?.StopSignal : nil
        if signal == nil, let s = c.stopSignal ?? imageSignal, !s.isEmpty {
            first = (try? ContainerSignal(s)) ?? .term
        }
        if timeout > .zero, first != .kill {
            do {
                try await kill(c.id, signal: first)
            } catch let e as StrataError where e.code == .conflict {
                return  // it ended on its own meanwhile
            }
            if try await waitForRunEnd(c.id, timeout: timeout) { return }
        }
        do {
            try await kill(c.id, signal: .kill)
        } catch let e as StrataError where e.code == .conflict {
            return
        }
        // A killed process goes at once; its run then records the exit.
        guard try await waitForRunEnd(c.id, timeout: .seconds(30)) else {
            throw StrataError(.io, "container \(String(c.id.prefix(12))) did not stop within 30 s of SIGKILL")
        }
    }

    /// Waits until the container's run ended and recorded its exit; false after `timeout`.
    func waitForRunEnd(_ id: String, timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while try await isRunning(id) {
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Records a start for the restart policy: by hand (`docker start`, `restart`: the count
    /// goes back to 0 and a stop by hand is forgotten) or by the policy (one more restart).
    public func noteStart(_ ref: String, byPolicy: Bool) async throws {
        let c = try await container(ref)
        guard c.restartPolicy != nil || c.manuallyStopped != nil || c.restartCount != nil else { return }
        try await updateContainer(c.id) { info in
            if byPolicy {
                info.restartCount = (info.restartCount ?? 0) + 1
            } else {
                info.restartCount = nil
                info.manuallyStopped = nil
            }
        }
    }

    /// Records a stop by hand of a container that was not running (its restart was pending).
    public func markStoppedByHand(_ ref: String) async throws {
        let c = try await container(ref)
        try await updateContainer(c.id) { $0.manuallyStopped = true }
    }

    /// Sets the restart policy (`docker update --restart`); nil or `no` removes it.
    public func updateRestartPolicy(_ ref: String, _ policy: RestartPolicy?) async throws {
        let c = try await container(ref)
        if c.autoRemove == true, let p = policy, p.name != .no {
            throw StrataError(.invalidArgument, "conflicting options: cannot combine a restart policy (\(p)) with auto-remove (--rm)")
        }
        try await updateContainer(c.id) { $0.restartPolicy = policy.flatMap { $0.name == .no ? nil : $0 } }
    }

    /// Freezes the container's processes (`docker pause`, runc's freezer): they keep their
    /// state and get no CPU until ``unpause(_:)``. Throws a conflict error when it is not
    /// running or already paused.
    public func pause(_ ref: String) async throws {
        try await freeze(ref, paused: true)
    }

    /// Thaws a container ``pause(_:)`` froze (`docker unpause`). Throws a conflict error when
    /// it is not paused.
    public func unpause(_ ref: String) async throws {
        try await freeze(ref, paused: false)
    }

    private func freeze(_ ref: String, paused: Bool) async throws {
        let c = try await container(ref)
        guard try isRunning(id: c.id, state: c.state) else { throw Self.notRunning(c) }
        let name = c.name ?? String(c.id.prefix(12))
        if paused, c.paused == true { throw StrataError(.conflict, "container \(name) is already paused") }
        if !paused, c.paused != true { throw StrataError(.conflict, "container \(name) is not paused") }
        try UserNamespace.requireEntered(for: "pausing a container", ownersOnly: false)
        let runtime = try OCIRuntime.find()
        guard try await waitForRuntime(c.id, runtime: runtime) else { throw Self.notRunning(c) }
        let (status, _, err) = try await runtimeCommand(runtime, [paused ? "pause" : "resume", c.id])
        guard status == 0 else {
            throw StrataError(.io, "cannot \(paused ? "pause" : "unpause") container \(name): \(err.isEmpty ? "\(runtime.path) exited \(status)" : err)")
        }
        try await updateContainer(c.id) { info in
            info.paused = paused ? true : nil
            // As dockerd: a paused container's checks stop, and it reads unhealthy.
            if paused, info.health != nil { info.health?.Status = "unhealthy" }
        }
    }

    /// A paused container is thawed first: a signal (even SIGKILL) or an exec needs it running.
    func thawIfPaused(_ c: ContainerInfo) async throws {
        if c.paused == true { try await freeze(c.id, paused: false) }
    }

    /// Waits until the runtime knows the live run of `id` (a run's row says running a moment
    /// before runc has made its container): true then, false when the run ended meanwhile.
    func waitForRuntime(_ id: String, runtime: OCIRuntime) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let status = try await runtimeCommand(runtime, ["state", id]).status
            if status == 0 { return true }
            guard try await isRunning(id) else { return false }
            if ContinuousClock.now > deadline {
                throw StrataError(.io, "container \(String(id.prefix(12))) runs, but \(runtime.path) does not know it")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Runs the OCI runtime on the store's runtime state (`runc --root ROOT/runtime ARGS`);
    /// its status, standard output and standard error.
    @discardableResult
    func runtimeCommand(_ runtime: OCIRuntime, _ args: [String]) async throws -> (status: Int32, output: Data, error: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: runtime.path)
        p.arguments = ["--root", paths.root.appendingPathComponent("runtime").path] + args
        do {
            return try await runCapturing(p)
        } catch {
            throw StrataError(.io, "cannot run \(runtime.path): \(error.localizedDescription)", cause: error)
        }
    }

    private static func notRunning(_ c: ContainerInfo) -> StrataError {
        StrataError(.conflict, "container \(c.name ?? String(c.id.prefix(12))) is not running")
    }
}
