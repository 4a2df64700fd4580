import CArchive
import Foundation
import GRDB
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Which of a container's output streams a piece of output came from.
public enum ContainerStream: UInt8, Sendable {
    case stdout = 1
    case stderr = 2
}

/// A container's log, `containers/<id>/container.log` (rotated as ``LogRotation`` says): every piece of output of every run,
/// appended as a record of an 8-byte header (the stream, 1 or 2; three zero bytes; the length
/// as a big-endian UInt32) and the bytes. This is the Docker Engine API's multiplexed stream
/// format, so `docker logs` is the file as it stands. Written by the two reader threads of a
/// run, one record at a time under a lock.
///
/// When each record arrived is kept beside it, in `container.log.times`: 16 bytes per
/// record, written just before it — the record's offset in the log and the time in
/// nanoseconds since 1970, both big-endian. A log written before strata kept times has no
/// such file (or entries for later runs only): its records have no time.
final class ContainerLog: Sendable {
    private struct Files {
        var log: Int32
        var times: Int32
        /// Bytes in the log file now.
        var size: Int64
    }
    private let files: Mutex<Files>
    private let path: String?
    private let rotation: LogRotation?

    /// The log at `path`, rotated as `rotation` says (``LogRotation``); nil path: a log that
    /// keeps nothing (log driver `none`).
    init(path: String?, rotation: LogRotation? = nil) throws {
        self.path = path
        self.rotation = rotation
        guard let path else {
            files = Mutex(Files(log: -1, times: -1, size: 0))
            return
        }
        files = Mutex(try Self.open(path))
    }

    private static func open(_ path: String) throws -> Files {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StrataError.system("cannot open the log \(path)") }
        // Without the times file the log still works (records then have no time).
        let times = Glibc.open(path + ".times", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        return Files(log: fd, times: times, size: Int64(max(0, lseek(fd, 0, SEEK_END))))
    }

    /// One record; a write error drops the record (the run goes on, as with a full disk in docker).
    /// A rotated log takes a record per line, as dockerd's drivers keep an entry per line, so
    /// that it rotates between lines.
    func append(_ stream: ContainerStream, _ data: Data) {
        guard !data.isEmpty else { return }
        guard rotation != nil else { return appendRecord(stream, data) }
        var rest = data[...]
        while let nl = rest.firstIndex(of: UInt8(ascii: "\n")), nl + 1 < rest.endIndex {
            appendRecord(stream, rest[rest.startIndex...nl])
            rest = rest[(nl + 1)...]
        }
        appendRecord(stream, rest)
    }

    private func appendRecord(_ stream: ContainerStream, _ data: Data) {
        let n = UInt32(truncatingIfNeeded: data.count)
        var record = Data([stream.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)])
        record.append(data)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanos = UInt64(max(0, now.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, now.tv_nsec))
        files.withLock { f in
            guard f.log >= 0 else { return }
            // As dockerd: a log that reached its size is rotated before the next record.
            if let rotation, let path, f.size >= rotation.maxSize { rotate(&f, path: path, keep: rotation.maxFiles) }
            guard f.log >= 0 else { return }
            if f.times >= 0 {
                var entry = Data(count: 16)
                let offset = UInt64(f.size)
                for i in 0..<8 {
                    entry[i] = UInt8((offset >> (56 - 8 * UInt64(i))) & 0xff)
                    entry[8 + i] = UInt8((nanos >> (56 - 8 * UInt64(i))) & 0xff)
                }
                Self.writeAll(f.times, entry)
            }
            f.size += Int64(Self.writeAll(f.log, record))
        }
    }

    /// The log and its times become the newest rotated pair (the others move one up, the
    /// oldest beyond `keep` goes), or are removed when only one file is kept; a new log starts.
    private func rotate(_ f: inout Files, path: String, keep: Int) {
        Glibc.close(f.log)
        if f.times >= 0 { Glibc.close(f.times) }
        if keep > 1 {
            for k in stride(from: keep - 1, through: 1, by: -1) {
                let from = k == 1 ? path : LogRotation.rotated(path, k - 1)
                let to = LogRotation.rotated(path, k)
                rename(from, to)
                rename(from + ".times", to + ".times")
            }
        } else {
            unlink(path)
            unlink(path + ".times")
        }
        f = (try? Self.open(path)) ?? Files(log: -1, times: -1, size: 0)
    }

    /// Writes all of `data`; the bytes written (fewer after an error).
    @discardableResult
    private static func writeAll(_ fd: Int32, _ data: Data) -> Int {
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            var off = 0
            while off < raw.count {
                let w = write(fd, base + off, raw.count - off)
                if w < 0 { if errno == EINTR { continue }; return off }
                off += w
            }
            return off
        }
    }

    func close() {
        files.withLock { f in
            if f.log >= 0 { Glibc.close(f.log) }
            if f.times >= 0 { Glibc.close(f.times) }
            f = Files(log: -1, times: -1, size: 0)
        }
    }
}

