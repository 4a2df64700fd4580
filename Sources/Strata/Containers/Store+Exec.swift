import Foundation

/// What ``Store/exec(_:_:input:terminal:output:started:)`` runs in a running container
/// (`docker exec`).
public struct ExecOptions: Sendable {
    /// The command and its arguments (no shell in between).
    public var command: [String]
    /// `KEY=VALUE` pairs added to (or replacing in) the container's environment.
    public var env: [String]
    /// The working directory (default: the container's).
    public var workingDir: String?
    /// `user`, `uid`, `user:group` or `uid:gid`, resolved in the container's /etc/passwd and
    /// /etc/group (default: the container's user).
    public var user: String?
    /// Run on a terminal of its own (`docker exec -t`): the output is one stream.
    public var tty: Bool
    /// The exec instance's ID (dockerd's `execID`), named by its events: given by a caller
    /// that created the instance and recorded its `exec_create` (``Store/recordExecCreate(_:_:)``);
    /// nil, and the exec makes one and records its `exec_create` itself.
    public var id: String?

    /// Options for running `command`; the rest as the container has them unless given.
    public init(command: [String], env: [String] = [], workingDir: String? = nil, user: String? = nil, tty: Bool = false, id: String? = nil) {
        self.id = id
        self.command = command
        self.env = env
        self.workingDir = workingDir
        self.user = user
        self.tty = tty
    }
}

