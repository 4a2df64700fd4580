import Foundation

/// Bytes that arrive in order from somewhere else (a request body on a socket), read by
/// ``Store/load(stream:name:sizeHint:options:)`` on a thread of its own: `next()` may
/// block until the next piece arrives.
package protocol ByteStream: Sendable {
    /// The next piece, valid until the following call; nil at the end. Throws when the
    /// input failed (it ended before its end): nothing read so far may be kept.
    func next() throws -> UnsafeRawBufferPointer?
    /// The reader needs no more bytes (it finished, or failed): whatever still arrives is
    /// dropped, and a writer waiting for room goes on.
    func stop()
}

/// Where ``Store/save(_:format:to:)`` writes an archive, from a thread of its own: `write`
/// may block until the bytes are taken (back-pressure), and throws when the reader went
/// away.
package protocol ByteSink: Sendable {
    /// Takes a copy of `bytes` (the buffer is reused after the call).
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

extension ByteStream {
    /// Reads and drops what is left, up to the end; throws when the input ended early.
    func drain() throws {
        while try next() != nil {}
    }
}

/// Runs blocking work (reads that wait for a socket) on a thread of its own, never on the
/// cooperative pool nor on Dispatch's shared threads, which other requests need meanwhile.
func onOwnThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        let t = Thread { c.resume(with: Result { try body() }) }
        t.name = name
        t.stackSize = 4 << 20
        t.start()
    }
}
