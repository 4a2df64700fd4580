import NIOCore
import Synchronization

/// What a client sends on a connection once an attach took it over (the container's stdin,
/// `docker run -i`): the pieces as NIO read them, in order, until the client half-closes or
/// hangs up. At most ``limit`` bytes wait here; beyond that the connection stops reading the
/// socket (``HijackTap``), which pushes back on the client instead of growing memory.
final class HijackedInput: Sendable {
    /// Bytes queued before the connection stops reading; it reads on once half are taken.
    static let limit = 1 << 20

    private struct State {
        var queue = CircularBuffer<ByteBuffer>()
        var queued = 0
        var ended = false
        /// The tap held back a read because the queue was full.
        var readHeld = false
        /// Asks the tap to read on (hops to the event loop).
        var readOn: (@Sendable () -> Void)?
        var waiter: CheckedContinuation<ByteBuffer?, Never>?
    }

    private let state = Mutex(State())

    // MARK: The tap's side (on the event loop)

    func connect(readOn: @escaping @Sendable () -> Void) {
        state.withLock { $0.readOn = readOn }
    }

    func yield(_ piece: ByteBuffer) {
        guard piece.readableBytes > 0 else { return }
        let waiter = state.withLock { s -> CheckedContinuation<ByteBuffer?, Never>? in
            guard !s.ended else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.queue.append(piece)
            s.queued += piece.readableBytes
            return nil
        }
        waiter?.resume(returning: piece)
    }

    /// The client half-closed or hung up: the reader gets the queued pieces, then nil.
    func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<ByteBuffer?, Never>? in
            s.ended = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Whether the queue is full; if so, the reader asks the tap to read on once it took half.
    func holdRead() -> Bool {
        state.withLock { s in
            guard s.queued > Self.limit, !s.ended else { return false }
            s.readHeld = true
            return true
        }
    }

    // MARK: The reader's side

    /// The next piece; nil once the client closed its side (or the task is cancelled).
    func next() async -> ByteBuffer? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<ByteBuffer?, Never>) in
                let (now, readOn) = state.withLock { s -> (ByteBuffer??, (@Sendable () -> Void)?) in
                    if let piece = s.queue.popFirst() {
                        s.queued -= piece.readableBytes
                        var readOn: (@Sendable () -> Void)?
                        if s.readHeld, s.queued <= Self.limit / 2 {
                            s.readHeld = false
                            readOn = s.readOn
                        }
                        return (.some(piece), readOn)
                    }
                    if s.ended || Task.isCancelled { return (.some(nil), nil) }
                    s.waiter = c
                    return (nil, nil)
                }
                readOn?()
                if let now { c.resume(returning: now) }
            }
        } onCancel: {
            finish()
        }
    }
}

/// First in a connection's pipeline: hands the bytes to the HTTP decoder until an attach
/// takes the connection over (``EngineResponse/takeOverInput()``, before its 101). From then
/// on the client's bytes are raw stdin for ``HijackedInput``, its half-close is the end of
/// that stdin, and this handler asks for each next read itself, none while the input is full.
final class HijackTap: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    private var input: HijackedInput?
    private var context: ChannelHandlerContext?
    private var readPending = false
    /// The client closed its side (before or after a take-over).
    private var inputClosed = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// From now on the connection's bytes go to `input` (called on the event loop).
    func takeOver(_ input: HijackedInput) {
        guard let context else { input.finish(); return }
        self.input = input
        // A client that already hung up sends nothing more.
        if inputClosed || !context.channel.isActive {
            input.finish()
            return
        }
        // From here on this handler asks for the reads: the connection's async stream (last
        // in the pipeline) asks only while the connection's task reads it, and that task is
        // running the attach.
        context.read()
        let tap = NIOLoopBound(self, eventLoop: context.eventLoop)
        input.connect { tap.eventLoop.execute { tap.value.readOn() } }
    }

    /// Completes `promise` once everything written on the connection before it has gone to
    /// the socket: an empty write at the head of the pipeline, queued behind the others.
    /// (NIO's close drops writes still queued once the client half-closed, as `docker exec -i`
    /// does at the end of its stdin: the end of the command's output would be lost.)
    func drained(_ promise: EventLoopPromise<Void>) {
        guard let context, context.channel.isActive else { return promise.succeed(()) }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
    }

    private func readOn() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let input else { return context.fireChannelRead(data) }
        input.yield(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            inputClosed = true
            if let input {
                input.finish()
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        input?.finish()
        context.fireChannelInactive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let input else { return context.fireChannelReadComplete() }
        if input.holdRead() {
            readPending = true
        } else {
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        // Taken over: this handler reads on by itself (``channelReadComplete(context:)``).
        if input != nil { return }
        context.read()
    }
}
