import NIOCore
import NIOHTTP1
import Strata

/// After the HTTP decoder: the body of a request whose route streams it (`docker load`) goes
/// from here straight into a ``BodyPipe`` on the event loop, piece by piece as NIO reads it,
/// instead of through the connection's async stream and its task: one hand-over per piece
/// fewer, for a body of gigabytes. The head and the end still go on to the connection's
/// task, which takes the pipe (``takePipe()``) when it sees the head. While the pipe is full
/// this handler holds the channel's reads, so the client is pushed back instead of memory
/// growing; the pipe's reader lets them go once it took half.
final class BodyTap: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Whether a request's body streams to its handler (the router's ``EngineRouter/BodyPolicy/stream``).
    private let streams: @Sendable (HTTPRequestHead) -> Bool
    /// The pipe of the request whose body is arriving.
    private var active: BodyPipe?
    /// The pipe made at the last head, until the connection's task takes it.
    private var untaken: BodyPipe?
    private var context: ChannelHandlerContext?
    /// A read held back while the pipe is full.
    private var readHeld = false

    init(streams: @escaping @Sendable (HTTPRequestHead) -> Bool) {
        self.streams = streams
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// The pipe made for the head the connection's task just received, or nil when this
    /// request's body does not stream (called on the event loop).
    func takePipe() -> BodyPipe? {
        defer { untaken = nil }
        return untaken
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if streams(head) {
                let tap = NIOLoopBound(self, eventLoop: context.eventLoop)
                let pipe = BodyPipe(onRoom: { tap.eventLoop.execute { tap.value.readOn() } })
                active = pipe
                untaken = pipe
            }
            context.fireChannelRead(data)
        case .body(let buffer):
            guard let pipe = active else { return context.fireChannelRead(data) }
            pipe.sendNow(buffer)
        case .end:
            if let pipe = active {
                pipe.finish()
                active = nil
            }
            context.fireChannelRead(data)
        }
    }

    func read(context: ChannelHandlerContext) {
        if let pipe = active, pipe.isFull {
            readHeld = true
            return
        }
        context.read()
    }

    private func readOn() {
        guard readHeld, let context else { return }
        if let pipe = active, pipe.isFull { return }
        readHeld = false
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        failActive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failActive()
        context.fireErrorCaught(error)
    }

    private func failActive() {
        guard let pipe = active else { return }
        active = nil
        pipe.fail(StrataError(.corruptData, "the request body ended before its end (the client hung up)"))
    }
}
