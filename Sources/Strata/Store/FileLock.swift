import Foundation

/// A cross-process advisory lock (flock) on a file under `locks/`.
///
/// Lock order (see docs/ARCHITECTURE.md): `locks/blobs.lock` is always taken before a
/// SQLite write transaction, never inside one.
/// - shared: a writer between "blob renamed into blobs/" and "row committed";
/// - exclusive: a deleter from "rows deleted" through "files unlinked".
final class FileLock: Sendable {
    private let fd: Int32
    let path: String

    enum Mode { case shared, exclusive }

    init(path: String, mode: Mode) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StrataError.system("cannot open lock \(path)") }
        while flock(fd, mode == .shared ? LOCK_SH : LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            throw StrataError(.storeLocked, "cannot lock \(path): \(String(cString: strerror(e)))")
        }
    }

    /// Takes the lock, waiting on a thread of its own when another process holds it, so a
    /// cooperative-pool thread never blocks in flock. (Uncontended, it is taken at once.)
    static func acquire(_ path: String, mode: Mode) async throws -> FileLock {
        if let lock = try FileLock(tryPath: path, mode: mode) { return lock }
        return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<FileLock, any Error>) in
            DispatchQueue.global().async {
                cont.resume(with: Result { try FileLock(path: path, mode: mode) })
            }
        }
    }

    /// Tries to take the lock (exclusive unless `mode` says) without waiting; nil when another
    /// process holds it.
    init?(tryPath path: String, mode: Mode = .exclusive) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StrataError.system("cannot open lock \(path)") }
        while flock(fd, (mode == .shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            if e == EWOULDBLOCK { return nil }
            throw StrataError(.storeLocked, "cannot lock \(path): \(String(cString: strerror(e)))")
        }
    }

    /// Whether the locked file is still the one at `path` (gc may have removed it while we waited).
    var isStillInPlace: Bool {
        var mine = stat(), there = stat()
        guard fstat(fd, &mine) == 0, stat(path, &there) == 0 else { return false }
        return mine.st_ino == there.st_ino && mine.st_dev == there.st_dev
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

extension StorePaths {
    var blobsLock: String { locksDir.appendingPathComponent("blobs.lock").path }
}
