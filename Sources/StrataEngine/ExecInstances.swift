import Foundation
import Strata

/// The exec instances a server made (`POST /containers/{id}/exec`), as dockerd keeps them:
/// in memory, by ID, until the server exits. Each is started at most once; its exit code is
/// kept for `GET /exec/{id}/json`, which the docker CLI asks for its own exit status.
actor ExecInstances {
    struct Instance: Sendable {
        let id: String
        let containerID: String
        let options: ExecOptions
        let attachStdin: Bool, attachStdout: Bool, attachStderr: Bool
        /// The keys the create named (`DetachKeys`), nil for ctrl-p ctrl-q.
        var detachKeys: DetachKeys? = nil
        var started = false
        var running = false
        var exitCode: Int32?
        var terminal: ContainerTerminal?
    }

    private var instances: [String: Instance] = [:]
    /// IDs in the order they were made, to forget the oldest finished ones.
    private var order: [String] = []
    /// Instances that do not run kept for inspection; older ones are forgotten (dockerd drops
    /// them too), so a server that serves many execs does not grow.
    static let keptFinished = 256

    func add(_ instance: Instance) {
        instances[instance.id] = instance
        order.append(instance.id)
        // Running ones stay; of the rest (finished, or made and never started) the newest stay.
        let idle = order.filter { instances[$0].map { !$0.running } ?? true }
        for id in idle.dropLast(Self.keptFinished) { instances[id] = nil }
        order.removeAll { instances[$0] == nil }
    }

    func get(_ id: String) throws -> Instance {
        guard let i = instances[id] else { throw EngineError(status: .notFound, message: "No such exec instance: \(id)") }
        return i
    }

    /// Marks the instance started; a second start is a conflict, as with dockerd.
    func begin(_ id: String, terminal: ContainerTerminal?) throws -> Instance {
        guard var i = instances[id] else { throw EngineError(status: .notFound, message: "No such exec instance: \(id)") }
        guard !i.started else { throw EngineError(status: .conflict, message: "exec instance \(id) has already been started") }
        i.started = true
        i.running = true
        i.terminal = terminal
        instances[id] = i
        return i
    }

    func end(_ id: String, status: Int32?) {
        instances[id]?.running = false
        instances[id]?.exitCode = status ?? 126
        instances[id]?.terminal = nil
    }

    func resize(_ id: String, rows: UInt16, columns: UInt16) throws {
        guard let i = instances[id] else { throw EngineError(status: .notFound, message: "No such exec instance: \(id)") }
        i.terminal?.resize(rows: rows, columns: columns)
    }
}
