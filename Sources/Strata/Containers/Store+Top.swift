import Foundation

/// What `docker top` shows: `ps`'s header and the rows of the container's processes.
public struct ContainerProcesses: Sendable, Hashable, Codable {
    /// `ps`'s column titles (`UID`, `PID`, …, `CMD`).
    public var titles: [String]
    /// One row per process of the container, a field per title (the last one keeps its spaces).
    public var processes: [[String]]
}

extension Store {
    /// The processes of a running container (`docker top`), as the host's `ps` with
    /// `psArguments` (default `-ef`) shows them, limited to the PIDs the runtime lists for
    /// it. `psArguments` must make `ps` print a `PID` column. Throws a conflict error when the
    /// container is not running, and an invalid-argument error when `ps` refuses the options.
    ///
    /// ```swift
    /// let top = try await store.top("web")
    /// print(top.titles, top.processes.count)
    /// ```
    public func top(_ ref: String, psArguments: [String] = ["-ef"]) async throws -> ContainerProcesses {
        let (c, name, runtime) = try await liveRun(ref, for: "listing a container's processes")
        let listed = try await runtimeCommand(runtime, ["ps", "--format", "json", c.id])
        guard listed.status == 0, let pids = try? JSONDecoder().decode([Int].self, from: listed.output) else {
            throw StrataError(.io, "cannot list the processes of container \(name): \(listed.error)")
        }
        guard let ps = ["/usr/bin/ps", "/bin/ps"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw StrataError(.notSupported, "top needs ps (apt-get install procps)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ps)
        p.arguments = psArguments.isEmpty ? ["-ef"] : psArguments
        let shown: (status: Int32, output: Data, error: String)
        do { shown = try await runCapturing(p) } catch {
            throw StrataError(.io, "cannot run \(ps): \(error.localizedDescription)", cause: error)
        }
        guard shown.status == 0 else {
            let why = shown.error.split(separator: "\n").first.map(String.init) ?? "exit status \(shown.status)"
            throw StrataError(.invalidArgument, "ps \(psArguments.joined(separator: " ")) failed: \(why)")
        }
        return try Self.parsePS(String(decoding: shown.output, as: UTF8.self), pids: Set(pids))
    }

    /// A running container the runtime knows, its name for messages and the runtime: a
    /// conflict error when it does not run. `what` names the work for the user-namespace check.
    func liveRun(_ ref: String, for what: String) async throws -> (ContainerInfo, String, OCIRuntime) {
        let c = try await container(ref)
        let name = c.name ?? String(c.id.prefix(12))
        guard try isRunning(id: c.id, state: c.state) else { throw StrataError(.conflict, "container \(name) is not running") }
        try UserNamespace.requireEntered(for: what, ownersOnly: false)
        let runtime = try OCIRuntime.find()
        guard try await waitForRuntime(c.id, runtime: runtime) else { throw StrataError(.conflict, "container \(name) is not running") }
        return (c, name, runtime)
    }

    /// The host PID of a running container's main process (`State.Pid` of `docker inspect`,
    /// what `nsenter -t` takes), from the OCI runtime's state; nil when it does not run (or
    /// the runtime no longer knows it).
    public func mainPID(_ ref: String) async throws -> Int? {
        let c = try await container(ref)
        guard try isRunning(id: c.id, state: c.state), let runtime = try? OCIRuntime.find(),
              try await waitForRuntime(c.id, runtime: runtime) else { return nil }
        let state = try await runtimeCommand(runtime, ["state", c.id])
        struct RuntimeState: Decodable { var pid: Int? }
        guard state.status == 0, let pid = (try? JSONDecoder().decode(RuntimeState.self, from: state.output))?.pid, pid > 0 else {
            return nil
        }
        return pid
    }

    /// `ps` output as dockerd reads it: the header's words are the titles; each line is split
    /// into as many fields, the last keeping the rest of the line; rows whose PID is not one
    /// of `pids` go.
    static func parsePS(_ text: String, pids: Set<Int>) throws -> ContainerProcesses {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard !lines.isEmpty else { return ContainerProcesses(titles: [], processes: []) }
        let titles = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let pidColumn = titles.firstIndex(of: "PID") else {
            throw StrataError(.invalidArgument, "ps printed no PID column: give options that show it (such as -ef or aux)")
        }
        var rows: [[String]] = []
        for line in lines {
            var fields: [String] = []
            var rest = Substring(line)
            while fields.count < titles.count - 1, let start = rest.firstIndex(where: { $0 != " " }) {
                rest = rest[start...]
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                fields.append(String(rest[..<end]))
                rest = rest[end...]
            }
            fields.append(rest.drop(while: { $0 == " " }).description)
            guard fields.count == titles.count, let pid = Int(fields[pidColumn]), pids.contains(pid) else { continue }
            rows.append(fields)
        }
        return ContainerProcesses(titles: titles, processes: rows)
    }
}
