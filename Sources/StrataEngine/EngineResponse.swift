import Foundation
import NIOCore
import NIOHTTP1
import OCI

/// Writes one response on a connection: a whole body with a `Content-Length`, or a stream
/// (chunked transfer encoding) of JSON progress messages or file bytes. Used by one task.
final class EngineResponse {
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    private let version: HTTPVersion
    private let isHead: Bool
    /// Whether the connection stays open after this response.
    let keepAlive: Bool
    /// Set once the head has gone out: errors after that go into the stream.
    private(set) var started = false
    private(set) var streaming = false
    /// Set by a handler whose connection cannot carry another request (an attach: raw bytes).
    var closesConnection = false

    init(outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, version: HTTPVersion, isHead: Bool, keepAlive: Bool) {
        self.outbound = outbound
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
        started = true
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
    func startStream(_ status: HTTPResponseStatus = .ok, contentType: String, headers: [(String, String)] = []) async throws {
        started = true
        streaming = true
        try await outbound.write(.head(head(status, [("Content-Type", contentType)] + headers)))
    }

    /// One chunk of a streamed body.
    func write(_ data: Data) async throws {
        guard !data.isEmpty, !isHead else { return }
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: data))))
    }

    /// One JSON progress message, on its own line: `{"stream":"Step 1/3 : FROM busybox\n"}`.
    func message(_ value: [String: Any]) async throws {
        try await write(try Self.json(value) + Data("\r\n".utf8))
    }

    /// Docker's in-stream error message: `{"errorDetail":{"message":…},"error":…}`.
    func streamError(_ message: String) async throws {
        try await self.message(["errorDetail": ["message": message], "error": message])
    }

    /// Ends a streamed body.
    func finish() async throws {
        try await outbound.write(.end(nil))
    }

    /// Compact JSON; names that are not UTF-8 travel as `\udcXX` escapes (``RawName``, law 9).
    static func json(_ value: Any) throws -> Data {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        return Data(RawName.jsonSurrogateEscapes(Array(data)))
    }
}
