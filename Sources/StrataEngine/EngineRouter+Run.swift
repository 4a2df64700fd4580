import Foundation
import NIOHTTP1
import OCI
import Strata

/// Running containers: `docker start`, `docker run`, `docker wait`, `docker logs`,
/// attaching (creating them: EngineRouter+Create). The store runs the command and keeps the log and
/// the state (``Store/start(_:hostNetwork:output:started:)``); ``ContainerRunner`` holds the
/// running tasks; these handlers only translate.
extension EngineRouter {
    /// `POST /containers/{id}/start`: 204 once the command is starting; 304 when it runs already.
    func startContainer(_ ref: String, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let c = try await store.container(ref)
        if await runner.isRunning(c.id) {
            try await res.send(.notModified)
            return
        }
        // A start by hand: the restart count goes back to 0 and a stop by hand is forgotten.
        try await store.noteStart(c.id, byPolicy: false)
        try await runner.start(c.id)
        try await res.send(.noContent)
    }

    /// `POST /containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin=&logs=`: the output of
    /// the container's run as Docker's multiplexed frames (stream byte, three zeros, big-endian
    /// length), on a connection upgraded to a raw stream (101) when the client asked.
    ///
    /// With `logs`, what the container logged so far comes first (``replayLog(_:_:wanted:tty:)``);
    /// with `stream=0` that is all (docker-py's `attach(logs=True)`), else the live output
    /// follows until the run ends. As with dockerd, the live output is taken from before the
    /// replay, so what the container writes meanwhile can come twice, never not at all.
    ///
    /// With `stdin`, what the client sends after the 101 is the stdin of the container's run
    /// (the next run's when it does not run yet); a container created without `OpenStdin`
    /// drops it. The client's half-close (or hang-up) ends the run's stdin when the container
    /// was created with `StdinOnce` (`docker run -i`, `docker create -i`) and has no TTY, and
    /// the answer goes on to the run's end; otherwise (`docker run -d -i`, a TTY) the stdin
    /// stays open for the next attach and this attach ends there, as dockerd's does.
    ///
    /// With a TTY, the client detaches by typing the ``DetachKeys`` (`detachKeys`, ctrl-p
    /// ctrl-q unless named): the attach ends, the keys do not reach the container, and it
    /// runs on with its stdin open, as under dockerd.
    func attachContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let c = try await store.container(ref)
        let logs = try req.bool("logs")
        // Absent means a stream (strata's clients and the docker CLI send stream=1; older raw
        // requests in the tests send none); docker-py sends stream=0 for a replay alone.
        let live = try req.string("stream").map { _ in try req.bool("stream") } ?? true
        let wanted: Set<ContainerStream> = Set([try req.bool("stdout") ? .stdout : nil, try req.bool("stderr") ? .stderr : nil].compactMap { $0 })
        let tty = c.tty == true
        let detachKeys = try DetachKeys(parsing: req.string("detachKeys"))
        // dockerd's CloseStdin: the end of the client's input ends the run's stdin only then.
        let endsStdin = c.keepsStdinOpen != true && !tty
        var taken: (client: HijackedInput, run: ContainerInput?)?
        if live, try req.bool("stdin") {
            // As dockerd: a container not created to read stdin (`-i`) drops what comes.
            let run = c.openStdin == true ? try await runner.input(for: c.id) : nil
            do {
                taken = (try await res.takeOverInput(), run)
            } catch {
                // A client already gone sent its whole input.
                if endsStdin { run?.close() }
                throw error
            }
        }
        let stdin = taken
        // However this attach ends (a client gone before the 101 included), so does the stdin
        // it was to feed, in that mode: a run started later reads what came, then end-of-file.
        defer { if endsStdin { stdin?.run?.close() } }
        let output = live ? await runner.attach(c.id) : nil
        let upgrade = req.headers["Upgrade"].first.map { !$0.isEmpty } ?? false
        // Before the stream opens: `docker run` starts the container once it has, so its
        // `attach` comes before the `start`, as dockerd's.
        try? await store.recordContainerEvent(c.id, action: "attach")
        try await res.startRawStream(req)
        if logs {
            // docker-py reads the 101's head through a buffered reader and the rest from the
            // socket itself, so bytes that come with the head are lost to it: the head goes
            // out alone first (dockerd's replay starts later only by accident of its log reader).
            if upgrade { try await Task.sleep(for: .milliseconds(100)) }
            try await replayLog(c.id, res, wanted: wanted, tty: tty)
        }
        guard let output else { return try await res.finish() }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            // Each task says whether the attach is over when it returns.
            group.addTask {
                // A TTY's output is one stream, sent as it is (no frames), as dockerd does.
                for await chunk in output where wanted.contains(chunk.stream) {
                    try await res.write(tty ? chunk.data : Self.frame(chunk.stream, chunk.data))
                }
                return true
            }
            if let stdin {
                group.addTask {
                    var detach = tty ? detachKeys.scanner() : nil
                    while let piece = await stdin.client.next() {
                        let (bytes, detached) = DetachKeys.Scanner.pass(piece, through: &detach)
                        // A run that ended (or has no stdin) drops what the client still sends.
                        if !bytes.isEmpty { try? await stdin.run?.write(bytes) }
                        // The run goes on, its stdin open (a TTY's always is).
                        if detached { return true }
                    }
                    // Also when the client hung up (the connection's end cancels this task).
                    if endsStdin { stdin.run?.close() }
                    return !endsStdin
                }
            }
            while let over = try await group.next() {
                if over { break }
            }
            group.cancelAll()
        }
        try await res.finish()
    }

    /// What the container logged so far (`attach?logs=1`), as lines of the wanted streams:
    /// frames, or as it is for a TTY container; nothing when it never ran.
    private func replayLog(_ id: String, _ res: EngineResponse, wanted: Set<ContainerStream>, tty: Bool) async throws {
        // A container that keeps no log (log driver none) has nothing to replay.
        guard try await store.container(id).keepsLog, let log = try await store.logLines(of: id) else { return }
        while case let lines = try log.next(toEnd: true), !lines.isEmpty {
            var out = Data()
            for l in lines where wanted.contains(l.stream) { out.append(tty ? l.data : Self.frame(l.stream, l.data)) }
            try await res.write(out)
        }
    }

    /// `POST /containers/{id}/resize?h=&w=`: the size of a running TTY container's terminal
    /// (`docker run -t` sends it, and again when the client's window changes); 409 when it
    /// does not run, 200 and nothing done for a container without a TTY, as dockerd.
    func resizeContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let c = try await store.container(ref)
        guard let h = UInt16(req.string("h") ?? ""), let w = UInt16(req.string("w") ?? "") else {
            throw EngineError.badRequest("h and w must be numbers from 0 to 65535")
        }
        guard await runner.isRunning(c.id) else {
            throw EngineError(status: .conflict, message: "Container \(c.id) is not running")
        }
        await runner.resize(c.id, rows: h, columns: w)
        try? await store.recordContainerEvent(c.id, action: "resize", extra: ["height": String(h), "width": String(w)])
        try await res.send(.ok)
    }

    /// `HostConfig.PortBindings` (`{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`): one
    /// ``PublishedPort`` per binding; a port with no binding (`-p 80`) gets a free host port.
    /// SCTP and bad values are a 400 naming them.
    static func portBindings(_ value: Any?) throws -> [PublishedPort] {
        if value == nil || value is NSNull { return [] }
        guard let bindings = value as? [String: Any] else { throw EngineError.badRequest("PortBindings must be an object") }
        var out: [PublishedPort] = []
        do {
            for (key, list) in bindings.sorted(by: { $0.key < $1.key }) {
                let container = try PublishedPort(parsing: key)
                let entries: [[String: Any]]
                switch list {
                case is NSNull: entries = []
                case let given as [[String: Any]]: entries = given
                default: throw EngineError.badRequest("PortBindings of \(key) must be a list of {HostIp, HostPort}")
                }
                for e in entries.isEmpty ? [[:]] : entries {
                    // Strings, as dockerd's PortBinding (a number there is a 400 too).
                    guard let ip = e["HostIp"] as? String ?? (e["HostIp"] == nil || e["HostIp"] is NSNull ? "" : nil),
                          let hostPort = e["HostPort"] as? String ?? (e["HostPort"] == nil || e["HostPort"] is NSNull ? "" : nil) else {
                        throw EngineError.badRequest("PortBindings of \(key): HostIp and HostPort must be strings")
                    }
                    out.append(try PublishedPort(parsing: "\(ip):\(hostPort):\(container.containerPort)/\(container.proto)"))
                }
            }
        } catch let e as StrataError {
            throw EngineError.badRequest(e.message)
        }
        return out
    }

    /// One multiplexed frame.
    static func frame(_ stream: ContainerStream, _ data: Data) -> Data {
        let n = UInt32(truncatingIfNeeded: data.count)
        return Data([stream.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]) + data
    }

    /// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`: `{"StatusCode", "Error"}`
    /// when the run ends (at once for `not-running` when it is not running; a run of another
    /// process, `strata run`, is waited for through its run lock).
    func waitContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let c = try await store.container(ref)
        let condition = req.string("condition").flatMap { $0.isEmpty ? nil : $0 } ?? "not-running"
        guard ["not-running", "next-exit", "removed"].contains(condition) else {
            throw EngineError.badRequest("invalid condition: \"\(condition)\"")
        }
        if condition == "not-running" {
            try await res.startStream(contentType: "application/json")
            var status: Int32?
            if let ran = await runner.waitForCurrentRun(c.id) {
                status = ran
            } else {
                // A run of another process (`strata run`): its run lock says when it ended.
                while try await store.isRunning(c.id) { try await Task.sleep(for: .milliseconds(50)) }
                // The row as the last run left it, read now: the one read above may predate its end.
                status = try await store.container(c.id).exitCode ?? 0
            }
            let error: Any = status == nil ? ["Message": "the container did not start"] : NSNull()
            try await res.message(["StatusCode": Int(status ?? 127), "Error": error] as [String: Any])
            try await res.finish()
            return
        }
        // As dockerd does: the headers go out at once and the body when the container stops.
        // `docker run` waits for these headers before it sends the start.
        try await res.startStream(contentType: "application/json")
        let status = await runner.waitForExit(c.id)
        let error: Any = status == nil ? ["Message": "the container did not start"] : NSNull()
        try await res.message(["StatusCode": Int(status ?? 127), "Error": error] as [String: Any])
        try await res.finish()
    }

    /// `GET /containers/{id}/logs?stdout=1&stderr=1&follow=&tail=&since=&until=&timestamps=`:
    /// what the container wrote, as multiplexed frames from its log. With `follow`, the answer
    /// goes on while the container runs (the open log is read on every 50 ms, to its end even
    /// when the container is removed meanwhile) and ends when it stops, as dockerd's does:
    /// docker-py's `containers.run()` reads its output this way. The log goes out as lines (``ContainerLogLineReader``), one frame each as dockerd's
    /// json-file log sends them (docker-py's `logs(stream=True)` yields frame by frame): the
    /// last `tail` lines, then those written in [`since`, `until`], each after its time
    /// (RFC 3339, nanoseconds) with `timestamps`.
    func containerLogs(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let stdout = try req.bool("stdout"), stderr = try req.bool("stderr"), follow = try req.bool("follow")
        guard stdout || stderr else { throw EngineError.badRequest("you must choose at least one stream") }
        // As dockerd: a tail that is not a number means all.
        let tail = req.string("tail").flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        let since = try Self.logTime(req.string("since"), "since"), until = try Self.logTime(req.string("until"), "until")
        let timestamps = try req.bool("timestamps")
        let container = try await store.container(ref)
        let id = container.id
        guard container.keepsLog else {
            throw EngineError(status: .notImplemented, message: "configured logging driver does not support reading")
        }
        // A TTY container's log is its one stream as it is (no frames), as dockerd sends it.
        let tty = container.tty == true
        try await res.startStream(contentType: tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream")
        try await logLines(id, res, stdout: stdout, stderr: stderr, follow: follow, tail: tail, since: since, until: until,
                           timestamps: timestamps, raw: tty)
        try await res.finish()
    }

    /// The log as lines, with `tail`, `since`, `until` and `timestamps` (as dockerd: the tail
    /// is taken first, then the time window; lines of a log kept before strata recorded
    /// times count as written at the epoch).
    private func logLines(_ id: String, _ res: EngineResponse, stdout: Bool, stderr: Bool, follow: Bool, tail: Int?,
                          since: Date?, until: Date?, timestamps: Bool, raw: Bool) async throws {
        var log: ContainerLogLineReader?
        var first = true
        while true {
            let running = await runner.isRunning(id)
            if log == nil { log = try await store.logLines(of: id) }
            while let reader = log {
                let lines = try reader.next(last: first ? tail : nil, toEnd: !running)
                let wasFirst = first
                first = false
                var out = Data()
                for l in lines where (l.stream == .stdout ? stdout : stderr) {
                    let t = l.time ?? Date(timeIntervalSince1970: 0)
                    if let since, t < since { continue }
                    if let until, t > until { continue }
                    let data = timestamps ? Data((Self.nanoFixed(l.time) + " ").utf8) + l.data : l.data
                    out.append(raw ? data : Self.frame(l.stream, data))
                }
                try await res.write(out)
                if lines.isEmpty || wasFirst && tail != nil { break }
            }
            if log != nil { first = false }
            if !(follow && running) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// RFC 3339 in UTC with nine fraction digits, as `docker logs --timestamps` shows a
    /// line's time; the zero time for a line without one.
    static func nanoFixed(_ date: Date?) -> String {
        guard let date else { return "0001-01-01T00:00:00.000000000Z" }
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let nanos = min(999_999_999, max(0, Int(((date.timeIntervalSince1970 - seconds) * 1e9).rounded(.down))))
        let digits = String(nanos)
        return RFC3339.format(date).dropLast() + "." + String(repeating: "0", count: 9 - digits.count) + digits + "Z"
    }

    /// A `since`/`until` value: Unix seconds, with an optional fraction (`1700000000.5`);
    /// empty or 0 is none.
    static func logTime(_ value: String?, _ name: String) throws -> Date? {
        guard let v = value, !v.isEmpty, v != "0" else { return nil }
        let parts = v.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let seconds = Int64(parts[0]), parts.count == 1 || (parts[1].count <= 9 && parts[1].allSatisfy(\.isNumber)) else {
            throw EngineError.badRequest("invalid value for \(name): \"\(v)\"")
        }
        let fraction = parts.count == 2 ? (Double("0." + parts[1]) ?? 0) : 0
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
