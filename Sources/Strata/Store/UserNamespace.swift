import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Rootless operation: the subordinate uid and gid ranges of a user (`/etc/subuid`,
/// `/etc/subgid`) and the user namespace strata runs in without root.
///
/// A user without root runs strata inside a user namespace where uid 0 is the user and uids
/// 1…65536 are the user's subordinate range, as podman does: layers unpack with their true
/// owners (uid 1000 in the image is a subordinate uid on disk), runc runs containers in it, and
/// every owner strata reads back (commit, diff, save) is the image's own. The CLI enters it in
/// its own process before any thread starts (`Rootless`, in StrataCLI), and a forked helper
/// outside maps it with the system's setuid `newuidmap` and `newgidmap`; nothing of strata's
/// runs setuid.
///
/// The mount namespace entered with it is private to that one process: an overlay mounted in
/// it vanishes when the process exits. `STRATA_USERNS` tells which namespace a process is in:
/// `1` when the process (the CLI) made it on the way in, `session` inside `strata unshare`,
/// whose command holds the namespace for as long as it runs (``mountsOutliveProcess(environment:)``).
public enum UserNamespace {
    /// One `name:start:count` line of `/etc/subuid` or `/etc/subgid`.
    public struct Range: Sendable, Hashable {
        public var start: UInt32
        public var count: UInt32
    }

    /// The ranges `file` gives `user` (by name or by uid).
    public static func subordinateRanges(user: String, uid: UInt32, file: String) -> [Range] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> Range? in
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count == 3, f[0] == user || f[0] == String(uid),
                  let start = UInt32(f[1]), let count = UInt32(f[2]), count > 0 else { return nil }
            return Range(start: start, count: count)
        }
    }

    /// The uid map of this process (`inside outside count` lines); the initial namespace
    /// maps every uid to itself.
    public static var uidMap: String {
        (try? String(contentsOfFile: "/proc/self/uid_map", encoding: .utf8)) ?? ""
    }

    /// Whether this process runs in a user namespace other than the initial one.
    public static var isNested: Bool {
        let fields = uidMap.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        return !(fields.count == 3 && fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295")
    }

    /// Whether a mount this process makes outlives it (so `strata mount` may print its path):
    /// true outside a user namespace and inside `strata unshare` (`STRATA_USERNS=session`) or
    /// a namespace strata did not make; false when this process made its own namespace on the
    /// way in (`STRATA_USERNS=1`), where the mount goes with the process.
    /// `environment` nil reads this process's environment as it is now.
    public static func mountsOutliveProcess(environment: [String: String]? = nil) -> Bool {
        guard isNested else { return true }
        let mark = environment.map { $0["STRATA_USERNS"] } ?? getenv("STRATA_USERNS").map { String(cString: $0) }
        return mark != "1"
    }

    /// The command that runs `executable arguments` in a new user namespace (uid and gid 0
    /// are the caller, 1… its subordinate ranges) with its own mount namespace.
    public static func entryCommand(unshare: String, executable: String, arguments: [String]) -> [String] {
        [unshare, "--user", "--map-auto", "--map-root-user", "--mount", "--propagation", "private", "--", executable] + arguments
    }
}
