import Foundation
import Strata

/// Enters the rootless user namespace before a command runs, for a user without root.
///
/// The work is ``UserNamespace/enterIfNeeded(arguments:environment:exportStoreRoot:)`` in the
/// library, which an embedder calls the same way: with subordinate uid and gid ranges for the
/// user, the process moves itself into a user and a new mount namespace before any thread
/// starts — it joins the user namespace a holder process (`strata-userns`) keeps for the user,
/// or makes one (`strata_enter_userns`: unshare, then a forked helper outside runs
/// `newuidmap`/`newgidmap` on it) and starts that holder — after fixing the store root as the
/// user sees it (inside, the process is uid 0 and would otherwise choose /var/lib/strata);
/// `STRATA_USERNS=1` tells child processes. When unshare is refused (threads already running),
/// it re-executes itself through `unshare --map-auto`, which maps the same ids. Without ranges,
/// commands that keep file owners cannot work; strata says what to add.
public enum Rootless {
    /// Enters the user namespace when needed. Returns nil to go on in this process (root,
    /// already inside, help, or inside now), or an exit status when it cannot.
    public static func enterIfNeeded(arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> Int32? {
        guard UserNamespace.shouldEnter(environment: environment) else { return nil }
        // Help and completion need no store. `strata unshare CMD…`: CMD's own flags are not strata's.
        if arguments.isEmpty || helpScope(arguments).contains(where: { ["--help", "-h", "help", "--version", "--generate-completion-script"].contains($0) }) {
            return nil
        }
        let hasRoot = arguments.contains { $0 == "--root" || $0.hasPrefix("--root=") }
        do {
            try UserNamespace.enterIfNeeded(arguments: arguments, environment: environment, exportStoreRoot: !hasRoot)
            return nil
        } catch let e as StrataError {
            Output.error(e.message)
            return 1
        } catch {
            Output.error("\(error)")
            return 1
        }
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
