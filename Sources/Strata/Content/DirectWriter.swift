import CArchive
import Foundation
import Synchronization

/// Writes a large file of known size with O_DIRECT, in 1 MiB pieces, on background threads.
///
/// Large blobs (a pulled or loaded layer, a saved archive) do not need to pass through the
/// page cache: a buffered write puts every byte into a fresh cache page, ext4 allocates
/// blocks for them and writeback pushes them out later from a kernel thread, all on the
/// cores that hash. On a VM a fresh page can cost more than the disk: buffered 1 GB saves
/// took 0.2–3.8 s here, direct ones 0.5–0.7 s.
///
/// The caller's bytes are copied once into one of two aligned buffers. A full buffer is
/// shown to `observe` on the caller's thread (the digester hashes it while it is still in
/// cache) and then written by a serial queue while the caller fills the next, so hashing
/// and the device overlap. The tail that is not a whole block is written buffered at the
/// end. The file is made durable by the usual fsync (law 1), which then has only metadata
/// left to write. (Decompressing on a second thread as well was measured: slower.)
///
/// When the filesystem refuses O_DIRECT (tmpfs on older kernels, some FUSE filesystems),
/// ``make(fd:path:observe:)`` returns nil and the caller writes buffered; a write refused
/// later (`EINVAL`) switches the rest of the file to buffered writes.
final class DirectWriter {
    /// O_DIRECT needs the buffer, the length and the file offset aligned; 4 KiB suits
    /// every block size Linux filesystems use.
    static let alignment = 4096
    static let pieceSize = 1 << 20
    static let bufferCount = 2

    private let fd: Int32
    private let path: String
    private let writes = DispatchQueue(label: "strata.direct-writer")
    private var buffers: [UnsafeMutableRawBufferPointer]
    /// One per buffer, 1 when the buffer is idle: taken while it is filled or written.
    private let idle: [DispatchSemaphore]
    private var current = 0
    private var fill = 0
    /// File offset of the current buffer's first byte.
    private var offset: Int64 = 0
    private let state = Shared()
    private let observe: (UnsafeRawBufferPointer) -> Void

