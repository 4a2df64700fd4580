import Foundation
import GRDB

/// Free space on a filesystem, and the one-line error a command gives when the disk fills.
///
/// Every command that writes into the store (load, import, pull, build, commit, cp, volume
/// create) and `save -o` runs its work through ``Store/explainingDiskFull(_:on:estimate:_:)``:
/// when anything underneath fails with ENOSPC/EDQUOT (a write, an fsync, a mkdir, libarchive,
/// or SQLite's `SQLITE_FULL`), the command's own cleanup runs first and the error becomes
///
///     disk full: loading app.tar needs about 35 MB more on /var (2 MB free)
///
/// The estimate is what the command knows before it starts (the archive's size, the sum of
/// the layers still to download, the container's changes); when it knows none, the message
/// says how much was free when it started, all of which it used up.
public enum DiskSpace {
    /// Bytes an unprivileged writer can still use on the filesystem holding `path` (nil when
    /// `statvfs` fails, e.g. the path does not exist yet and neither does its parent).
    public static func available(at path: String) -> Int64? {
        var p = path
        while true {
            var st = statvfs()
            if statvfs(p, &st) == 0 { return Int64(st.f_bavail) * Int64(st.f_frsize) }
            let parent = (p as NSString).deletingLastPathComponent
            if parent == p || parent.isEmpty { return nil }
            p = parent
        }
    }

    /// The mount point of the filesystem holding `path`: the highest ancestor on the same device.
    public static func mountPoint(of path: String) -> String {
        var p = (path as NSString).standardizingPath
        var st = stat()
        while stat(p, &st) != 0 {
            let parent = (p as NSString).deletingLastPathComponent
            if parent == p || parent.isEmpty { return path }
            p = parent
        }
        let dev = st.st_dev
        while p != "/" {
            let parent = (p as NSString).deletingLastPathComponent
            var pst = stat()
            if stat(parent, &pst) != 0 || pst.st_dev != dev { break }
            p = parent
        }
        return p
    }

    /// The size of a regular file (symlinks followed), nil for anything else (a pipe on
    /// standard input has no size to estimate from).
    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// How a command names its input: the file's name, or "standard input".
    static func inputName(_ url: URL) -> String {
        url.path == "/dev/stdin" || url.path == "-" ? "standard input" : url.lastPathComponent
    }

    /// Whole megabytes (10^6 bytes, as `docker images` counts), rounded up: "about 3 MB" is
    /// never less than what is needed.
    static func megabytes(_ bytes: Int64) -> String {
        let mb = (max(bytes, 0) + 999_999) / 1_000_000
        return "\(mb) MB"
    }

    /// True when `error`, or an error it wraps, says the disk (or the quota) is full.
    public static func isDiskFull(_ error: any Error) -> Bool {
        var e: (any Error)? = error
        for _ in 0..<8 {
            guard let cur = e else { return false }
            if let s = cur as? StrataError {
                if s.code == .diskFull { return true }
                e = s.cause
                continue
            }
            if let d = cur as? DatabaseError { return d.resultCode == .SQLITE_FULL }
            if let p = cur as? POSIXError { return p.code == .ENOSPC || p.code == .EDQUOT }
            let ns = cur as NSError
            if ns.domain == NSPOSIXErrorDomain { return ns.code == Int(ENOSPC) || ns.code == Int(EDQUOT) }
            if ns.domain == NSCocoaErrorDomain, ns.code == NSFileWriteOutOfSpaceError { return true }
            e = ns.userInfo[NSUnderlyingErrorKey] as? any Error
        }
        return false
    }

    /// The one-line error for `what` running out of space on the filesystem of `path`.
    /// - Parameters:
    ///   - estimate: the bytes `what` needs in all, when known.
    ///   - freeBefore: the bytes that were free when it started.
    static func error(_ what: String, on path: String, estimate: Int64?, freeBefore: Int64?, cause: any Error) -> StrataError {
        let mount = mountPoint(of: path)
        let freeNow = available(at: path)
        let free = freeNow.map { " (\(megabytes($0)) free)" } ?? ""
        let message: String
        if let estimate, let before = freeBefore, estimate > before {
            message = "disk full: \(what) needs about \(megabytes(estimate - before)) more on \(mount)\(free)"
        } else if let before = freeBefore {
            // What it needed is unknown (or was misjudged): more than all there was.
            let est = estimate.map { ", about \(megabytes($0)) estimated" } ?? ""
            let now = freeNow.map { megabytes($0) == megabytes(before) ? "" : " (\(megabytes($0)) free now)" } ?? ""
            message = "disk full: \(what) needs more than the \(megabytes(before)) that were free on \(mount)\(est)\(now)"
        } else {
            message = "disk full: \(what) ran out of space on \(mount)\(free)"
        }
        return StrataError(.diskFull, message, cause: cause)
    }
}

extension Store {
    /// Runs `body` (a command that writes), turning a full disk anywhere inside it into one
    /// line that says so and how much was needed (see ``DiskSpace``). `body` must leave the
    /// store as it was when it throws (law 8); this only words the error.
    /// - Parameters:
    ///   - what: the command as a person would say it ("loading app.tar").
    ///   - path: where it writes; the store's root by default.
    ///   - estimate: the bytes it needs in all, when known (asked only after a failure).
    package func explainingDiskFull<T>(_ what: String, on path: String? = nil, estimate: () -> Int64? = { nil },
                                      _ body: () async throws -> T) async throws -> T {
        let where_ = path ?? root.path
        let before = DiskSpace.available(at: where_)
        do {
            return try await body()
        } catch let e as StrataError where e.code == .diskFull && e.message.hasPrefix("disk full: ") {
            throw e  // already worded by an inner command (a build's commit)
        } catch let error where DiskSpace.isDiskFull(error) {
            throw DiskSpace.error(what, on: where_, estimate: estimate(), freeBefore: before, cause: error)
        }
    }
}
