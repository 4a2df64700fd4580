import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OCI

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
        var req = HTTPClientRequest(url: url)
        req.method = .GET
        req.headers.add(name: "Accept-Encoding", value: "identity")
        let resp: HTTPClientResponse
        do {
            resp = try await HTTPClient.shared.execute(req, timeout: .seconds(3600))
        } catch {
            throw StrataError(.io, "cannot download \(url): \(error)", cause: error)
        }
        guard resp.status == .ok else {
            _ = try? await resp.body.collect(upTo: 1 << 20)
            throw StrataError(resp.status == .notFound ? .blobNotFound : .io,
                              "cannot download \(url): HTTP \(resp.status.code) \(resp.status.reasonPhrase)")
        }
        let total = resp.headers.first(name: "Content-Length").flatMap { Int64($0) }
        if let total, total > maxSize {
            throw StrataError(.invalidArgument, "\(url) is \(total) bytes, more than the limit of \(maxSize) (--max-context-size)")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StrataError.system("cannot create \(path)") }
        var received: Int64 = 0
        do {
            defer { close(fd) }
            do {
                for try await chunk in resp.body {
                    received += Int64(chunk.readableBytes)
                    guard received <= maxSize else {
                        throw StrataError(.invalidArgument, "\(url) is more than the limit of \(maxSize) bytes (--max-context-size)")
                    }
                    try chunk.withUnsafeReadableBytes { buf in
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
                    progress?(received, total)
                }
            } catch let e as StrataError {
                throw e
            } catch {
                throw StrataError(.io, "download of \(url) broke off after \(received)\(total.map { " of \($0)" } ?? "") bytes: \(error)", cause: error)
            }
            if let total, received != total {
                throw StrataError(.io, "download of \(url) broke off after \(received) of \(total) bytes")
            }
        } catch {
            unlink(path)
            throw error
        }
        return received
    }
}
