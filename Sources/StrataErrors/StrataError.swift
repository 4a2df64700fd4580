/// The one error type of strata.
///
/// Callers branch on ``code`` (stable across releases); people read ``message``;
/// ``cause`` keeps the underlying error when there is one.
///
/// ```swift
/// do { try await store.tag("app:1", as: "app:latest") }
/// catch let error as StrataError where error.code == .imageNotFound { … }
/// ```
public struct StrataError: Error, CustomStringConvertible, Sendable {
    /// Stable, machine-readable error codes.
    public enum Code: String, Sendable, CaseIterable {
        case invalidArgument = "invalid-argument"
        case invalidReference = "invalid-reference"
        case invalidDigest = "invalid-digest"
        case digestMismatch = "digest-mismatch"
        case sizeMismatch = "size-mismatch"
        case blobNotFound = "blob-not-found"
        case imageNotFound = "image-not-found"
        case containerNotFound = "container-not-found"
        case volumeNotFound = "volume-not-found"
        /// A path that does not exist inside a container (`cp`, the Engine API's archive endpoints).
        case fileNotFound = "file-not-found"
        /// A `USER` or `--chown` name (or group) that the image's /etc/passwd (or /etc/group)
        /// does not list.
        case userNotFound = "user-not-found"
        case ambiguousImage = "ambiguous-image"
        case invalidJSON = "invalid-json"
        case unsupportedMediaType = "unsupported-media-type"
        case unsupportedFormat = "unsupported-format"
        case unsafePath = "unsafe-path"
        case corruptData = "corrupt-data"
        case platformNotFound = "platform-not-found"
        case conflict = "conflict"
        case io = "io"
        /// The file system is full (ENOSPC) or over quota (EDQUOT).
        case diskFull = "disk-full"
        /// The system refused access (EACCES, EPERM, EROFS).
        case permissionDenied = "permission-denied"
        /// The registry refused the credentials (HTTP 401/403).
        case unauthorized = "unauthorized"
        case database = "database"
        case storeLocked = "store-locked"
        /// A Dockerfile or `.dockerignore` that does not parse, or a word that does not expand
        /// (`${V?message}` with `V` unset, an unterminated quote).
        case dockerfileSyntax = "dockerfile-syntax"
        case buildStepFailed = "build-step-failed"
        case internalError = "internal"
        /// The other side (a registry, a file system) does not offer what was asked.
        case notSupported = "not-supported"
    }

    public let code: Code
    public let message: String
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension StrataError {
    /// A failed system call: `what` followed by the errno's text, the errno kept as the
    /// ``cause`` (a `POSIXError`), and the code an embedder can branch on — ``Code/diskFull``
    /// for ENOSPC and EDQUOT, ``Code/permissionDenied`` for EACCES, EPERM and EROFS,
    /// ``Code/io`` otherwise. Pass `errno` explicitly when other calls ran since the failure.
    public static func system(_ what: String, errno e: Int32 = Glibc.errno) -> StrataError {
        let code: Code
        switch e {
        case ENOSPC, EDQUOT: code = .diskFull
        case EACCES, EPERM, EROFS: code = .permissionDenied
        default: code = .io
        }
        let cause: (any Error)? = POSIXErrorCode(rawValue: e).map { POSIXError($0) }
        return StrataError(code, "\(what): \(String(cString: strerror(e)))", cause: cause)
    }

    /// The errno behind this error, when a system call failed.
    public var errno: Int32? {
        (cause as? POSIXError).map { $0.code.rawValue }
    }
}