extension Store {
    /// The path of a container's log (``ContainerLog``).
    func logPath(_ id: String) -> String {
        containerDirs(id).base.appendingPathComponent("container.log").path
    }

    /// Runs a created (or exited) container's command to its end and returns its exit status
    /// (128 + the signal when a signal ended it): `docker start`. The container's row says
    /// `running` while it runs, then `exited` with the status and the start and end times.
    /// Output is appended to the container's log (``readLog(of:_:)``) and handed to `output`
    /// as it arrives (on a reader thread: do not block there). `started` is called once the
    /// row says running and the process runs its command (or the run ended first); an
    /// error before that (no command, an unknown USER, a published port in use, already
    /// running) throws and changes nothing, but that a container created with
    /// ``ContainerOptions/autoRemove`` (and not running) is removed, as dockerd removes it.
    /// With ``ContainerOptions/autoRemove`` the container is removed after it exits.
    /// Cancelling the calling task kills the container (recorded as exited, 137).
    /// The process reads `input` as its stdin (``ContainerInput``, `docker run -i`), or
    /// /dev/null without one; the input serves this run only. A container created with
    /// ``ContainerOptions/tty`` runs on a terminal (`terminal`, or one of its own): its output
    /// is one stream, logged as stdout, and `input` is typed into the terminal.
    ///
    /// ```swift
    /// let c = try await store.createContainer(from: "app:1", options: ContainerOptions(command: ["echo", "hi"]))
    /// let status = try await store.start(c.id)           // 0; `readLog(of:)` has "hi\n"
    /// ```
    public func start(_ ref: String, hostNetwork: Bool = false, input: ContainerInput? = nil, terminal: ContainerTerminal? = nil,
                      output: (@Sendable (ContainerStream, Data) -> Void)? = nil,
                      started: (@Sendable () -> Void)? = nil) async throws -> Int32 {
        // The run's stdin pipe is closed on this side whatever happens: a writer then fails
        // instead of waiting for a process that is gone (or never came).
        defer { input?.runEnded() }
        let runtime = try OCIRuntime.find()
        let c = try await container(ref)
        var spec: [String: Any]
        do {
            spec = try await runtimeSpec(for: c, hostNetwork: hostNetwork)
        } catch {
            // As dockerd: a container that was to go when its run ended goes when it cannot
            // start (an unknown user, no command).
            if c.autoRemove == true { _ = try? await removeContainer(c.id, force: true, removeVolumes: true) }
            throw error
        }
        // Held from before the row says running until the exit is recorded: a row that says
        // running while nobody holds it is a run whose process died (``recoverInterruptedRuns()``).
        guard let runLock = try await takeRunLock(c.id) else {
            throw StrataError(.conflict, "container \(String(c.id.prefix(12))) is already running")
        }
        defer { withExtendedLifetime(runLock) {} }
        // Published ports are bound before the run is marked: a port in use fails the start,
        // and (as dockerd) removes a container that was to go when its run ended.
        let proxy: PortProxy?
        do {
            proxy = try publishPorts(c, hostNetwork: hostNetwork)
        } catch {
            if c.autoRemove == true { _ = try? await removeContainer(c.id, force: true, removeVolumes: true) }
            throw error
        }
        defer { proxy?.stop() }
        let check = healthcheck(for: c)
        try await markRunning(c.id, publishedPorts: proxy?.bound, checked: check != nil)
        proxy?.start()
        let monitor = startHealthMonitor(c.id, check: check)
        let status: Int32
        do {
            let log = try ContainerLog(path: c.keepsLog ? logPath(c.id) : nil, rotation: c.logRotation)
            defer { log.close() }
            let out = try OutputPipe(.stdout, log: log, output: output)
            let err = try OutputPipe(.stderr, log: log, output: output)
            // A TTY: runc finds the terminal on its stdin, makes it raw, gives the container a
            // terminal of its own sized as this one, and copies the container's output to its
            // stdout (one stream) and this terminal's input to the container.
            let tty: ContainerTerminal? = try c.tty == true ? (terminal ?? ContainerTerminal()) : nil
            defer { tty?.runEnded() }
            var stdin = input?.processEnd() ?? FileHandle.nullDevice
            if let tty, let side = tty.runtimeSide() {
                // The container's terminal has this size from its start (runc passes later
                // changes on); without it the process could see 0x0 before the first resize.
                let size = tty.size
                if var process = spec["process"] as? [String: Any] {
                    process["consoleSize"] = ["height": Int(size.rows), "width": Int(size.columns)]
                    spec["process"] = process
                }
                if let input { tty.forward(input) }
                stdin = side
            }
            // `started` once runc wrote the process's PID (it runs its command then), as
            // dockerd's start returns once the task runs: output comes right after it. A run
            // that ends before that calls it on its way out.
            let once = Mutex(started)
            let announce: @Sendable () -> Void = { once.withLock { f in f?(); f = nil } }
            let pidFile = containerDirs(c.id).base.appendingPathComponent("runc.pid").path
            unlink(pidFile)
            let watcher = Task {
                while !Task.isCancelled, access(pidFile, F_OK) != 0 { try? await Task.sleep(for: .milliseconds(2)) }
                announce()
            }
            defer {
                watcher.cancel()
                announce()
            }
            do {
                status = try await launch(c.id, spec: spec, runtime: runtime, stdin: stdin, stdout: out.writer, stderr: err.writer,
                                         pidFile: pidFile, started: { pid in tty?.started(pid: pid) })
            } catch {
                await out.finish()
                await err.finish()
                throw error
            }
            await out.finish()
            await err.finish()
        } catch {
            await stopHealthMonitor(monitor)
            try? await recordExit(c.id, status: 127)
            throw error
        }
        await stopHealthMonitor(monitor)
        try await recordExit(c.id, status: status)
        if c.autoRemove == true { _ = try await removeContainer(c.id, force: true, removeVolumes: true) }
        return status
    }

