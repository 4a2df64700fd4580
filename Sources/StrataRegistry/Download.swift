import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OCI
import Synchronization

/// Plain HTTP(S) downloads of whole files, such as a remote build context
/// (`strata build http://server/ctx.tar.gz`).
public enum Download {
    /// Progress of a download: bytes so far and, when the server said, the total.
    public typealias Progress = @Sendable (_ received: Int64, _ total: Int64?) -> Void

    /// The default cap on a download (`--max-context-size`): 2 GB.
    public static let defaultMaxSize: Int64 = 2 << 30

    /// Streams `url` (http or https; redirects followed, TLS verified) into a new file at
    /// `path`, never holding more than one chunk in memory, and returns its size.
    ///
    /// Refused with a one-line error naming the URL: a URL that is not http(s), an answer
    /// other than 200 (with its status), a body larger than `maxSize` (announced or actual),
    /// and a body shorter than its `Content-Length` or cut off. On error the file is removed.
    @discardableResult
    public static func fetch(_ url: String, to path: String, maxSize: Int64 = defaultMaxSize,
                             progress: Progress? = nil) async throws -> Int64 {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = parsed.host, !host.isEmpty else {
            throw StrataError(.invalidArgument, "\(url) is not an http:// or https:// URL")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StrataError.system("cannot create \(path)") }
        defer { close(fd) }
        // The body is written where it arrives, on the connection's event loop: a busy
        // cooperative pool (an embedder's, or a test run's) cannot stall the reads into a
        // read timeout.
        let sink = FileSink(url: url, path: path, fd: fd, maxSize: maxSize, progress: progress)
        do {
            var request = try HTTPClient.Request(url: url, method: .GET)
            request.headers.add(name: "Accept-Encoding", value: "identity")
            let task = HTTPClient.registry.execute(request: request, delegate: sink, deadline: .now() + .hours(1))
            return try await task.futureResult.get()
        } catch {
            unlink(path)
            if let e = error as? StrataError { throw e }
            let received = sink.received
            if received > 0 {
                throw StrataError(.io, "download of \(url) broke off after \(received)\(sink.total.map { " of \($0)" } ?? "") bytes: \(error)", cause: error)
            }
            throw StrataError(.io, "cannot download \(url): \(HTTPClient.describe(error))", cause: error)
        }
    }
}

/// Writes a response body into an open file as it arrives and checks it: status 200, the
/// size limit, and the announced length. AsyncHTTPClient calls it on one event loop; the
/// counters are behind a mutex so the caller can read them after a failure.
private final class FileSink: HTTPClientResponseDelegate, Sendable {
    typealias Response = Int64
    let url: String
    let path: String
    let fd: Int32
    let maxSize: Int64
    let progress: Download.Progress?
    private let state = Mutex<(status: HTTPResponseStatus?, received: Int64, total: Int64?)>((nil, 0, nil))

    init(url: String, path: String, fd: Int32, maxSize: Int64, progress: Download.Progress?) {
        self.url = url
        self.path = path
        self.fd = fd
        self.maxSize = maxSize
        self.progress = progress
    }

    var received: Int64 { state.withLock { $0.received } }
    var total: Int64? { state.withLock { $0.total } }

    func didReceiveHead(task: HTTPClient.Task<Int64>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let total = head.headers.first(name: "Content-Length").flatMap { Int64($0) }
        state.withLock { $0.status = head.status; $0.total = total }
        guard head.status == .ok else {
            return task.eventLoop.makeFailedFuture(StrataError(head.status == .notFound ? .blobNotFound : .io,
                                                               "cannot download \(url): HTTP \(head.status.code) \(head.status.reasonPhrase)"))
        }
        if let total, total > maxSize {
            return task.eventLoop.makeFailedFuture(StrataError(.invalidArgument, "\(url) is \(total) bytes, more than the limit of \(maxSize) (--max-context-size)"))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Int64>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let (received, total) = state.withLock { s -> (Int64, Int64?) in
            s.received += Int64(buffer.readableBytes)
            return (s.received, s.total)
        }
        guard received <= maxSize else {
            return task.eventLoop.makeFailedFuture(StrataError(.invalidArgument, "\(url) is more than the limit of \(maxSize) bytes (--max-context-size)"))
        }
        do {
            try buffer.withUnsafeReadableBytes { buf in
                guard let base = buf.baseAddress else { return }
                var off = 0
                while off < buf.count {
                    let n = write(fd, base + off, buf.count - off)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw StrataError.system("cannot write \(path)")
                    }
                    off += n
                }
            }
        } catch {
            return task.eventLoop.makeFailedFuture(error)
        }
        progress?(received, total)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Int64>) throws -> Int64 {
        let (received, total) = state.withLock { ($0.received, $0.total) }
        if let total, received != total {
            throw StrataError(.io, "download of \(url) broke off after \(received) of \(total) bytes")
        }
        return received
    }
}