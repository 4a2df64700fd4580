import ArgumentParser
import Foundation
import Strata

/// The `strata` command line. Logic lives in the `Strata` library; commands only parse,
/// call it and print.
public struct StrataCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "A container-image store: layered images in SQLite and a content-addressed blob directory.",
        discussion: """
            The store lives in --root, else $STRATA_ROOT, else /var/lib/strata as root, else \
            $XDG_DATA_HOME/strata (~/.local/share/strata).

            Examples:
              strata import rootfs.tar base:1
              strata load -i app.tar
              strata images
              strata history app:latest
              strata save -o out.tar app:latest
            """,
        subcommands: [
            LoadCommand.self, ImportCommand.self, ImagesCommand.self, HistoryCommand.self, InspectCommand.self,
            TreeCommand.self, TagCommand.self, RmiCommand.self, SaveCommand.self, DfCommand.self, LayersCommand.self,
            GcCommand.self, FsckCommand.self, EventsCommand.self, ImageCommand.self, ContainerCommand.self, SystemCommand.self, LeaseCommand.self,
            CreateCommand.self, PsCommand.self, MountCommand.self, UnmountCommand.self, DiffCommand.self, CommitCommand.self, RmCommand.self, RunCommand.self, StopCommand.self, KillCommand.self, RenameCommand.self, UpdateCommand.self, PauseCommand.self, UnpauseCommand.self, TopCommand.self, ExportCommand.self, CpCommand.self, VolumeCommand.self, ConfigCommand.self, UnshareCommand.self,
            PullCommand.self, PushCommand.self, LoginCommand.self, LogoutCommand.self, SearchCommand.self,
            BuildCommand.self, BuilderCommand.self,
            DockerfileCommand.self,
            FindCommand.self, AnalyzeCommand.self, ReindexCommand.self,
            ServeCommand.self,
        ]
    )

    public init() {}

    /// Runs the CLI as the `strata` process: ``main(arguments:)``, then `exit` with its status.
    /// A listing may exit as soon as its output is written (`Output.endListing`).
    public static func runAsProcess(arguments: [String]) async -> Never {
        let status = await Output.$endsProcess.withValue(true) { await main(arguments: arguments) }
        Glibc.exit(status)
    }

    /// Runs the CLI with `arguments` (without the program name) and returns the exit status:
    /// 0 success, 1 an error (printed as one `error: …` line), 2 a usage error.
    public static func main(arguments: [String]) async -> Int32 {
        let args = hoistGlobalOptions(arguments)
        do {
            var command = try parseAsRoot(args)
            if var a = command as? AsyncParsableCommand {
                try await a.run()
            } else {
                try command.run()
            }
            return 0
        } catch let e as StrataError {
            // Every full disk reads the same, whichever write met it first (opening the store's
            // database, say): the command's own wording when it has one.
            Output.error(e.code == .diskFull && !e.message.hasPrefix("disk full: ") ? "disk full: \(e.message)" : e.message)
            return 1
        } catch let e as CommandFailed {
            return e.status
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                return 0
            }
            if code == .failure {
                Output.error(String(describing: error))
                return 1
            }
            let msg = fullMessage(for: error)
            FileHandle.standardError.write(Data((msg.hasSuffix("\n") ? msg : msg + "\n").utf8))
            return code == .validationFailure || code.rawValue == 64 ? 2 : code.rawValue
        }
    }

    /// `strata --root DIR image prune -a` → `strata image prune --root DIR -a`: global options
    /// given before the command move right after the command's name (after the group and
    /// subcommand for groups), before any arguments a command passes through.
    static func hoistGlobalOptions(_ args: [String]) -> [String] {
        var globals: [String] = []
        var i = 0
        while i < args.count {
            if args[i] == "--root", i + 1 < args.count {
                globals += [args[i], args[i + 1]]
                i += 2
            } else if args[i].hasPrefix("--root=") {
                globals.append(args[i])
                i += 1
            } else {
                break
            }
        }
        guard !globals.isEmpty, i < args.count else { return args }
        var rest = Array(args[i...])
        let groups = Set(configuration.subcommands.filter { !$0.configuration.subcommands.isEmpty }.compactMap { $0.configuration.commandName })
        var at = 1
        if groups.contains(rest[0]), rest.count > 1, !rest[1].hasPrefix("-") { at = 2 }
        rest.insert(contentsOf: globals, at: min(at, rest.count))
        return rest
    }
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The store root directory.")
    var root: String?

    func openStore() async throws -> Store {
        let url = root.map { URL(fileURLWithPath: $0) } ?? Store.defaultRoot()
        return try await Store.open(at: url)
    }
}

/// Thrown after a command has printed its own errors (e.g. rmi of several images).
struct CommandFailed: Error {
    var status: Int32 = 1
}
