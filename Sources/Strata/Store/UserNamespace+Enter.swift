import CArchive
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension UserNamespace {
    /// Whether ``enterIfNeeded(arguments:environment:exportStoreRoot:)`` would move this process:
    /// it is not root, not already inside strata's namespace (`STRATA_USERNS` unset), and
    /// rootless operation is not turned off (`STRATA_ROOTLESS=off`).
    public static func shouldEnter(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        geteuid() != 0 && environment["STRATA_USERNS"] == nil && environment["STRATA_ROOTLESS"] != "off"
    }

    /// Moves this process into the user's rootless user namespace, as the `strata` command does
    /// before it parses its arguments; does nothing as root or when already inside.
    ///
    /// An embedder running as a user calls it first thing in `main`, before any thread starts:
    /// the kernel lets only a single-threaded process change its user namespace. It joins the
    /// namespace the user's `strata-userns` holder keeps (the one `strata` commands share), or
    /// makes one mapped from `/etc/subuid` and `/etc/subgid` with the system's `newuidmap` and
    /// `newgidmap` and starts that holder. When the kernel refuses (threads already running) it
    /// re-executes the program through util-linux's `unshare --map-auto` with `arguments`, and
    /// does not return. Inside, the process is uid 0 and layers keep their owners; `STRATA_USERNS`
    /// tells child processes.
    ///
    /// - Parameters:
    ///   - arguments: the program's arguments without its name, for the re-execution.
    ///   - environment: the environment to read and, for the re-execution, pass on.
    ///   - exportStoreRoot: set `STRATA_ROOT` to ``Store/defaultRoot(environment:)`` as the
    ///     user sees it when it is not set (inside, uid 0 would otherwise pick /var/lib/strata).
    /// - Throws: ``StrataError`` `.permissionDenied` when the user has no subordinate range (the
    ///   message gives the `usermod` line to add one) or the ids cannot be mapped, and
    ///   `.notSupported` when newuidmap, newgidmap or unshare is missing.
    public static func enterIfNeeded(arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                                     environment: [String: String] = ProcessInfo.processInfo.environment,
                                     exportStoreRoot: Bool = true) throws {
        guard shouldEnter(environment: environment) else { return }
        let uid = geteuid()
        let user = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(uid)
        let uids = subordinateRanges(user: user, uid: uid, file: "/etc/subuid")
        let gids = subordinateRanges(user: user, uid: uid, file: "/etc/subgid")
        guard !uids.isEmpty, !gids.isEmpty else {
            let missing = [uids.isEmpty ? "/etc/subuid" : nil, gids.isEmpty ? "/etc/subgid" : nil].compactMap { $0 }.joined(separator: " and ")
            throw StrataError(.permissionDenied, "rootless strata needs subordinate ids for \(user): \(missing) has no range for it; as root run "
                + "`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \(user)` (or set STRATA_ROOTLESS=off to run without "
                + "file owners)")
        }
        let executable: (String) -> Bool = { access($0, X_OK) == 0 }
        guard let newuidmap = ["/usr/bin/newuidmap", "/bin/newuidmap"].first(where: executable),
              let newgidmap = ["/usr/bin/newgidmap", "/bin/newgidmap"].first(where: executable) else {
            throw StrataError(.notSupported, "rootless strata needs newuidmap and newgidmap (the uidmap package)")
        }
        var env = environment
        // `1`: this process makes its own mount namespace; a mount made in it goes with the
        // process (mountsOutliveProcess). `strata unshare` gives its command `session`.
        env["STRATA_USERNS"] = "1"
        if exportStoreRoot, (env["STRATA_ROOT"] ?? "").isEmpty {
            env["STRATA_ROOT"] = Store.defaultRoot(environment: environment).path
        }
        // One user namespace for all of the user's strata processes, kept by a holder process:
        // joining it spares each one the two setuid map programs (STRATA_USERNS_HOLDER=off: a new one each time).
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
            return
        case -2:
            throw StrataError(.permissionDenied, "cannot map the user namespace's ids with \(newuidmap) and \(newgidmap) (/etc/subuid and /etc/subgid for \(user))")
        default:
            break  // unshare refused (threads running): through util-linux's unshare below
        }
        guard let unshare = ["/usr/bin/unshare", "/bin/unshare"].first(where: executable) else {
            throw StrataError(.notSupported, "rootless strata needs unshare (util-linux)")
        }
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw StrataError(.internalError, "cannot find this program's executable (/proc/self/exe) to run it again in the user namespace")
        }
        let argv = entryCommand(unshare: unshare, executable: exe, arguments: arguments)
        let cArgs = argv.map { strdup(RawName.cString($0)) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        execve(unshare, cArgs, cEnv)
        throw StrataError.system("cannot run \(unshare)")
    }

    /// The file that names the user's namespace holder: `$XDG_RUNTIME_DIR/strata/userns.pid`, else
    /// `/tmp/strata-<uid>/userns.pid`; nil when that directory cannot be made or is not the
    /// user's own with no access for others (then every process makes its own namespace).
    package static func holderFile(uid: uid_t, environment: [String: String]) -> String? {
        let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        let dir = runtime.map { $0 + "/strata" } ?? "/tmp/strata-\(uid)"
        _ = mkdir(dir, 0o700)
        var st = stat()
        guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == uid, st.st_mode & 0o077 == 0 else { return nil }
        return dir + "/userns.pid"
    }

    /// Refuses, with what to do instead, work that needs root or the rootless user namespace
    /// when this process has neither: a user's process outside the namespace would unpack
    /// layers without their owners (every file the user's) and runc refuses a rootless
    /// container without a user namespace. `ownersOnly`: the work can go on without owners when
    /// the user asked for that (`STRATA_ROOTLESS=off`); running a container never can.
    static func requireEntered(for what: String, ownersOnly: Bool,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard geteuid() != 0, !isNested else { return }
        if ownersOnly && environment["STRATA_ROOTLESS"] == "off" { return }
        throw StrataError(.permissionDenied, "\(what) needs root or strata's user namespace, and this process runs as uid \(geteuid()) "
            + "outside it (an embedding program does not enter it by itself): call `try UserNamespace.enterIfNeeded()` first thing "
            + "in main, before any thread starts, as the strata command does, or run the program under `strata unshare PROGRAM`"
            + (ownersOnly ? ", or set STRATA_ROOTLESS=off to unpack layers without their file owners" : ""))
    }
}
