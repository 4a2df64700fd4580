import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Strata
#if canImport(Glibc)
import Glibc
#endif

/// The Docker Engine API over a unix socket, and over TCP when asked: `docker` and the
/// Docker SDKs talk to a strata store as they would to dockerd. A thin adapter: every
/// endpoint calls the `Strata`, `StrataBuild` or `StrataRegistry` library; the daemon keeps
/// no state outside the store.
///
/// ```swift
/// let server = EngineServer(store: store, socketPath: "/var/lib/strata/strata.sock")
/// try await server.run()          // until server.shutdown() (e.g. on SIGTERM)
///
/// // Also on loopback TCP (DOCKER_HOST=tcp://127.0.0.1:2375), or anywhere with TLS:
/// let tcp = EngineServer(store: store, socketPath: sock, tcp: [try EngineTCPAddress("127.0.0.1:2375")])
/// let tls = try EngineTLS(caCertificatePath: "ca.pem", certificatePath: "cert.pem", keyPath: "key.pem")
/// let remote = EngineServer(store: store, socketPath: sock, tcp: [try EngineTCPAddress("0.0.0.0:2376")], tls: tls)
/// ```
///
/// Whoever can connect can do anything the store's owner can: the socket is created mode
/// 0660, and a TCP listener other than loopback is refused unless ``tls`` requires client
/// certificates (``EngineTCPAddress/requireSafe(tls:)``). Every listener feeds the same
/// connection handling (``HijackTap``, the HTTP pipeline and its limits, keep-alive, the
/// drain on ``shutdown()``).
public final class EngineServer: Sendable {
    /// The version `docker version` shows for the server.
    public static let version = "0.1.0"
    /// The largest request head accepted (request line and headers); larger ones get a 400.
    public static let maxHeaderBytes = 64 << 10