    /// Set by the writing thread, read by the caller: shared by reference with the queue.
    private final class Shared: Sendable {
        struct State: Sendable {
            var error: StrataError?
            var buffered = false
        }
        private let state = Mutex(State())
        func withLock<T>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }
    }

    /// A buffer handed to the queue; the semaphore hand-off keeps it unchanged meanwhile.
    private struct Piece: @unchecked Sendable { let buf: UnsafeRawBufferPointer }

    /// A writer for `fd`, or nil when it is not a regular file on a filesystem with direct
    /// I/O (then `fd` is left as it was, for buffered writes). The writer works on its own
    /// duplicate of `fd`, so a write still queued can never land in a file that reused the
    /// caller's descriptor number.
    /// `observe` sees every byte, in order, on the caller's thread, before it is written.
    static func make(fd: Int32, path: String, pool: AlignedBufferPool? = nil,
                     observe: @escaping (UnsafeRawBufferPointer) -> Void = { _ in }) -> DirectWriter? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let own = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard own >= 0 else { return nil }
        guard strata_set_direct(own) == 0 else {
            close(own)
            return nil
        }
        return DirectWriter(fd: own, path: path, pool: pool ?? AlignedBufferPool(limit: 0), observe: observe)
    }

    private let pool: AlignedBufferPool

    private init(fd: Int32, path: String, pool: AlignedBufferPool, observe: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.fd = fd
        self.path = path
        self.observe = observe
        self.pool = pool
        buffers = (0..<Self.bufferCount).map { _ in pool.take() }
        idle = (0..<Self.bufferCount).map { _ in DispatchSemaphore(value: 1) }
        idle[0].wait()
    }

    deinit {
        // Wait for every piece still in flight before the buffers go.
        waitForOthers()
        idle[current].signal()  // libdispatch traps on a semaphore freed below its start value
        for b in buffers { pool.give(b) }
        _ = strata_clear_direct(fd)  // the flag belongs to the open file, shared with the caller
        close(fd)
    }

    func write(_ buf: UnsafeRawBufferPointer) throws {
        var rest = buf
        while !rest.isEmpty {
            let n = min(rest.count, Self.pieceSize - fill)
            UnsafeMutableRawBufferPointer(rebasing: buffers[current][fill..<fill + n])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[0..<n]))
            fill += n
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if fill == Self.pieceSize {
                observe(UnsafeRawBufferPointer(rebasing: buffers[current][0..<fill]))
                submit(index: current, length: fill)
                current = (current + 1) % Self.bufferCount
                idle[current].wait()
                fill = 0
                try check()
            }
        }
    }

    /// Writes what is left and waits for every write; returns once the bytes are in the file.
    func finish() throws {
        if fill > 0 { observe(UnsafeRawBufferPointer(rebasing: buffers[current][0..<fill])) }
        let whole = fill & ~(Self.alignment - 1)
        let tail = fill - whole
        if whole > 0 {
            // The whole blocks go as a piece; the tail moves to the start of the next buffer.
            let from = buffers[current]
            submit(index: current, length: whole)
            let next = (current + 1) % Self.bufferCount
            idle[next].wait()
            if tail > 0 {
                UnsafeMutableRawBufferPointer(rebasing: buffers[next][0..<tail])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: from[whole..<whole + tail]))
            }
            current = next
        }
        waitForOthers()
        try check()
        if tail > 0 {
            let piece = UnsafeRawBufferPointer(rebasing: buffers[current][0..<tail])
            _ = strata_clear_direct(fd)
            try Self.pwriteAll(fd: fd, piece, at: offset, path: path, state: state)
            offset += Int64(tail)
        }
        fill = 0
    }

    /// Waits until every buffer but the current one is idle.
    private func waitForOthers() {
        for (i, s) in idle.enumerated() where i != current {
            s.wait()
            s.signal()
        }
    }

    private func check() throws {
        if let e = state.withLock({ $0.error }) { throw e }
    }

    /// Hands buffer `index` (holding `length` bytes, a multiple of the alignment) to the
    /// queue; it becomes idle when written. (The semaphore is signalled from the write
    /// itself: a notify block could wait behind fsyncs running on the global queues.)
    private func submit(index: Int, length: Int) {
        let piece = Piece(buf: UnsafeRawBufferPointer(rebasing: buffers[index][0..<length]))
        let at = offset
        offset += Int64(length)
        let fd = fd, path = path, state = state, done = idle[index]
        writes.async {
            defer { done.signal() }
            if state.withLock({ $0.error != nil }) { return }
            do {
                try DirectWriter.pwriteAll(fd: fd, piece.buf, at: at, path: path, state: state)
            } catch let e as StrataError {
                state.withLock { $0.error = e }
            } catch {
                state.withLock { $0.error = StrataError(.io, "cannot write \(path)", cause: error) }
            }
        }
    }

    private static func pwriteAll(fd: Int32, _ buf: UnsafeRawBufferPointer, at offset: Int64, path: String, state: Shared) throws {
        guard var p = buf.baseAddress else { return }
        var left = buf.count
        var at = offset
        while left > 0 {
            let n = pwrite(fd, p, left, off_t(at))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EINVAL, state.withLock({ !$0.buffered }) {
                    // The filesystem took O_DIRECT at open but not for this write.
                    state.withLock { $0.buffered = true }
                    _ = strata_clear_direct(fd)
                    continue
                }
                throw StrataError.system("cannot write \(path)")
            }
            p += n
            left -= n
            at += Int64(n)
        }
    }
}

/// Aligned 1 MiB buffers for ``DirectWriter``s, kept between blobs. A fresh buffer costs a
/// page fault per 4 KiB on first touch (a 50-layer pull took 25,000 of them); a kept one
/// costs nothing. One pool per store; it keeps at most `limit` buffers.
final class AlignedBufferPool: Sendable {
    /// A free buffer: owned by the pool while listed, by one writer once taken.
    private struct Buffer: @unchecked Sendable { let raw: UnsafeMutableRawBufferPointer }
    private let free = Mutex<[Buffer]>([])
    private let limit: Int

    init(limit: Int = 8) { self.limit = limit }

    deinit { free.withLock { for b in $0 { b.raw.deallocate() } } }

    func take() -> UnsafeMutableRawBufferPointer {
        if let b = free.withLock({ $0.popLast() }) { return b.raw }
        return UnsafeMutableRawBufferPointer.allocate(byteCount: DirectWriter.pieceSize, alignment: DirectWriter.alignment)
    }

    func give(_ b: UnsafeMutableRawBufferPointer) {
        let kept = free.withLock { list -> Bool in
            guard list.count < limit else { return false }
            list.append(Buffer(raw: b))
            return true
        }
        if !kept { b.deallocate() }
    }
}
