import NIOHTTP1
import OCI

/// An error answered as Docker answers errors: an HTTP status and `{"message": …}`.
///
/// ``StrataError`` codes map to statuses in one place (``init(_:)``): no such image 404,
/// conflicts 409, bad input 400, refused credentials 401, everything else 500.
struct EngineError: Error, Sendable {
    var status: HTTPResponseStatus
    var message: String

    init(status: HTTPResponseStatus, message: String) {
        self.status = status
        self.message = message
    }

    static func badRequest(_ message: String) -> EngineError { EngineError(status: .badRequest, message: message) }

    /// The status and message of any error a handler throws.
    init(_ error: any Error) {
        if let e = error as? EngineError {
            self = e
            return
        }
        guard let e = error as? StrataError else {
            self.init(status: .internalServerError, message: String(describing: error))
            return
        }
        self.init(status: Self.status(for: e.code), message: e.message)
    }

    /// The HTTP status of a ``StrataError/Code``.
    static func status(for code: StrataError.Code) -> HTTPResponseStatus {
        switch code {
        case .imageNotFound, .containerNotFound, .volumeNotFound, .fileNotFound, .blobNotFound, .platformNotFound:
            return .notFound
        case .conflict:
            return .conflict
        case .invalidArgument, .invalidReference, .ambiguousImage, .invalidDigest, .invalidJSON, .unsupportedMediaType,
             .unsupportedFormat, .unsafePath, .dockerfileSyntax, .userNotFound, .digestMismatch, .sizeMismatch, .corruptData:
            return .badRequest
        case .unauthorized:
            return .unauthorized
        case .notSupported:
            return .notImplemented
        case .io, .diskFull, .permissionDenied, .database, .storeLocked, .buildStepFailed, .internalError:
            return .internalServerError
        }
    }
}