    /// Streams a container's log (``ContainerLog``) in pieces of at most 64 KiB; nothing when
    /// it never ran.
    public func readLog(of ref: String, _ body: (Data) async throws -> Void) async throws {
        guard let reader = try await logReader(of: ref) else { return }
        while true {
            let chunk = try reader.next()
            guard !chunk.isEmpty else { return }
            try await body(chunk)
        }
    }

    /// The container's log, open for reading from its start; nil when it never ran. The reader
    /// keeps the file open, so a follower of a running container (`docker logs -f`) reads on
    /// as the run appends, and to the end even when the container is removed meanwhile.
    ///
    /// ```swift
    /// if let log = try await store.logReader(of: "job") {
    ///     while case let chunk = try log.next(), !chunk.isEmpty { handle(chunk) }
    /// }
    /// ```
    public func logReader(of ref: String) async throws -> ContainerLogReader? {
        let c = try await container(ref)
        try Self.requireLog(c)
        guard let files = LogFiles(path: logPath(c.id)) else { return nil }
        return ContainerLogReader(files: files, id: c.id)
    }

    /// A container created with log driver `none` has no log to read (dockerd's words).
    static func requireLog(_ c: ContainerInfo) throws {
        guard c.keepsLog else { throw StrataError(.notSupported, "configured logging driver does not support reading") }
    }

    /// The run's published ports (``ContainerOptions/ports``), bound; nil for none (or on the
    /// host's network). Connections reach the container once its process is up.
    func publishPorts(_ c: ContainerInfo, hostNetwork: Bool) throws -> PortProxy? {
        guard let ports = c.ports, !ports.isEmpty, !hostNetwork, c.hostNetwork != true else { return nil }
        let id = c.id
        return try PortProxy(ports) { [self] in
            guard let pid = try? await mainPID(id) else { return nil }
            let fd = Glibc.open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
            return fd >= 0 ? fd : nil
        }
    }

    /// `created`/`exited` → `running` in one transaction; a running container is a conflict.
    /// With `checked` (its run gets a health check), its health starts over as `starting`,
    /// keeping the last probes, as dockerd's.
    func markRunning(_ id: String, publishedPorts: [PublishedPort]? = nil, checked: Bool = false) async throws {
        try await updateContainer(id) { info in
            info.publishedPorts = publishedPorts
            if info.state == "running" {
                throw StrataError(.conflict, "container \(String(id.prefix(12))) is already running")
            }
            info.state = "running"
            info.paused = nil
            info.startedAt = Date()
            info.health = checked ? HealthState(Status: "starting", Log: info.health?.Log ?? []) : nil
            // As dockerd: a run's exit code is its own, 0 until it exits.
            info.exitCode = 0
        }
    }