    /// The store every request works on.
    public let store: Store
    /// The unix socket the server creates (unless systemd passed one, ``init(store:socketPath:inheritedSocket:tcp:tls:)``).
    public let socketPath: String
    /// The TCP addresses served besides the socket (`strata serve --listen`); none by default.
    public let tcpAddresses: [EngineTCPAddress]
    /// TLS with client certificates for every TCP listener; nil serves them plain, which only
    /// loopback addresses may.
    public let tls: EngineTLS?
    let router: EngineRouter
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listeners: [any Channel] = []
        var shuttingDown = false
        /// Open connections, and whether each is between requests (closed at once on shutdown).
        var connections: [ObjectIdentifier: (channel: any Channel, idle: Bool)] = [:]
    }

    /// A socket handed over by systemd (socket activation): already bound and listening;
    /// its file, mode and group are the socket unit's, and it is not removed on exit.
    let inheritedSocket: Int32?

    /// A server for `store` on the unix socket `socketPath` (or the listening descriptor
    /// systemd passed, `inheritedSocket`), and on each of `tcp` as well, with `tls` on those
    /// when given. Nothing is bound before ``run(onListening:)``.
    public init(store: Store, socketPath: String, inheritedSocket: Int32? = nil, tcp: [EngineTCPAddress] = [], tls: EngineTLS? = nil) {
        self.store = store
        self.socketPath = socketPath
        self.inheritedSocket = inheritedSocket
        self.tcpAddresses = tcp
        self.tls = tls
        self.router = EngineRouter(store: store)
    }

    /// Checks every TCP address (``EngineTCPAddress/requireSafe(tls:)``) before anything is
    /// bound, records the runs a killed server left marked running as exited
    /// (``Store/recoverInterruptedRuns()``), binds the socket (mode 0660) and the TCP
    /// listeners, calls `onListening` with where it listens (for a person: `unix:///…`,
    /// `tcp://127.0.0.1:41234 (TLS: …)`, a port 0 resolved), serves until ``shutdown()``, lets
    /// requests in flight finish, and removes the socket. A socket file left by a server that
    /// is gone is replaced; one a live server answers on is an error. When any listener cannot
    /// be bound, none stays open and the socket is removed.
    public func run(onListening: (@Sendable ([String]) -> Void)? = nil) async throws {
        for address in tcpAddresses { try address.requireSafe(tls: tls) }
        // Runs a killed server (or CLI) left marked running read as exited, as after dockerd's restart.
        try await store.recoverInterruptedRuns()
        let (listeners, endpoints) = try await bindListeners()
        let ownsSocket = inheritedSocket == nil
        defer { if ownsSocket { unlink(socketPath) } }
        let stopNow = state.withLockedValue { s -> Bool in
            s.listeners = listeners.map(\.channel)
            return s.shuttingDown
        }
        if stopNow {
            for l in listeners { try? await l.channel.close() }
        } else {
            onListening?(endpoints)
        }
        // Every listener's connections come through one stream, so one group serves them all
        // and the drain below waits for each, whichever listener it came from.
        let (accepted, sink) = AsyncStream.makeStream(of: Connection.self)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                defer { sink.finish() }
                try await withThrowingDiscardingTaskGroup { accepting in
                    for listener in listeners {
                        accepting.addTask { try await self.accept(listener, into: sink) }
                    }
                }
            }
            // As dockerd when it starts: the containers whose restart policy says they run.
            if !stopNow { group.addTask { await self.router.runner.startByPolicy() } }
            for await connection in accepted {
                group.addTask { await self.serve(connection) }
            }
            // Running containers are killed (recorded as exited, 137); their attach and wait
            // connections then finish.
            await router.runner.stopAll()
        }
    }

    /// Hands `listener`'s connections to `sink` until it closes; an error other than the
    /// close ``shutdown()`` caused is thrown.
    private func accept(_ listener: Listener, into sink: AsyncStream<Connection>.Continuation) async throws {
        do {
            try await listener.executeThenClose { inbound in
                for try await connection in inbound { sink.yield(connection) }
            }
        } catch where state.withLockedValue({ $0.shuttingDown }) {
            // The listener was closed by shutdown(): the connections drain in run().
        }
    }

    /// Stops accepting connections on every listener, closes idle connections, and lets each
    /// request in flight finish (its connection closes after the response). ``run(onListening:)``
    /// returns once all are done.
    public func shutdown() {
        let (listeners, idle) = state.withLockedValue { s -> ([any Channel], [any Channel]) in
            s.shuttingDown = true
            return (s.listeners, s.connections.values.filter(\.idle).map(\.channel))
        }
        for l in listeners { l.close(promise: nil) }
        for c in idle { c.close(promise: nil) }
    }

    /// Marks a connection idle or busy; false when the server is shutting down and an idle
    /// connection should close.
    private func mark(_ channel: any Channel, idle: Bool) -> Bool {
        state.withLockedValue { s in
            s.connections[ObjectIdentifier(channel)] = (channel, idle)
            return !s.shuttingDown
        }
    }

    private func serve(_ connection: Connection) async {
        let channel = connection.channel
        defer { _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) } }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                requests: while mark(channel, idle: true) {
                    guard let part = try await parts.next() else { break requests }
                    let running = mark(channel, idle: false)
                    guard case .head(let head) = part else { break requests }
                    let keepAlive = head.isKeepAlive && running
                    let response = EngineResponse(outbound: outbound, version: head.version, isHead: head.method == .HEAD, keepAlive: keepAlive,
                                                  channel: channel)
                    guard try await handle(head, parts: &parts, response: response), keepAlive else { break requests }
                }
                // The connection closes next, and a close drops what NIO still holds for the
                // socket: the end of a large response the client reads slowly (a save), the
                // end of an exec's output after the client half-closed. So first wait until
                // those bytes went out, then close the output side.
                try? await channel.eventLoop.flatSubmit {
                    let sent = channel.eventLoop.makePromise(of: Void.self)
                    if let tap = try? channel.pipeline.syncOperations.handler(type: HijackTap.self) {
                        tap.drained(sent)
                    } else {
                        sent.succeed(())
                    }
                    return sent.futureResult
                }.get()
                try? await channel.close(mode: .output).get()
            }
        } catch {
            // The peer went away or sent garbage (NIO's error handler has answered a 400).
        }
    }

    /// Reads the body the endpoint wants, runs it, answers. False when the connection must
    /// close (a request whose body ended early: nothing was done).
    private func handle(_ head: HTTPRequestHead, parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
                        response: EngineResponse) async throws -> Bool {
        var request: EngineRequest
        var route: EngineRouter.Route
        do {
            request = try EngineRequest(head: head)
            route = router.route(request)
        } catch {
            guard try await discardBody(&parts) else { return false }
            try await response.sendError(EngineError(error))
            return true
        }
        var spool: ScratchDirectory?
        defer { spool?.remove() }
        switch route.body {
        case .none:
            guard try await discardBody(&parts) else { return false }
        case .json:
            var data = Data()
            var tooLarge = false
            while true {
                guard let part = try await parts.next() else { return false }
                if case .body(let b) = part {
                    if data.count + b.readableBytes > EngineRequest.maxJSONBody { tooLarge = true } else { data.append(contentsOf: b.readableBytesView) }
                } else if case .end = part { break }
            }
            if tooLarge {
                try await response.sendError(EngineError(status: .payloadTooLarge, message: "request body larger than \(EngineRequest.maxJSONBody) bytes"))
                return true
            }
            request.body = .data(data)
        case .file:
            let dir = try store.makeScratchDirectory()
            spool = dir
            let path = dir.url.deletingLastPathComponent().appendingPathComponent("request-body").path
            guard try await spoolBody(&parts, to: path) else { return false }
            request.body = .file(path)
        case .stream:
            // The handler reads the body as it arrives: ``BodyTap`` sends it into the pipe it
            // made at the head, and this task waits for the end. (Without one, this task
            // feeds the pipe itself.) Neither holds the whole.
            let channel = response.channel
            let tapped = try await channel?.eventLoop.submit {
                try channel?.pipeline.syncOperations.handler(type: BodyTap.self).takePipe()
            }.get() ?? nil
            let pipe = tapped ?? BodyPipe()
            request.body = .stream(pipe)
            let streamed = request
            async let answered = Self.respond(route.handler, streamed, response, stopping: pipe)
            let complete = await feed(&parts, into: pipe)
            return try await answered && complete
        }
        return try await Self.respond(route.handler, request, response)
    }

    /// Runs the handler and answers its error; false when the connection must close. With
    /// `stopping`, the body's pipe is told when the handler is done (a sender waiting for room
    /// goes on), and a body that ended early gets no answer at all.
    private static func respond(_ handler: @Sendable (EngineRequest, EngineResponse) async throws -> Void,
                                _ request: EngineRequest, _ response: EngineResponse, stopping pipe: BodyPipe? = nil) async throws -> Bool {
        defer { pipe?.stop() }
        do {
            try await handler(request, response)
            if response.closesConnection { return false }
        } catch {
            if pipe?.failed == true { return false }
            if response.abortsOnError && response.started { return false }
            let e = EngineError(error)
            if response.streaming {
                try await response.streamError(e.message)
                try await response.finish()
            } else if !response.started {
                try await response.sendError(e)
            } else {
                return false
            }
        }
        return true
    }

    /// Sends a body's pieces into `pipe` as they arrive; false (and the pipe failed) when it
    /// ended before its end.
    private func feed(_ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator, into pipe: BodyPipe) async -> Bool {
        do {
            reading: while let part = try await parts.next() {
                switch part {
                case .body(let buffer): await pipe.send(buffer)
                case .end: pipe.finish(); return true
                case .head: break reading
                }
            }
        } catch {}
        pipe.fail(StrataError(.corruptData, "the request body ended before its end (the client hung up)"))
        return false
    }

    /// Reads and drops a body; false when the request ended before its end.
    private func discardBody(_ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator) async throws -> Bool {
        while let part = try await parts.next() {
            if case .end = part { return true }
        }
        return false
    }

    /// Streams a body into a new file; false (and the file removed) when it ended early.
    private func spoolBody(_ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator, to path: String) async throws -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StrataError.system("cannot create \(path)") }
        var complete = false
        defer {
            close(fd)
            if !complete { unlink(path) }
        }
        while let part = try await parts.next() {
            switch part {
            case .head: return false
            case .body(let buffer):
                try buffer.withUnsafeReadableBytes { raw in
                    var off = 0
                    while off < raw.count {
                        let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                        if n < 0 {
                            if errno == EINTR { continue }
                            throw StrataError.system("cannot write \(path)")
                        }
                        off += n
                    }
                }
            case .end:
                complete = true
                return true
            }
        }
        return false
    }
}
