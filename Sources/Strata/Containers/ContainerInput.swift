import Dispatch
import CArchive
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The standard input of one run of a container (`docker run -i`): what the caller writes,
/// the process reads from its stdin, in order; ``close()`` gives it end-of-file once the
/// bytes written before are read. Hand it to ``Store/start(_:hostNetwork:input:output:started:)``,
/// before or after writing: a pipe holds what comes before the process starts (a writer
/// waits when the pipe is full).
///
/// Writes happen on a thread of the input's own, so a write that waits for the process to
/// read never holds a thread of the cooperative pool. When the process is gone (the run
/// ended) or the input was cancelled, writes throw. An input serves one run.
///
/// ```swift
/// let input = try ContainerInput()
/// try await input.write(Data("hello\n".utf8))
/// input.close()
/// let status = try await store.start(c.id, input: input)   // `cat` prints hello, exits 0
/// ```
public final class ContainerInput: Sendable {
    private let shared: Shared

    /// A new pipe and its writer thread.
    public init() throws {
        shared = try Shared()
        let s = shared
        let t = Thread { s.writeLoop() }
        t.name = "strata-stdin"
        t.stackSize = 1 << 20
        t.start()
    }

    deinit {
        shared.enqueue(.close)
        shared.closeReadEnd()
    }

    /// Writes `data` to the process's stdin; returns once the pipe took all of it. Throws
    /// when the process is gone, the input was closed or cancelled.
    public func write(_ data: Data) async throws {
        guard !data.isEmpty else { return }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            shared.enqueue(.data(data, c))
        }
    }

    /// End of input: the process reads end-of-file after what was written before. Later
    /// writes throw. Closing twice does nothing.
    public func close() {
        shared.enqueue(.close)
    }

    /// Gives up on the input: the process's end of the pipe is closed here (a run not yet
    /// started gets none), so a write waiting for room fails at once.
    public func cancel() {
        shared.enqueue(.close)
        shared.closeReadEnd()
    }

    /// The process's end of the pipe, for the runtime to pass on as stdin; nil once cancelled.
    func processEnd() -> FileHandle? {
        shared.readFD.withLock { $0 >= 0 ? FileHandle(fileDescriptor: $0, closeOnDealloc: false) : nil }
    }

    /// The run started (its process holds its own copy) or ended: this process's copy of the
    /// read end goes, so writes fail once the container's process is gone.
    func runEnded() {
        shared.closeReadEnd()
    }

    /// The state the writer thread shares with the callers.
    private final class Shared: Sendable {
        enum Item: Sendable {
            case data(Data, CheckedContinuation<Void, any Error>)
            case close
        }

        let readFD: Mutex<Int32>
        private let writeFD: Int32
        /// The queued items, and whether the writer is gone (after a close): then a write
        /// fails at once.
        private let queue = Mutex<(items: [Item], gone: Bool)>(([], false))
        private let ready = DispatchSemaphore(value: 0)

        init() throws {
            var fds: [Int32] = [0, 0]
            // Close-on-exec from the start (``ExclusivePipe``): Foundation's Process duplicates
            // the read end into the child, and no other process this one starts holds either end.
            guard strata_pipe_cloexec(&fds) == 0 else { throw StrataError.system("cannot create a pipe for the container's stdin") }
            readFD = Mutex(fds[0])
            writeFD = fds[1]
        }

        func enqueue(_ item: Item) {
            let queued = queue.withLock { q -> Bool in
                if q.gone { return false }
                q.items.append(item)
                return true
            }
            if queued {
                ready.signal()
            } else if case .data(_, let c) = item {
                c.resume(throwing: StrataError(.conflict, "the container's stdin is closed"))
            }
        }

        func closeReadEnd() {
            readFD.withLock { fd in
                if fd >= 0 { Glibc.close(fd) }
                fd = -1
            }
        }

        /// Writes the queued pieces in order until `close`; then closes the write end and
        /// fails whatever still comes. SIGPIPE is blocked on this thread: a write to a pipe
        /// nobody reads fails with EPIPE instead of killing the process.
        func writeLoop() {
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            var failure: StrataError?
            while true {
                ready.wait()
                guard let item = queue.withLock({ $0.items.isEmpty ? nil : $0.items.removeFirst() }) else { continue }
                guard case .data(let data, let c) = item else { break }
                if let failure {
                    c.resume(throwing: failure)
                    continue
                }
                let e: Int32 = data.withUnsafeBytes { raw in
                    guard let base = raw.baseAddress else { return 0 }
                    var off = 0
                    while off < raw.count {
                        let n = Glibc.write(writeFD, base + off, raw.count - off)
                        if n < 0 {
                            if errno == EINTR { continue }
                            return errno
                        }
                        off += n
                    }
                    return 0
                }
                if e == 0 {
                    c.resume()
                } else {
                    if e == EPIPE {
                        // Consume the SIGPIPE the write raised (pending on this thread only).
                        var none = timespec(tv_sec: 0, tv_nsec: 0)
                        _ = sigtimedwait(&pipeSignal, nil, &none)
                    }
                    let f = e == EPIPE ? StrataError(.io, "the container's process no longer reads its stdin")
                        : StrataError.system("cannot write to the container's stdin", errno: e)
                    failure = f
                    c.resume(throwing: f)
                }
            }
            Glibc.close(writeFD)
            // Whatever was queued after the close fails; so does every later write.
            let rest = queue.withLock { q -> [Item] in
                q.gone = true
                defer { q.items.removeAll() }
                return q.items
            }
            let closed = StrataError(.conflict, "the container's stdin is closed")
            for case .data(_, let c) in rest { c.resume(throwing: closed) }
        }
    }
}