extension Store {
    /// A new exec instance ID: 64 hex digits, as dockerd's.
    public static func newExecID() -> String {
        (0..<2).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }.joined()
    }

    /// Records the `exec_create` event of an exec instance made ahead of its start (`POST
    /// /containers/{id}/exec`): dockerd's action carries the command, `exec_create: sh -c …`.
    /// Best effort, as every operation event.
    public func recordExecCreate(_ containerID: String, _ options: ExecOptions) async {
        guard let id = options.id else { return }
        try? await recordContainerEvent(containerID, action: Self.execAction("exec_create", options), extra: ["execID": id])
    }

    /// dockerd's words for an exec event: the action, then the program and its arguments
    /// (with the space before them even when there are none).
    private static func execAction(_ action: String, _ options: ExecOptions) -> String {
        "\(action): \(options.command.first ?? "") \(options.command.dropFirst().joined(separator: " "))"
    }

    /// Runs a command in a running container (`docker exec`), in its namespaces and root
    /// filesystem, with the container's process settings (capabilities, limits) and the
    /// options' command, environment, directory and user; returns its exit status (128 + the
    /// signal when a signal ended it). Output goes to `output` as it comes (on a reader thread)
    /// and not to the container's log. The command reads `input` as stdin (/dev/null without
    /// one); with ``ExecOptions/tty`` it runs on `terminal` (or one of its own). Cancelling the
    /// calling task sends the command SIGTERM through the runtime. A command that cannot
    /// start throws: file-not-found when there is no such program (docker exec's 127),
    /// permission-denied when it cannot be run (126).
    ///
    /// ```swift
    /// let status = try await store.exec("web", ExecOptions(command: ["cat", "/etc/hostname"])) { _, data in
    ///     FileHandle.standardOutput.write(data)
    /// }
    /// ```
    public func exec(_ ref: String, _ options: ExecOptions, input: ContainerInput? = nil, terminal: ContainerTerminal? = nil,
                     output: @escaping @Sendable (ContainerStream, Data) -> Void, started: (@Sendable () -> Void)? = nil) async throws -> Int32 {
        defer { input?.runEnded() }
        guard let program = options.command.first, !program.isEmpty else {
            throw StrataError(.invalidArgument, "exec needs a command")
        }
        let c = try await container(ref)
        guard try isRunning(id: c.id, state: c.state) else {
            throw StrataError(.conflict, "container \(c.name ?? String(c.id.prefix(12))) is not running")
        }
        if c.paused == true {
            throw StrataError(.conflict, "container \(c.name ?? String(c.id.prefix(12))) is paused: unpause it first")
        }
        try UserNamespace.requireEntered(for: "running a command in a container", ownersOnly: false)
        let runtime = try OCIRuntime.find()
        guard try await waitForRuntime(c.id, runtime: runtime) else {
            throw StrataError(.conflict, "container \(c.name ?? String(c.id.prefix(12))) is not running")
        }
        // The process the run was launched with (the bundle's config.json), changed as asked.
        let bundle = containerDirs(c.id).base
        let spec = (try? Data(contentsOf: bundle.appendingPathComponent("config.json")))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        guard let spec, var process = spec["process"] as? [String: Any] else {
            throw StrataError(.io, "container \(String(c.id.prefix(12))) has no readable runtime bundle")
        }
        process["args"] = options.command
        var env = process["env"] as? [String] ?? []
        for e in options.env {
            let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
            env.removeAll { $0 == key || $0.hasPrefix(key + "=") }
            env.append(e)
        }
        if options.tty, !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        process["env"] = env
        if let dir = options.workingDir, !dir.isEmpty { process["cwd"] = dir }
        if let user = options.user, !user.isEmpty {
            guard let rootfs = (spec["root"] as? [String: Any])?["path"] as? String else {
                throw StrataError(.io, "container \(String(c.id.prefix(12))) has no root filesystem in its bundle")
            }
            let u = try UserResolver(root: rootfs).resolve(user)
            process["user"] = ["uid": u.uid, "gid": u.gid, "additionalGids": u.additionalGids] as [String: Any]
        }
        process["terminal"] = options.tty
        let tty: ContainerTerminal? = options.tty ? try (terminal ?? ContainerTerminal()) : nil
        defer { tty?.runEnded() }
        if let tty {
            let size = tty.size
            process["consoleSize"] = ["height": Int(size.rows), "width": Int(size.columns)]
        } else {
            process.removeValue(forKey: "consoleSize")
        }
        let file = bundle.appendingPathComponent("exec-\(UUID().uuidString).json")
        do {
            try JSONSerialization.data(withJSONObject: process, options: [.sortedKeys]).write(to: file)
        } catch {
            throw StrataError(.io, "cannot write the exec process of \(c.id): \(error.localizedDescription)", cause: error)
        }
        defer { try? FileManager.default.removeItem(at: file) }

        let execID = options.id ?? Self.newExecID()
        // Best effort, as the other operation events: an exec goes whether or not they can be written.
        if options.id == nil {
            try? await recordContainerEvent(c.id, action: Self.execAction("exec_create", options), extra: ["execID": execID])
        }
        try? await recordContainerEvent(c.id, action: Self.execAction("exec_start", options), extra: ["execID": execID])
        let out = try OutputPipe(.stdout, log: nil, output: output)
        let err = try OutputPipe(.stderr, log: nil, output: output)
        var stdin = input?.processEnd() ?? FileHandle.nullDevice
        if let tty, let side = tty.runtimeSide() {
            if let input { tty.forward(input) }
            stdin = side
        }
        // The runtime's own messages go to a file of their own, not into the command's stderr.
        let log = bundle.appendingPathComponent("exec-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: runtime.path)
        p.arguments = ["--root", paths.root.appendingPathComponent("runtime").path, "--log", log.path, "--log-format", "json",
                       "exec", "--process", file.path, c.id]
        p.standardInput = stdin
        p.standardOutput = out.writer
        p.standardError = err.writer
        started?()
        let status: Int32
        do {
            status = try await withTaskCancellationHandler {
                try await runAndWait(p, started: { pid in tty?.started(pid: pid) })
            } onCancel: {
                // runc passes the signal on to the command.
                if p.isRunning { p.terminate() }
            }
        } catch {
            await out.finish()
            await err.finish()
            throw StrataError(.io, "cannot start \(runtime.path): \(error.localizedDescription)", cause: error)
        }
        await out.finish()
        await err.finish()
        if status == 255, let message = Self.runtimeError(log) {
            // The command never started (runc's own failure): say why, as an error.
            let lower = message.lowercased()
            let code: StrataError.Code = lower.contains("not found") || lower.contains("no such file") ? .fileNotFound
                : lower.contains("permission denied") ? .permissionDenied : .io
            throw StrataError(code, message)
        }
        try? await recordContainerEvent(c.id, action: "exec_die", extra: ["execID": execID, "exitCode": String(status)])
        return status
    }

    /// The last error the runtime logged (`--log-format json`), if any.
    private static func runtimeError(_ log: URL) -> String? {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").reversed().lazy.compactMap { line -> String? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  o["level"] as? String == "error" || o["level"] as? String == "fatal" else { return nil }
            return o["msg"] as? String
        }.first
    }
}
