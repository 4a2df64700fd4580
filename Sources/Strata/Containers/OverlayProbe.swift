import Foundation
import Synchronization

/// Whether overlayfs works in this user namespace, tested by doing what the overlay snapshotter
/// does: a `userxattr` mount of a small lower directory, a file deleted through it (the upper
/// directory must show a 0/0 character device) and a directory replaced (it must carry
/// `user.overlay.opaque`), then the unmount. The kernel allows overlay mounts in a user
/// namespace since 5.11; the filesystem under the upper directory must also take `user.*`
/// attributes. The answer is kept per directory for the life of the process.
enum OverlayProbe {
    private static let results = Mutex<[String: Bool]>([:])

    /// The test's answer for a probe directory made inside `dir` (removed afterwards).
    static func result(in dir: String) -> Bool {
        if let known = results.withLock({ $0[dir] }) { return known }
        let ok = run(in: dir)
        results.withLock { $0[dir] = ok }
        return ok
    }

    private static func run(in dir: String) -> Bool {
        let base = dir + "/.overlay-probe-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let (lower, upper, work, merged) = (base + "/lower", base + "/upper", base + "/work", base + "/merged")
        defer {
            umount2(merged, Int32(MNT_DETACH))
            removeTree(base)
        }
        for d in [base, lower, lower + "/d", upper, work, merged] where mkdir(d, 0o755) != 0 { return false }
        let fd = open(lower + "/f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        close(fd)
        let options = "lowerdir=\(lower),upperdir=\(upper),workdir=\(work)" + (OverlayXattr.inUserNamespace ? ",userxattr" : "")
        guard Glibc.mount("overlay", merged, "overlay", 0, options) == 0 else { return false }
        guard unlink(merged + "/f") == 0, rmdir(merged + "/d") == 0, mkdir(merged + "/d", 0o755) == 0 else { return false }
        guard umount2(merged, 0) == 0 else { return false }
        return FileMeta.of(upper + "/f")?.isOverlayWhiteout == true && OverlayXattr.isOpaque(path: upper + "/d")
    }
}
