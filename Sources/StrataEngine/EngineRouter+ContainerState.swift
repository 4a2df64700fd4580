import Foundation
import Strata

/// `docker stop`, `docker kill`, `docker restart`, `docker rename`, `docker pause`, `unpause` and `docker top`: the library's ``Store/stop(_:timeout:signal:)``
/// and ``Store/kill(_:signal:)``, which reach a container whichever process runs it.
extension EngineRouter {
    /// `POST /containers/{id}/kill?signal=SIG`: 204; 409 when it is not running, 400 for a
    /// signal that is none.
    func killContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let signal = try req.string("signal").flatMap { $0.isEmpty ? nil : $0 }.map(ContainerSignal.init) ?? .kill
        // A restart the policy scheduled does not happen after a kill by hand.
        await runner.cancelRestart(try await store.container(ref).id)
        try await store.kill(ref, signal: signal)
        try await res.send(.noContent)
    }

    /// `POST /containers/{id}/stop?t=SECONDS&signal=SIG`: 204 once the exit is recorded, 304
    /// when it was not running.
    func stopContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let (timeout, signal) = try Self.stopOptions(req)
        let c = try await store.container(ref)
        // Stopped by hand: no restart by its policy, not even one already scheduled.
        let wasRestarting = await runner.isRestarting(c.id)
        await runner.cancelRestart(c.id)
        if c.restartPolicy != nil { try await store.markStoppedByHand(c.id) }
        var stopped = try await store.stop(ref, timeout: timeout, signal: signal)
        if !stopped, await runner.isRunning(c.id) {
            // A run this server is starting right now (its policy's restart): stopped once up.
            for _ in 0..<250 where await runner.isRunning(c.id) {
                if try await store.isRunning(c.id) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            stopped = try await store.stop(ref, timeout: timeout, signal: signal)
        }
        stopped = stopped || wasRestarting
        try await res.send(stopped ? .noContent : .notModified)
    }

    /// `POST /containers/{id}/restart?t=SECONDS&signal=SIG`: stopped as by `stop` (when it
    /// runs), then started again by this server: 204.
    func restartContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let (timeout, signal) = try Self.stopOptions(req)
        let c = try await store.container(ref)
        await runner.cancelRestart(c.id)
        try await store.stop(c.id, timeout: timeout, signal: signal)
        await runner.settle(c.id)
        try await store.noteStart(c.id, byPolicy: false)
        try await runner.start(c.id)
        // dockerd's order: the stop's kill, die and stop, the start, then the restart.
        try? await store.recordContainerEvent(c.id, action: "restart")
        try await res.send(.noContent)
    }

    /// `t` (seconds; -1 waits without end, as dockerd; absent: the container's stop timeout,
    /// else 10) and `signal`.
    private static func stopOptions(_ req: EngineRequest) throws -> (Duration?, ContainerSignal?) {
        var timeout: Duration?
        if let t = req.string("t") ?? req.string("time") {
            guard let n = Int(t), n >= -1 else { throw EngineError.badRequest("invalid value for t: \"\(t)\"") }
            timeout = n == -1 ? .seconds(Int64(Int32.max)) : .seconds(n)
        }
        let signal = try req.string("signal").flatMap { $0.isEmpty ? nil : $0 }.map(ContainerSignal.init)
        return (timeout, signal)
    }

    /// `POST /containers/{id}/rename?name=NEW`: 204; 409 when another container has the name.
    func renameContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        guard let name = req.string("name"), !name.isEmpty else { throw EngineError.badRequest("name is required") }
        do {
            try await store.renameContainer(ref, to: name.hasPrefix("/") ? String(name.dropFirst()) : name)
        } catch let e as StrataError where e.code == .invalidArgument {
            throw EngineError.badRequest(e.message)
        }
        try await res.send(.noContent)
    }

    /// `POST /containers/{id}/update` (`docker update`): the limits a body sets replace the
    /// container's (``Store/updateResources(_:_:)``), at once for a live run; 200
    /// `{"Warnings": []}`. A setting strata does not apply (a restart policy, block I/O weights,
    /// …) is refused by name, as at create.
    func updateContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        guard case .data(let body) = req.body, let o = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EngineError.badRequest("expected a JSON object")
        }
        // A restart policy is set here (`docker update --restart`), not refused.
        var rest = o
        let policy = try Self.restartPolicy(rest.removeValue(forKey: "RestartPolicy"))
        try Self.refuseUnappliedSettings(config: [:], host: rest)
        // (PidsLimit: null leaves it, 0 or -1 removes it; Self.resources reads them so.)
        try await store.updateResources(ref, try Self.resources(rest))
        if let policy {
            try await store.updateRestartPolicy(ref, policy)
            await runner.policyChanged(try await store.container(ref).id, policy)
        }
        try await res.sendJSON(["Warnings": [String]()])
    }

    /// `POST /containers/{id}/pause` and `/unpause`: 204; 409 when it is not running (or not
    /// paused, or already).
    func pauseContainer(_ ref: String, paused: Bool, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        if paused { try await store.pause(ref) } else { try await store.unpause(ref) }
        try await res.send(.noContent)
    }

    /// `GET /containers/{id}/top?ps_args=`: `{"Titles": […], "Processes": [[…]]}`
    /// (``Store/top(_:psArguments:)``); 409 when it is not running, 400 for options `ps` refuses.
    func topContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let args = (req.string("ps_args") ?? "").split(separator: " ").map(String.init)
        let top: ContainerProcesses
        do {
            top = try await store.top(ref, psArguments: args.isEmpty ? ["-ef"] : args)
        } catch let e as StrataError where e.code == .invalidArgument {
            throw EngineError.badRequest(e.message)
        }
        try await res.sendJSON(["Titles": top.titles, "Processes": top.processes] as [String: Any])
    }
}
