import CArchive
import Foundation

extension StrataError {
    /// The errnos whose meaning survives a libarchive failure: a full disk, a failed device,
    /// a refusal. Anything else (a bad header, a truncated stream) is the caller's `fallback`.
    private static let systemErrnos: Set<Int32> = [ENOSPC, EDQUOT, EIO, EACCES, EPERM, EROFS, ENXIO]

    /// A failed libarchive call on `a`: `what` and the system's words when a system call
    /// failed underneath (so ENOSPC reads `.diskFull` and EIO keeps its errno), else `what`
    /// and libarchive's message with the code `fallback`.
    static func libarchive(_ a: OpaquePointer, _ fallback: Code, _ what: String) -> StrataError {
        let e = archive_errno(a)
        if systemErrnos.contains(e) { return .system(what, errno: e) }
        let msg = archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
        return StrataError(fallback, "\(what): \(msg)")
    }
}