    /// Records the run's end. It is written even when the calling task was cancelled (a
    /// server shutting down kills its runs by cancelling them): the process is gone, so its
    /// row must say so, and the write is a short transaction of its own.
    func recordExit(_ id: String, status: Int32) async throws {
        try await Task {
            try await updateContainer(id) { info in
                info.state = "exited"
                info.paused = nil
                info.publishedPorts = nil
                info.exitCode = status
                info.finishedAt = Date()
                // As dockerd: once its monitor stops, a container with a check reads unhealthy.
                if info.health != nil { info.health?.Status = "unhealthy" }
            }
        }.value
    }

    /// Reads, changes and writes a container's record in one write transaction.
    func updateContainer(_ id: String, _ change: @escaping @Sendable (inout ContainerInfo) throws -> Void) async throws {
        try await write { db in
            guard let config = try String.fetchOne(db, sql: "SELECT config FROM containers WHERE id = ?", arguments: [id]) else {
                throw StrataError(.containerNotFound, "no such container: \(id)")
            }
            var info: ContainerInfo
            do { info = try JSONDecoder().decode(ContainerInfo.self, from: Data(config.utf8)) } catch {
                throw StrataError(.database, "container \(id) has an unreadable record", cause: error)
            }
            try change(&info)
            let updated = String(decoding: try CanonicalJSON.encode(info), as: UTF8.self)
            try db.execute(sql: "UPDATE containers SET state = ?, config = ? WHERE id = ?", arguments: [info.state, updated, id])
        }
    }
}

/// A pipe for one of a container's streams: the runtime gets the write end, a thread of its
/// own reads the other (blocking reads never hold a thread of the cooperative pool) and hands
/// each piece to the log and the caller.
final class OutputPipe: Sendable {
    let writer: FileHandle
    private let readFD: Int32
    private let done: Mutex<CheckedContinuation<Void, Never>?>
    private let finished: Mutex<Bool>

    /// `log`: where the pieces are kept too (a run's; an exec's output is not logged).
    init(_ stream: ContainerStream, log: ContainerLog?, output: (@Sendable (ContainerStream, Data) -> Void)?) throws {
        var fds: [Int32] = [0, 0]
        // Close-on-exec from the start (``ExclusivePipe``): Foundation's Process duplicates the
        // write end into the child, and no other process this one starts holds either end.
        guard strata_pipe_cloexec(&fds) == 0 else { throw StrataError.system("cannot create a pipe") }
        readFD = fds[0]
        writer = FileHandle(fileDescriptor: fds[1], closeOnDealloc: true)
        done = Mutex(nil)
        finished = Mutex(false)
        let fd = readFD
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 32 << 10)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                let data = Data(buffer[0..<n])
                log?.append(stream, data)
                output?(stream, data)
            }
            Glibc.close(fd)
            let waiter = done.withLock { c -> CheckedContinuation<Void, Never>? in
                finished.withLock { $0 = true }
                let w = c
                c = nil
                return w
            }
            waiter?.resume()
        }
        thread.start()
    }

    /// Closes this process's write end and waits until the reader has seen the end of the
    /// stream (every process holding the other end is gone) and handed out everything.
    func finish() async {
        try? writer.close()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = done.withLock { slot -> Bool in
                if finished.withLock({ $0 }) { return true }
                slot = c
                return false
            }
            if resumeNow { c.resume() }
        }
    }
}

/// A container's log open for reading (``Store/logReader(of:)``): Docker's multiplexed frames
/// as the run wrote them. Reads go on from where the last one stopped.
public final class ContainerLogReader: Sendable {
    private let files: Mutex<LogFiles>
    /// The container's ID.
    public let id: String

    init(files: LogFiles, id: String) {
        self.files = Mutex(files)
        self.id = id
    }

    /// The next piece of the log, at most 64 KiB; empty at the end of what is written so far.
    /// A rotated log (``LogRotation``) reads on from its oldest file to its current one.
    public func next() throws -> Data {
        do {
            return try files.withLock { try $0.read(upToCount: 64 << 10).data }
        } catch {
            throw StrataError(.io, "cannot read the log of \(id): \(error.localizedDescription)", cause: error)
        }
    }
}
