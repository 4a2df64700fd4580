import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Strata
#if canImport(Glibc)
import Glibc
#endif

/// The Docker Engine API over a unix socket: `docker` and the Docker SDKs talk to a strata
/// store as they would to dockerd. A thin adapter: every endpoint calls the `Strata`,
/// `StrataBuild` or `StrataRegistry` library; the daemon keeps no state outside the store.
///
/// ```swift
/// let server = EngineServer(store: store, socketPath: "/var/lib/strata/strata.sock")
/// try await server.run()          // until server.shutdown() (e.g. on SIGTERM)
/// ```
///
/// Whoever can connect to the socket can do anything the store's owner can: the socket is
/// created mode 0660.
public final class EngineServer: Sendable {
    /// The version `docker version` shows for the server.
    public static let version = "0.1.0"
    /// The largest request head accepted (request line and headers); larger ones get a 400.
    public static let maxHeaderBytes = 64 << 10

    public let store: Store
    public let socketPath: String
    private let router: EngineRouter
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listener: (any Channel)?
        var shuttingDown = false
        /// Open connections, and whether each is between requests (closed at once on shutdown).
        var connections: [ObjectIdentifier: (channel: any Channel, idle: Bool)] = [:]
    }

    /// A socket handed over by systemd (socket activation): already bound and listening;
    /// its file, mode and group are the socket unit's, and it is not removed on exit.
    private let inheritedSocket: Int32?

    public init(store: Store, socketPath: String, inheritedSocket: Int32? = nil) {
        self.store = store
        self.socketPath = socketPath
        self.inheritedSocket = inheritedSocket
        self.router = EngineRouter(store: store)
    }

    /// The listening socket systemd passed (`LISTEN_PID` is this process, `LISTEN_FDS` is 1:
    /// descriptor 3), or nil.
    public static func systemdSocket(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int32? {
        guard environment["LISTEN_PID"] == String(getpid()), environment["LISTEN_FDS"] == "1" else { return nil }
        return 3
    }

    /// Records the runs a killed server left marked running as exited
    /// (``Store/recoverInterruptedRuns()``), binds the socket (mode 0660), serves until
    /// ``shutdown()``, lets requests in flight finish, and removes the socket. A socket file left by a server that is gone is
    /// replaced; one a live server answers on is an error.
    public func run() async throws {
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                var limits = NIOHTTPDecoderLimitConfiguration()
                limits.maxHeaderFieldSize = Self.maxHeaderBytes
                limits.maxHeaderListSize = Self.maxHeaderBytes
                // Before the HTTP decoder: an attach with stdin turns the rest of the
                // connection into raw bytes (``HijackTap``).
                try channel.pipeline.syncOperations.addHandler(HijackTap())
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withErrorHandling: true, withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
            }
        }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 128)
            // docker half-closes an attach connection at once (no stdin): keep writing to it.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // Reads of up to 1 MiB while a large body streams in (they start small and grow).
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20))
        let server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
        // Runs a killed server (or CLI) left marked running read as exited, as after dockerd's restart.
        try await store.recoverInterruptedRuns()
        if let fd = inheritedSocket {
            server = try await bootstrap.bind(fd, childChannelInitializer: initializer)
        } else {
            try Self.removeStaleSocket(socketPath)
            server = try await bootstrap.bind(unixDomainSocketPath: socketPath, childChannelInitializer: initializer)
        }
        let owned = inheritedSocket == nil
        defer { if owned { unlink(socketPath) } }
        if owned {
            // 0660, and the group `strata` when there is one: its members may use the socket.
            if let g = getgrnam("strata") { _ = chown(socketPath, geteuid(), g.pointee.gr_gid) }
            guard chmod(socketPath, 0o660) == 0 else {
                let e = StrataError.system("cannot chmod \(socketPath)")
                try? await server.channel.close()
                throw e
            }
        }
        let stopNow = state.withLockedValue { s -> Bool in
            s.listener = server.channel
            return s.shuttingDown
        }
        if stopNow { try? await server.channel.close() }
        try await withThrowingDiscardingTaskGroup { group in
            do {
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            } catch where state.withLockedValue({ $0.shuttingDown }) {
                // The listener was closed by shutdown(): drain below.
            }
            // Running containers are killed (recorded as exited, 137); their attach and wait
            // connections then finish.
            await router.runner.stopAll()
        }
    }

    /// Stops accepting connections, closes idle ones, and lets each request in flight finish
    /// (its connection closes after the response). ``run()`` returns once all are done.
    public func shutdown() {
        let (listener, idle) = state.withLockedValue { s -> ((any Channel)?, [any Channel]) in
            s.shuttingDown = true
            return (s.listener, s.connections.values.filter(\.idle).map(\.channel))
        }
        listener?.close(promise: nil)
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

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
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
                // The connection closes next, and a plain close drops what NIO still holds for
                // the socket: the end of a large response the client reads slowly (a save).
                // Closing the output side first waits until those bytes went out.
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
            // The handler reads the body while this task feeds it: neither holds the whole.
            let pipe = BodyPipe()
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

    /// Removes a socket file no server answers on (left by a crash); refuses to take over a
    /// live one or to remove anything that is not a socket.
    static func removeStaleSocket(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw StrataError(.invalidArgument, "\(path) exists and is not a socket")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StrataError.system("socket") }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw StrataError(.invalidArgument, "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let live = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        if live { throw StrataError(.conflict, "another server is listening on \(path)") }
        unlink(path)
    }
}
