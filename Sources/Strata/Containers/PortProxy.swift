import CArchive
import Foundation
import Synchronization

/// The published ports of one run of a container (``PublishedPort``), as docker's userland
/// proxy passes them: a listening socket on the host for each, bound before the run starts (a
/// port in use fails the start), and for each connection a TCP connection to the container's
/// port on its loopback, made inside its network namespace, with the bytes copied both ways
/// (two threads per connection, at most ``maxConnections`` at once) until both sides are
/// done. A UDP port is relayed by flows (``relay(_:port:)``, `PortProxy+UDP.swift`).
/// ``stop()`` ends it all when the run ends.
final class PortProxy: Sendable {
    /// The ports as bound: a requested port 0 is the one the system chose.
    let bound: [PublishedPort]
    private let listeners: [(fd: Int32, port: PublishedPort)]
    /// Opens the container's network namespace (`/proc/PID/ns/net`): nil while it is not up.
    private let openNamespace: @Sendable () async -> Int32?
    let state = Mutex(State())
    /// Connections passed at once, per run.
    static let maxConnections = 512

    struct State {
        var namespace: Int32?
        var open: Set<Int32> = []
        /// A published UDP port's flows: by listener and client address, the socket connected
        /// to the container's port (``PortProxy/relay(_:port:)``).
        var flows: [String: Int32] = [:]
        /// The accept threads run (and close the listeners when they end).
        var accepting = false
        var stopped = false
    }

    /// Binds every port; on a failure closes what it bound and throws a conflict error that
    /// names the port (`address already in use`).
    init(_ ports: [PublishedPort], openNamespace: @escaping @Sendable () async -> Int32?) throws {
        var made: [(fd: Int32, port: PublishedPort)] = []
        do {
            for p in ports { made.append(try Self.listen(p)) }
        } catch {
            for m in made { close(m.fd) }
            throw error
        }
        listeners = made
        bound = made.map(\.port)
        self.openNamespace = openNamespace
    }

    deinit {
        stop()
    }

    /// Starts accepting connections, one thread per port (nothing once stopped).
    func start() {
        let go = state.withLock { s -> Bool in
            guard !s.stopped, !s.accepting else { return false }
            s.accepting = true
            return true
        }
        guard go else { return }
        for l in listeners {
            if l.port.isUDP {
                Thread.detachNewThread { [self] in relay(l.fd, port: l.port) }
            } else {
                Thread.detachNewThread { [self] in accept(l.fd, port: l.port) }
            }
        }
    }

    /// Closes the listeners and every connection (idempotent).
    func stop() {
        let (first, accepting, open, ns) = state.withLock { s -> (Bool, Bool, Set<Int32>, Int32?) in
            guard !s.stopped else { return (false, false, [], nil) }
            s.stopped = true
            defer { s.open = []; s.namespace = nil }
            return (true, s.accepting, s.open, s.namespace)
        }
        guard first else { return }
        // A running accept loop ends at the shutdown and closes its listener; one never
        // started is closed here (a start that failed after the ports were bound).
        for l in listeners {
            // (A UDP relay sees `stopped` within its receive timeout and closes its socket.)
            if accepting { shutdown(l.fd, Int32(SHUT_RDWR)) } else { close(l.fd) }
        }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        if let ns { close(ns) }
    }

    private static func listen(_ p: PublishedPort) throws -> (Int32, PublishedPort) {
        let type = p.isUDP ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StrataError.system("cannot open a socket to publish port \(p.containerPort)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(p.hostPort).bigEndian
        addr.sin_addr.s_addr = p.hostIP.isEmpty ? INADDR_ANY : inet_addr(p.hostIP)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
                bind(fd, a, len) == 0 && (p.isUDP || Glibc.listen(fd, 128) == 0) && getsockname(fd, a, &len) == 0
            }
        }
        guard ok else {
            let e = errno
            close(fd)
            throw StrataError(e == EADDRINUSE ? .conflict : .io,
                              "cannot publish port \(p.containerPort) on \(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort): \(String(cString: strerror(e)))")
        }
        var chosen = p
        chosen.hostPort = Int(UInt16(bigEndian: addr.sin_port))
        return (fd, chosen)
    }

    private func accept(_ listener: Int32, port: PublishedPort) {
        defer { close(listener) }
        while true {
            // Close-on-exec from the start: a runtime launched meanwhile must not hold it.
            let client = strata_accept_cloexec(listener)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // shut down by stop()
            }
            Task { await self.pass(client, to: port.containerPort) }
        }
    }

    /// Connects `client` to the container's port and copies between them.
    private func pass(_ client: Int32, to containerPort: Int) async {
        guard let ns = await namespace() else {
            close(client)
            return
        }
        let target = strata_connect_in_netns(ns, UInt16(containerPort))
        guard target >= 0 else {
            close(client)  // nothing listens there (yet): the client sees its connection closed
            return
        }
        let registered = state.withLock { s -> Bool in
            // Two threads per connection: past the limit a new one is closed at once.
            guard !s.stopped, s.open.count < 2 * Self.maxConnections else { return false }
            s.open.insert(client)
            s.open.insert(target)
            return true
        }
        guard registered else {
            close(client)
            close(target)
            return
        }
        let pair = Pair(a: client, b: target) { [self] in
            state.withLock { s in
                s.open.remove(client)
                s.open.remove(target)
            }
        }
        Thread.detachNewThread { pair.pump(from: client, to: target) }
        Thread.detachNewThread { pair.pump(from: target, to: client) }
    }

    /// The namespace, opened once per run.
    func namespace() async -> Int32? {
        if let ns = state.withLock({ $0.namespace }) { return ns }
        guard let fd = await openNamespace() else { return nil }
        let kept = state.withLock { s -> Int32? in
            if s.stopped { return nil }
            if let ns = s.namespace { return ns }
            s.namespace = fd
            return fd
        }
        if kept != fd { close(fd) }
        return kept
    }

    /// One proxied connection: each direction copies until its source ends, then ends its
    /// destination's writing; the second to finish closes both.
    private final class Pair: Sendable {
        let a: Int32, b: Int32
        let finished: @Sendable () -> Void
        private let done = Mutex(0)

        init(a: Int32, b: Int32, finished: @escaping @Sendable () -> Void) {
            self.a = a
            self.b = b
            self.finished = finished
        }

        func pump(from src: Int32, to dst: Int32) {
            let size = 64 << 10
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buffer.deallocate() }
            copying: while true {
                let n = read(src, buffer, size)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                var off = 0
                while off < n {
                    let w = send(dst, buffer + off, n - off, Int32(MSG_NOSIGNAL))
                    if w < 0 && errno == EINTR { continue }
                    if w <= 0 { break copying }
                    off += w
                }
            }
            shutdown(dst, Int32(SHUT_WR))
            let last = done.withLock { d -> Bool in
                d += 1
                return d == 2
            }
            if last {
                finished()
                close(a)
                close(b)
            }
        }
    }
}
