import Foundation
import NIOCore
import NIOHTTP1
import OCI
import Synchronization

/// Writes one response on a connection: a whole body with a `Content-Length`, or a stream
/// (chunked transfer encoding) of JSON progress messages or file bytes. Written by one task
/// at a time; `Sendable` so a handler can run beside the task that feeds it a request body.
final class EngineResponse: Sendable {
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    private let version: HTTPVersion
    private let isHead: Bool
    /// Whether the connection stays open after this response.
    let keepAlive: Bool
    private struct Flags {
        var started = false
        var streaming = false
        var closesConnection = false
        var abortsOnError = false
    }
    private let flags = Mutex(Flags())
    /// Set once the head has gone out: errors after that go into the stream.
    var started: Bool { flags.withLock { $0.started } }
    var streaming: Bool { flags.withLock { $0.streaming } }
    /// Set by a handler whose connection cannot carry another request (an attach: raw bytes).
    var closesConnection: Bool {
        get { flags.withLock { $0.closesConnection } }
        set { flags.withLock { $0.closesConnection = newValue } }
    }
    /// A stream that cannot carry an error message (a tar): a failure after its head closes
    /// the connection without the body's end, so the client sees it cut short.
    var abortsOnError: Bool { flags.withLock { $0.abortsOnError } }

    /// The connection, for a handler that takes it over (``takeOverInput()``).
    let channel: (any Channel)?

    init(outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, version: HTTPVersion, isHead: Bool, keepAlive: Bool,
         channel: (any Channel)? = nil) {
        self.outbound = outbound
        self.channel = channel
        self.version = version
        self.isHead = isHead
        self.keepAlive = keepAlive
    }

    private func head(_ status: HTTPResponseStatus, _ extra: [(String, String)]) -> HTTPResponseHead {
        var h = HTTPHeaders()
        h.add(name: "Api-Version", value: APIVersion.current.description)
        h.add(name: "Docker-Experimental", value: "false")
        h.add(name: "Ostype", value: "linux")
        h.add(name: "Server", value: "strata/\(EngineServer.version) (linux)")
        for (k, v) in extra { h.add(name: k, value: v) }
        if !keepAlive { h.replaceOrAdd(name: "Connection", value: "close") }
        return HTTPResponseHead(version: version, status: status, headers: h)
    }

    /// A complete response with a body (none for HEAD requests, which still get its length).
    func send(_ status: HTTPResponseStatus, contentType: String? = nil, body: Data = Data(), headers: [(String, String)] = []) async throws {
        var extra = headers
        if let contentType { extra.append(("Content-Type", contentType)) }
        extra.append(("Content-Length", String(body.count)))
        flags.withLock { $0.started = true }
        try await outbound.write(.head(head(status, extra)))
        if !isHead, !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
    }

    /// A JSON document (`[String: Any]`, `[Any]`) with its status.
    func sendJSON(_ value: Any, status: HTTPResponseStatus = .ok) async throws {
        try await send(status, contentType: "application/json", body: try Self.json(value) + Data("\n".utf8))
    }

    /// A typed JSON document (sorted keys, slashes unescaped) with its status.
    func sendJSON<T: Encodable>(encoding value: T, status: HTTPResponseStatus = .ok) async throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body: Data
        do { body = try e.encode(value) } catch {
            throw StrataError(.internalError, "cannot encode the response: \(error)", cause: error)
        }
        try await send(status, contentType: "application/json", body: body + Data("\n".utf8))
    }

    /// Docker's error body, `{"message": …}`.
    func sendError(_ error: EngineError) async throws {
        try await sendJSON(["message": error.message], status: error.status)
    }

    /// Starts a streamed body (chunked) of the given type.
    /// With `abortsOnError` (a tar), a later failure cuts the body short instead of adding
    /// an error message to it.
    func startStream(_ status: HTTPResponseStatus = .ok, contentType: String, headers: [(String, String)] = [],
                     abortsOnError: Bool = false) async throws {
        flags.withLock {
            $0.started = true
            $0.streaming = true
            $0.abortsOnError = abortsOnError
        }
        try await outbound.write(.head(head(status, [("Content-Type", contentType)] + headers)))
    }

    /// One chunk of a streamed body.
    func write(_ data: Data) async throws {
        guard !data.isEmpty, !isHead else { return }
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: data))))
    }

    /// One piece of a streamed body, as it is (no copy).
    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0, !isHead else { return }
        try await outbound.write(.body(.byteBuffer(buffer)))
    }

    /// One JSON progress message, on its own line: `{"stream":"Step 1/3 : FROM busybox\n"}`.
    func message(_ value: [String: Any]) async throws {
        try await write(try Self.json(value) + Data("\r\n".utf8))
    }

    /// Docker's in-stream error message: `{"errorDetail":{"message":…},"error":…}`, with
    /// `"code"` in the detail when there is one (a failed RUN's status).
    func streamError(_ message: String, code: Int? = nil) async throws {
        var detail: [String: Any] = ["message": message]
        if let code { detail["code"] = code }
        try await self.message(["errorDetail": detail, "error": message])
    }

    /// Starts the raw stream of an attach or an exec: `101 UPGRADED` when the client asked to
    /// upgrade (the docker CLI does; nothing is framed after it), else a 200 stream of
    /// `contentType`. The connection closes after it.
    func startRawStream(_ req: EngineRequest, contentType: String = "application/vnd.docker.raw-stream") async throws {
        closesConnection = true
        if req.headers["Upgrade"].first.map({ !$0.isEmpty }) ?? false {
            try await startStream(.switchingProtocols, contentType: "application/vnd.docker.raw-stream",
                                  headers: [("Connection", "Upgrade"), ("Upgrade", "tcp")])
        } else {
            try await startStream(.ok, contentType: contentType)
        }
    }

    /// Ends a streamed body.
    func finish() async throws {
        try await outbound.write(.end(nil))
    }

    /// Takes the connection over: what the client sends from now on is raw bytes (an
    /// attach's stdin), not requests. Call it before the 101 goes out: the client writes
    /// only once it has read it. The connection closes after this response.
    func takeOverInput() async throws -> HijackedInput {
        guard let channel else { throw EngineError(status: .internalServerError, message: "this connection cannot be taken over") }
        let input = HijackedInput()
        closesConnection = true
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: HijackTap.self).takeOver(input)
        }.get()
        return input
    }

    /// Compact JSON; names that are not UTF-8 travel as `\udcXX` escapes (``RawName``, law 9).
    static func json(_ value: Any) throws -> Data {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        return Data(RawName.jsonSurrogateEscapes(Array(data)))
    }
}
