import Dispatch
import NIOCore
import Strata
import Synchronization

/// A request body on its way from the connection's task to a reader on a thread of its own
/// (``Store/load(stream:name:sizeHint:options:)``): the connection sends each piece as NIO
/// read it, the reader takes them in order without a copy. At most ``limit`` bytes wait in
/// between: a sender beyond it is suspended, so the connection stops reading the socket
/// (back-pressure up to the client) instead of holding the body in memory.
final class BodyPipe: ByteStream {
    /// Bytes queued before the sender waits; it goes on once half of them were taken.
    static let limit = 8 << 20

    private struct State {
        var queue = CircularBuffer<ByteBuffer>()
        var queued = 0
        /// The body's end arrived.
        var ended = false
        /// The body ended before its end (the client hung up).
        var failure: StrataError?
        /// The reader needs no more: what still arrives is dropped.
        var stopped = false
        /// A sender waiting for room.
        var waiter: CheckedContinuation<Void, Never>?
        /// The storage of the piece the reader holds, kept alive until its next call.
        var held: Unmanaged<AnyObject>?
        /// ``sendNow(_:)`` went over the limit: ``onRoom`` is due once half is taken.
        var roomWanted = false
    }

    private let state = Mutex(State())
    /// Called (on the reader's thread) once a pipe ``sendNow(_:)`` filled has room again, or
    /// the reader stopped: ``BodyTap`` reads on then.
    private let onRoom: (@Sendable () -> Void)?

    init(onRoom: (@Sendable () -> Void)? = nil) {
        self.onRoom = onRoom
    }
    /// Signalled once per queued piece and once at the end (or failure).
    private let ready = DispatchSemaphore(value: 0)

    deinit {
        state.withLock { s in s.held?.release() }
    }

    // MARK: The connection's side

    /// Queues a piece; waits while more than ``limit`` bytes are queued. Dropped once the
    /// reader stopped.
    func send(_ piece: ByteBuffer) async {
        guard piece.readableBytes > 0 else { return }
        let (queued, full) = state.withLock { s -> (Bool, Bool) in
            guard !s.stopped else { return (false, false) }
            s.queue.append(piece)
            s.queued += piece.readableBytes
            return (true, s.queued > Self.limit)
        }
        guard queued else { return }
        ready.signal()
        guard full else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.stopped || s.queued <= Self.limit / 2 { return true }
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
    }

    /// Queues a piece without waiting (from the event loop, ``BodyTap``): the caller holds
    /// its reads while ``isFull``. Dropped once the reader stopped.
    func sendNow(_ piece: ByteBuffer) {
        guard piece.readableBytes > 0 else { return }
        let queued = state.withLock { s -> Bool in
            guard !s.stopped else { return false }
            s.queue.append(piece)
            s.queued += piece.readableBytes
            if s.queued > Self.limit { s.roomWanted = true }
            return true
        }
        if queued { ready.signal() }
    }

    /// More than ``limit`` bytes wait for the reader (and it has not stopped).
    var isFull: Bool { state.withLock { !$0.stopped && $0.queued > Self.limit } }

    /// The body arrived whole.
    func finish() {
        state.withLock { $0.ended = true }
        ready.signal()
    }

    /// The body ended before its end: the reader fails with `error`, and keeps nothing.
    func fail(_ error: StrataError) {
        state.withLock { s in
            if s.failure == nil { s.failure = error }
            s.ended = true
        }
        ready.signal()
    }

    /// Whether the body ended before its end.
    var failed: Bool { state.withLock { $0.failure != nil } }

    // MARK: The reader's side (ByteStream)

    func next() throws -> UnsafeRawBufferPointer? {
        ready.wait()
        enum Taken { case piece(UnsafeRawBufferPointer), end, failed(StrataError) }
        let (taken, waiter, room) = state.withLock { s -> (Taken, CheckedContinuation<Void, Never>?, Bool) in
            s.held?.release()
            s.held = nil
            if let f = s.failure { return (.failed(f), nil, false) }
            guard let piece = s.queue.popFirst() else { return (.end, nil, false) }
            s.queued -= piece.readableBytes
            let (bytes, storage) = piece.withUnsafeReadableBytesWithStorageManagement { ($0, $1.retain()) }
            s.held = storage
            var w: CheckedContinuation<Void, Never>?
            var room = false
            if s.queued <= Self.limit / 2 {
                w = s.waiter
                s.waiter = nil
                room = s.roomWanted
                s.roomWanted = false
            }
            return (.piece(bytes), w, room)
        }
        waiter?.resume()
        if room { onRoom?() }
        switch taken {
        case .piece(let bytes):
            return bytes
        case .end:
            ready.signal()  // every later call answers the end at once
            return nil
        case .failed(let e):
            ready.signal()
            throw e
        }
    }

    func stop() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.stopped = true
            s.queue.removeAll()
            s.queued = 0
            s.held?.release()
            s.held = nil
            s.roomWanted = false
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
        onRoom?()
    }
}
