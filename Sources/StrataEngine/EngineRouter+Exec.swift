import Foundation
import Strata

/// `docker exec`: an exec instance is made, started on a hijacked connection (the output as
/// multiplexed frames, or one raw stream with a TTY; stdin from the client), then inspected
/// for its exit code. The command runs through the library's ``Store/exec(_:_:input:terminal:output:started:)``.
extension EngineRouter {
    /// `POST /containers/{id}/exec` with `{Cmd, Env, WorkingDir, User, Tty, AttachStdin,
    /// AttachStdout, AttachStderr, DetachKeys}`: 201 `{"Id": …}`; 409 when the container is
    /// not running.
    func createExec(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        guard case .data(let body) = req.body, let o = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw EngineError.badRequest("expected a JSON object")
        }
        guard let cmd = try Self.strings(o["Cmd"], "Cmd"), !cmd.isEmpty, !cmd[0].isEmpty else {
            throw EngineError.badRequest("No exec command specified")
        }
        // dockerd decodes field names in any case (Go's JSON); docker-py sends `detachKeys`.
        let keys = o["DetachKeys"] as? String ?? o.first { $0.key.lowercased() == "detachkeys" }?.value as? String ?? ""
        let detachKeys = keys.isEmpty ? nil : try DetachKeys(parsing: keys)
        if o["Privileged"] as? Bool == true {
            throw EngineError(status: .notImplemented, message: "strata does not run privileged exec commands")
        }
        let c = try await store.container(ref)
        guard try await store.isRunning(c.id) else {
            throw EngineError(status: .conflict, message: "Container \(c.id) is not running")
        }
        if c.paused == true {
            throw EngineError(status: .conflict, message: "Container \(c.id) is paused, unpause the container before exec")
        }
        let id = Store.newExecID()
        let options = ExecOptions(command: cmd, env: try Self.strings(o["Env"], "Env") ?? [],
                                  workingDir: (o["WorkingDir"] as? String).flatMap { $0.isEmpty ? nil : $0 },
                                  user: (o["User"] as? String).flatMap { $0.isEmpty ? nil : $0 }, tty: o["Tty"] as? Bool ?? false, id: id)
        await store.recordExecCreate(c.id, options)
        await execs.add(ExecInstances.Instance(id: id, containerID: c.id, options: options, attachStdin: o["AttachStdin"] as? Bool ?? false,
                                               attachStdout: o["AttachStdout"] as? Bool ?? true, attachStderr: o["AttachStderr"] as? Bool ?? true,
                                               detachKeys: detachKeys))
        try await res.sendJSON(["Id": id], status: .created)
    }

    /// `POST /exec/{id}/start` with `{Detach, Tty}`: with `Detach`, 200 at once and the command
    /// runs on; otherwise the connection is upgraded (101) or streamed (200) and carries the
    /// command's output until it exits, and the client's bytes as its stdin. With a TTY, the
    /// client's ``DetachKeys`` end the stream and leave the command running, as dockerd; a
    /// client that hangs up otherwise has the command stopped.
    func startExec(_ id: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        var detach = false
        var startTTY = false
        if case .data(let body) = req.body, !body.isEmpty {
            guard let o = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { throw EngineError.badRequest("expected a JSON object") }
            detach = o["Detach"] as? Bool ?? false
            startTTY = o["Tty"] as? Bool ?? false
        }
        let planned = try await execs.get(id)
        let terminal = planned.options.tty ? try ContainerTerminal() : nil
        let exec = try await execs.begin(id, terminal: terminal)
        let store = self.store, execs = self.execs
        if detach {
            Task {
                var status: Int32?
                do {
                    status = try await store.exec(exec.containerID, exec.options, terminal: terminal, output: { _, _ in })
                } catch let e as StrataError {
                    status = e.code == .fileNotFound ? 127 : 126
                }
                await execs.end(id, status: status)
            }
            try await res.send(.ok)
            return
        }
        var client: HijackedInput?
        var input: ContainerInput?
        if exec.attachStdin {
            client = try await res.takeOverInput()
            input = try ContainerInput()
        }
        let (chunks, sink) = AsyncStream<(ContainerStream, Data)>.makeStream()
        let wanted: Set<ContainerStream> = Set([exec.attachStdout ? .stdout : nil, exec.attachStderr ? .stderr : nil].compactMap { $0 })
        // As dockerd: the start request's `Tty`, not the exec's, says whether the output is
        // framed (docker-py starts a TTY exec with `Tty: false` and reads frames).
        let raw = startTTY
        try await res.startRawStream(req, contentType: raw ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream")
        let run = Task { [input] () -> Int32? in
            defer { sink.finish() }
            do {
                return try await store.exec(exec.containerID, exec.options, input: input, terminal: terminal, output: { s, d in sink.yield((s, d)) })
            } catch {
                // As dockerd: the reason on the stream, 127 for no such program, else 126.
                let e = error as? StrataError
                sink.yield((.stderr, Data("OCI runtime exec failed: \(e?.message ?? "\(error)"): unknown\r\n".utf8)))
                return e?.code == .fileNotFound ? 127 : 126
            }
        }
        let detachKeys = exec.detachKeys ?? .standard
        let detached = try await withThrowingTaskGroup(of: Bool?.self) { group in
            // Each task says whether the client detached, or nil when the stream goes on.
            if let client, let input {
                group.addTask {
                    var detach = exec.options.tty ? detachKeys.scanner() : nil
                    while let piece = await client.next() {
                        let (bytes, detached) = DetachKeys.Scanner.pass(piece, through: &detach)
                        if !bytes.isEmpty { try? await input.write(bytes) }
                        if detached { return true }
                    }
                    input.close()
                    return nil
                }
            }
            group.addTask {
                do {
                    for await (stream, data) in chunks where wanted.contains(stream) {
                        try await res.write(raw ? data : Self.frame(stream, data))
                    }
                } catch where !Task.isCancelled {
                    run.cancel()  // the client went away: the command gets SIGTERM
                } catch {}  // detached, or the command ended: the stream was cut here
                return false
            }
            var detached = false
            while let r = try await group.next() {
                guard let r else { continue }
                detached = r
                break
            }
            group.cancelAll()
            return detached
        }
        if detached {
            // The command runs on, its output dropped; its exit code is kept when it ends.
            Task { await execs.end(id, status: await run.value) }
        } else {
            // Recorded before the end goes out: the docker CLI inspects the exit code next.
            await execs.end(id, status: await run.value)
        }
        try await res.finish()
    }

    /// `GET /exec/{id}/json`: `Running`, `ExitCode` (null until it exits), the process.
    func inspectExec(_ id: String, _ res: EngineResponse) async throws {
        let e = try await execs.get(id)
        let process: [String: Any] = ["entrypoint": e.options.command[0], "arguments": Array(e.options.command.dropFirst()),
                                      "tty": e.options.tty, "user": e.options.user ?? "", "privileged": false]
        try await res.sendJSON(["ID": e.id, "ContainerID": e.containerID, "Running": e.running,
                                "ExitCode": e.exitCode.map { Int($0) as Any } ?? NSNull(), "ProcessConfig": process,
                                "OpenStdin": e.attachStdin, "OpenStdout": e.attachStdout, "OpenStderr": e.attachStderr,
                                "CanRemove": false, "DetachKeys": e.detachKeys.map { Data($0.keys).base64EncodedString() } ?? "", "Pid": 0] as [String: Any])
    }

    /// `POST /exec/{id}/resize?h=&w=`: the size of a running TTY exec's terminal.
    func resizeExec(_ id: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        guard let h = UInt16(req.string("h") ?? ""), let w = UInt16(req.string("w") ?? "") else {
            throw EngineError.badRequest("h and w must be numbers from 0 to 65535")
        }
        try await execs.resize(id, rows: h, columns: w)
        try await res.send(.ok)
    }
}
