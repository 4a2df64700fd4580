import ArgumentParser
import Foundation
import Strata
#if canImport(Glibc)
import Glibc
#endif

/// `strata unshare [CMD…]`: runs a command in strata's user and mount namespace, as `podman
/// unshare` does. Without root every strata process makes its own namespace, and an overlay
/// mounted there goes with the process; the command run here holds the namespace instead, so
/// `strata mount` inside it prints a path that stays mounted until the command ends. Files
/// show the owners the image gives them (uid 0 is the user). As root it just runs the command.
struct UnshareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unshare",
        abstract: "Run a command in strata's user and mount namespace (rootless), where strata mount works.",
        discussion: """
            Without CMD, runs $SHELL (else /bin/sh). strata commands run inside it share its \
            namespace: a container mounted there stays mounted until the command exits. As root \
            the command just runs.

            Examples:
              strata unshare sh -c 'ls -l "$(strata mount c)"/home/app'
              strata unshare                      # a shell; strata mount c; … exit
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var command: [String] = []

    func run() throws {
        let argv = command.isEmpty ? [getenv("SHELL").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/bin/sh"] : command
        if UserNamespace.isNested { setenv("STRATA_USERNS", "session", 1) }
        if let root = global.root { setenv("STRATA_ROOT", URL(fileURLWithPath: root).path, 1) }
        let cArgs = argv.map { strdup(RawName.cString($0)) } + [nil]
        if let file = cArgs[0] { execvp(file, cArgs) }
        let reason = String(cString: strerror(errno))
        throw StrataError(.invalidArgument, "cannot run \(RawName.escaped(argv[0])): \(reason)")
    }
}
