import Dispatch
import NIOCore
import Strata
import Synchronization

/// A response body on its way from a writer on a thread of its own
/// (``Store/save(_:format:to:name:)``) to the connection's task: the writer's bytes are
/// gathered into pieces of about ``pieceSize`` and handed over; at most ``credits`` pieces
/// are in flight, so a writer faster than the client waits instead of filling memory.
final class ResponsePipe: ByteSink {
    static let pieceSize = 1 << 20
    static let credits = 4

    /// The pieces, in order; ends with the writer's error, if any.
    let pieces: AsyncThrowingStream<ByteBuffer, any Error>
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let room = DispatchSemaphore(value: ResponsePipe.credits)
    private struct State {
        var pending: ByteBuffer?
        var cancelled = false
    }
    private let state = Mutex(State())

    init() {
        (pieces, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self, throwing: (any Error).self)
    }

    // MARK: The writer's side (ByteSink)

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        // A piece holds a little more than pieceSize, so a tar header and the 1 MiB of data
        // after it travel together.
        let capacity = Self.pieceSize + (64 << 10)
        let (full, cancelled) = state.withLock { s -> ([ByteBuffer], Bool) in
            guard !s.cancelled else { return ([], true) }
            var full: [ByteBuffer] = []
            if let p = s.pending, p.readableBytes + bytes.count > capacity {
                full.append(p)
                s.pending = nil
            }
            if s.pending == nil { s.pending = ByteBufferAllocator().buffer(capacity: max(capacity, bytes.count)) }
            s.pending!.writeBytes(bytes)
            if s.pending!.readableBytes >= Self.pieceSize {
                full.append(s.pending!)
                s.pending = nil
            }
            return (full, false)
        }
        if cancelled { throw Self.gone }
        for piece in full {
            room.wait()
            if state.withLock({ $0.cancelled }) { throw Self.gone }
            continuation.yield(piece)
        }
    }

    private static let gone = StrataError(.io, "the client closed the connection before the archive was sent")

    // MARK: The connection's side

    /// The writer finished (`error` nil) or failed: the rest goes out, then the stream ends.
    func finish(_ error: (any Error)?) {
        let rest = state.withLock { s -> ByteBuffer? in
            defer { s.pending = nil }
            return s.pending
        }
        if error == nil, let rest { continuation.yield(rest) }
        continuation.finish(throwing: error)
    }

    /// A piece was written to the connection: room for the next.
    func taken() { room.signal() }

    /// The connection failed: the writer's next write throws.
    func cancel() {
        state.withLock { $0.cancelled = true }
        room.signal()
        continuation.finish()
    }
}
