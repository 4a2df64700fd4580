import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Strata
#if canImport(Glibc)
import Glibc
#endif

/// Where ``EngineServer`` listens: the unix socket (its own or systemd's) and the TCP
/// addresses, every one bound by the same bootstrap and with the same connection pipeline.
extension EngineServer {
    /// One client connection: HTTP request parts in, response parts out.
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    /// A listening socket and the connections it accepts.
    typealias Listener = NIOAsyncChannel<Connection, Never>

    /// The listening socket systemd passed (`LISTEN_PID` is this process, `LISTEN_FDS` is 1:
    /// descriptor 3), or nil.
    public static func systemdSocket(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int32? {
        guard environment["LISTEN_PID"] == String(getpid()), environment["LISTEN_FDS"] == "1" else { return nil }
        return 3
    }

    /// Binds the socket (or takes systemd's) and every TCP address, and says where for a
    /// person. When one cannot be bound, the ones already bound are closed and the socket
    /// file removed before the error is thrown.
    func bindListeners() async throws -> (listeners: [Listener], endpoints: [String]) {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 128)
            // A restarted server gets its TCP port back at once (no wait for TIME_WAIT).
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            // docker half-closes an attach connection at once (no stdin): keep writing to it.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // Reads of up to 1 MiB while a large body streams in (they start small and grow).
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20))
        var listeners: [Listener] = []
        var endpoints: [String] = []
        var boundSocket = false
        let router = self.router
        let streams: @Sendable (HTTPRequestHead) -> Bool = { head in
            (try? EngineRequest(head: head)).map { router.route($0).body == .stream } ?? false
        }
        do {
            if let fd = inheritedSocket {
                listeners.append(try await bootstrap.bind(fd, childChannelInitializer: Self.initializer(tls: nil, streams: streams)))
                endpoints.append("the socket systemd passed (descriptor \(fd))")
            } else {
                try Self.removeStaleSocket(socketPath)
                // The socket is bound under a private name, given its owner and mode, and only then
                // linked to its public path: a client that can connect never sees it 0755, and
                // link(2) fails when a second server took the path in the meantime.
                let staging = Self.stagingPath(for: socketPath)
                unlink(staging)
                listeners.append(try await bootstrap.bind(unixDomainSocketPath: staging, childChannelInitializer: Self.initializer(tls: nil, streams: streams)))
                defer { if staging != socketPath { unlink(staging) } }
                // 0660, and the group `strata` when there is one: its members may use the socket.
                if let g = getgrnam("strata") { _ = chown(staging, geteuid(), g.pointee.gr_gid) }
                guard chmod(staging, 0o660) == 0 else { throw StrataError.system("cannot chmod \(socketPath)") }
                if staging != socketPath {
                    guard link(staging, socketPath) == 0 else {
                        if errno == EEXIST { throw StrataError(.conflict, "another server is listening on \(socketPath)") }
                        throw StrataError.system("cannot create \(socketPath)")
                    }
                }
                boundSocket = true
                endpoints.append("unix://\(socketPath)")
            }
            let context = tls?.context
            for address in tcpAddresses {
                let listener: Listener
                do {
                    listener = try await bootstrap.bind(host: address.bindHost, port: address.port, childChannelInitializer: Self.initializer(tls: context, streams: streams))
                } catch let e as IOError {
                    throw StrataError.system("cannot listen on \(address)", errno: e.errnoCode)
                } catch {
                    throw StrataError(.invalidArgument, "cannot listen on \(address): \(error)", cause: error)
                }
                listeners.append(listener)
                let bound = EngineTCPAddress(host: address.host, port: listener.channel.localAddress?.port ?? address.port)
                endpoints.append("tcp://\(bound)" + (tls.map { " (TLS: client certificates signed by \($0.caCertificatePath) required)" } ?? ""))
            }
        } catch {
            for l in listeners { try? await l.channel.close() }
            if boundSocket { unlink(socketPath) }
            throw error
        }
        return (listeners, endpoints)
    }

    /// The pipeline every connection gets, whichever listener accepted it: TLS first when
    /// `tls` is given (the handshake demands a client certificate), then ``HijackTap``, then
    /// the HTTP server pipeline with its limits, then ``BodyTap`` (`streams`: whether a
    /// request's body streams to its handler).
    static func initializer(tls: NIOSSLContext?, streams: @escaping @Sendable (HTTPRequestHead) -> Bool) -> @Sendable (any Channel) -> EventLoopFuture<Connection> {
        { channel in
            channel.eventLoop.makeCompletedFuture {
                var limits = NIOHTTPDecoderLimitConfiguration()
                limits.maxHeaderFieldSize = Self.maxHeaderBytes
                limits.maxHeaderListSize = Self.maxHeaderBytes
                if let tls {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                }
                // Before the HTTP decoder: an attach with stdin turns the rest of the
                // connection into raw bytes (``HijackTap``).
                try channel.pipeline.syncOperations.addHandler(HijackTap())
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withErrorHandling: true, withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                // After it: a body that streams to its handler goes there from the event loop.
                try channel.pipeline.syncOperations.addHandler(BodyTap(streams: streams))
                return try Connection(wrappingChannelSynchronously: channel)
            }
        }
    }

    /// Removes a socket file no server answers on (left by a crash); refuses to take over a
    /// live one or to remove anything that is not a socket.
    /// A private name for the socket while it is set up, in the directory of `path` (so that it
    /// can be linked there), no longer than `path` when that is near the kernel's limit of 107
    /// bytes; `path` itself when no such name fits.
    static func stagingPath(for path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let name = ".s\(String(getpid(), radix: 36)).\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        let staging = dir.isEmpty ? name : dir + "/" + name
        return staging.utf8.count < 108 ? staging : path
    }

    static func removeStaleSocket(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw StrataError(.invalidArgument, "\(path) exists and is not a socket")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
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
