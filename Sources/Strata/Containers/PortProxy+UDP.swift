import CArchive
import Foundation
import Synchronization

/// A published UDP port, as docker's userland proxy relays one: each client address is a
/// flow, with a UDP socket of its own made inside the container's network namespace and
/// connected to the port on its loopback; what the client sends goes there, and what comes
/// back goes to the client from the published port. A flow quiet for ``udpFlowTimeout`` is
/// dropped (docker-proxy's conntrack timeout); at most ``maxConnections`` at once.
extension PortProxy {
    /// How long a flow with no datagram either way is kept.
    static let udpFlowTimeout: Duration = .seconds(90)
    /// How often the relay and each flow look whether the proxy stopped.
    static let udpPoll = timeval(tv_sec: 0, tv_usec: 250_000)

    /// Relays datagrams to the container until ``stop()``; closes `sock` then.
    func relay(_ sock: Int32, port: PublishedPort) {
        defer { close(sock) }
        var poll = Self.udpPoll
        setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &poll, socklen_t(MemoryLayout<timeval>.size))
        let size = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while !state.withLock({ $0.stopped }) {
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(sock, buffer, size, 0, $0, &len) }
            }
            if n < 0 { continue }  // the poll's timeout, EINTR, or an ICMP error from a client
            let key = "\(sock)/\(from.sin_addr.s_addr):\(from.sin_port)"
            guard let flow = flow(key, listener: sock, client: from, containerPort: port.containerPort) else { continue }
            _ = send(flow, buffer, n, Int32(MSG_NOSIGNAL))
        }
    }

    /// The flow of `key`, made (with its reply thread) on its first datagram; nil when the
    /// container's port cannot be reached yet, or too many flows are open.
    private func flow(_ key: String, listener: Int32, client: sockaddr_in, containerPort: Int) -> Int32? {
        if let fd = state.withLock({ $0.flows[key] }) { return fd }
        guard let ns = namespaceNow() else { return nil }
        let fd = strata_udp_connect_in_netns(ns, UInt16(containerPort))
        guard fd >= 0 else { return nil }
        let kept = state.withLock { s -> Bool in
            guard !s.stopped, s.flows.count < Self.maxConnections else { return false }
            s.flows[key] = fd
            return true
        }
        guard kept else {
            close(fd)
            return nil
        }
        var poll = Self.udpPoll
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &poll, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in replies(fd, key: key, listener: listener, client: client) }
        return fd
    }

    /// Sends what the container answers on a flow back to its client, until the flow has
    /// been quiet for ``udpFlowTimeout`` or the proxy stopped; then drops the flow.
    private func replies(_ fd: Int32, key: String, listener: Int32, client: sockaddr_in) {
        let size = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer {
            buffer.deallocate()
            state.withLock { _ = $0.flows.removeValue(forKey: key) }
            close(fd)
        }
        var client = client
        var last = ContinuousClock.now
        while !state.withLock({ $0.stopped }), ContinuousClock.now - last < Self.udpFlowTimeout {
            let n = recv(fd, buffer, size, 0)
            if n < 0 { continue }  // the poll's timeout, or nothing listening there yet (ICMP)
            last = .now
            _ = withUnsafePointer(to: &client) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(listener, buffer, n, Int32(MSG_NOSIGNAL), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// ``namespace()`` from a relay thread (not one of the concurrency pool's: it may wait).
    private func namespaceNow() -> Int32? {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Int32?>(nil)
        Task {
            let ns = await self.namespace()
            result.withLock { $0 = ns }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 }
    }
}
