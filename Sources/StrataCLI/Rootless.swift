import CArchive
import Foundation
import Strata
#if canImport(Glibc)
import Glibc
#endif

/// Enters the rootless user namespace before a command runs, for a user without root.
///
/// With subordinate uid and gid ranges for the user, the process moves itself into a user
/// and a new mount namespace before any thread starts: it joins the user namespace a holder
/// process (`strata-userns`, named by ``holderFile(uid:environment:)``) keeps for the user, or
/// makes one (`strata_enter_userns`: unshare, then a forked helper outside runs
/// `newuidmap`/`newgidmap` on it) and starts that holder, after fixing the store root as
/// the user sees it (inside, the process is uid 0 and would otherwise choose
/// /var/lib/strata); `STRATA_USERNS=1` tells child processes. When unshare is refused (threads
/// already running), it re-executes itself through `unshare --map-auto`
/// (``UserNamespace/entryCommand(unshare:executable:arguments:)``), which maps the same ids.
/// Without ranges, commands that keep file owners cannot work; strata says what to add.
public enum Rootless {
    /// Re-executes in the user namespace when needed. Returns nil to go on in this process
    /// (root, already inside, or nothing to gain), or an exit status when it cannot.
    public static func enterIfNeeded(arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> Int32? {
        guard geteuid() != 0, environment["STRATA_USERNS"] == nil, environment["STRATA_ROOTLESS"] != "off" else { return nil }
        // Help and completion need no store. `strata unshare CMD…`: CMD's own flags are not strata's.
        if arguments.isEmpty || helpScope(arguments).contains(where: { ["--help", "-h", "help", "--version", "--generate-completion-script"].contains($0) }) {
            return nil
        }
        let uid = geteuid()
        let user = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(uid)
        let uids = UserNamespace.subordinateRanges(user: user, uid: uid, file: "/etc/subuid")
        let gids = UserNamespace.subordinateRanges(user: user, uid: uid, file: "/etc/subgid")
        guard !uids.isEmpty, !gids.isEmpty else {
            let missing = [uids.isEmpty ? "/etc/subuid" : nil, gids.isEmpty ? "/etc/subgid" : nil].compactMap { $0 }.joined(separator: " and ")
            Output.error("rootless strata needs subordinate ids for \(user): \(missing) has no range for it; as root run "
                + "`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \(user)` (or set STRATA_ROOTLESS=off to run without "
                + "file owners)")
            return 1
        }
        let executable: (String) -> Bool = { access($0, X_OK) == 0 }
        guard let newuidmap = ["/usr/bin/newuidmap", "/bin/newuidmap"].first(where: executable),
              let newgidmap = ["/usr/bin/newgidmap", "/bin/newgidmap"].first(where: executable) else {
            Output.error("rootless strata needs newuidmap and newgidmap (the uidmap package)")
            return 1
        }
        var env = environment
        // `1`: this process makes its own namespace; a mount made in it goes with the process
        // (UserNamespace.mountsOutliveProcess). `strata unshare` gives its command `session`.
        env["STRATA_USERNS"] = "1"
        let hasRoot = arguments.contains { $0 == "--root" || $0.hasPrefix("--root=") }
        if !hasRoot, (env["STRATA_ROOT"] ?? "").isEmpty {
            env["STRATA_ROOT"] = Store.defaultRoot(environment: environment).path
        }
        // In this process: no second start of the program.
        // One user namespace for all of the user's strata processes, kept by a holder process:
        // joining it spares each command the two setuid map programs (STRATA_USERNS_HOLDER=off: a new one each time).
        let rc: Int32
        if environment["STRATA_USERNS_HOLDER"] != "off", let holder = holderFile(uid: uid, environment: environment) {
            rc = strata_enter_shared_userns(holder, newuidmap, newgidmap, uid, getegid(), uids[0].start, uids[0].count, gids[0].start, gids[0].count)
        } else {
            rc = strata_enter_userns(newuidmap, newgidmap, uid, getegid(), uids[0].start, uids[0].count, gids[0].start, gids[0].count)
        }
        switch rc {
        case 0:
            setenv("STRATA_USERNS", "1", 1)
            if let root = env["STRATA_ROOT"] { setenv("STRATA_ROOT", root, 1) }
            return nil
        case -2:
            Output.error("cannot map the user namespace's ids with \(newuidmap) and \(newgidmap) (/etc/subuid and /etc/subgid for \(user))")
            return 1
        default:
            break  // unshare refused: through util-linux's unshare below
        }
        guard let unshare = ["/usr/bin/unshare", "/bin/unshare"].first(where: executable) else {
            Output.error("rootless strata needs unshare (util-linux)")
            return 1
        }
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            Output.error("cannot find the strata executable (/proc/self/exe)")
            return 1
        }
        let argv = UserNamespace.entryCommand(unshare: unshare, executable: exe, arguments: arguments)
        let cArgs = argv.map { strdup(RawName.cString($0)) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        execve(unshare, cArgs, cEnv)
        Output.error("cannot run \(unshare): \(String(cString: strerror(errno)))")
        return 1
    }

    /// The file that names the user's namespace holder: `$XDG_RUNTIME_DIR/strata/userns.pid`, else
    /// `/tmp/strata-<uid>/userns.pid`; nil when that directory cannot be made or is not the
    /// user's own with no access for others (then every command makes its own namespace).
    static func holderFile(uid: uid_t, environment: [String: String]) -> String? {
        let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        let dir = runtime.map { $0 + "/strata" } ?? "/tmp/strata-\(uid)"
        _ = mkdir(dir, 0o700)
        var st = stat()
        guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == uid, st.st_mode & 0o077 == 0 else { return nil }
        return dir + "/userns.pid"
    }

    /// The arguments that may ask for help: all of them, but for `strata [--root R] unshare CMD…`
    /// only up to `unshare` and the one after it (`strata unshare --help`).
    static func helpScope(_ arguments: [String]) -> ArraySlice<String> {
        var i = 0
        while i < arguments.count {
            if arguments[i] == "--root" { i += 2 } else if arguments[i].hasPrefix("--root=") { i += 1 } else { break }
        }
        guard i < arguments.count, arguments[i] == "unshare" else { return arguments[...] }
        return arguments[..<min(i + 2, arguments.count)]
    }
}
