import ArgumentParser
import Foundation
import Strata

/// `strata stop`: the container's stop signal, then SIGKILL after the timeout, as `docker stop`.
struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop running containers: the stop signal (the image's STOPSIGNAL or SIGTERM), then SIGKILL after the timeout.",
        discussion: """
            Works on a container whichever process runs it (`strata run`, `strata serve`). \
            A container that is not running is left as it is.

            Examples:
              strata stop web
              strata stop -t 0 web          # SIGKILL at once
              strata stop -s SIGINT -t 30 web
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: [.customShort("t"), .long], help: "Seconds to wait for the container to stop before SIGKILL (default: its --stop-timeout, else 10).")
    var time: Int?
    @Option(name: .shortAndLong, help: "The signal to send first (default: the image's STOPSIGNAL, else SIGTERM).")
    var signal: String?
    @Argument var containers: [String]

    func validate() throws {
        guard !containers.isEmpty else { throw ValidationError("stop needs at least one container") }
        guard (time ?? 0) >= 0 else { throw ValidationError("--time must be 0 or more seconds") }
    }

    func run() async throws {
        let store = try await global.openStore()
        let first = try signal.map(ContainerSignal.init)
        try await Output.eachContainer(containers) { c in
            try await store.stop(c, timeout: time.map { .seconds($0) }, signal: first)
        }
    }
}

/// `strata kill`: a signal to the container's process, as `docker kill`.
struct KillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Send a signal (default SIGKILL) to running containers.",
        discussion: """
            Examples:
              strata kill web
              strata kill -s HUP web
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "The signal: a name (SIGHUP, HUP) or a number.")
    var signal: String = "KILL"
    @Argument var containers: [String]

    func validate() throws {
        guard !containers.isEmpty else { throw ValidationError("kill needs at least one container") }
    }

    func run() async throws {
        let store = try await global.openStore()
        let s = try ContainerSignal(signal)
        try await Output.eachContainer(containers) { c in try await store.kill(c, signal: s) }
    }
}

extension Output {
    /// Runs `body` for each container named, printing the name on success and the error's
    /// one line otherwise, as docker does; fails at the end when one failed.
    static func eachContainer(_ names: [String], _ body: (String) async throws -> Void) async throws {
        var failed = false
        for c in names {
            do {
                try await body(c)
                print(c)
            } catch let e as StrataError {
                error(e.message)
                failed = true
            }
        }
        if failed { throw CommandFailed() }
    }
}

/// `strata rename`: a container's new name, as `docker rename`.
struct RenameCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rename",
        abstract: "Rename a container (running or not).",
        discussion: "Example:\n  strata rename web web-old")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The container (name, ID or ID prefix).") var container: String
    @Argument(help: "Its new name.") var name: String

    func run() async throws {
        let store = try await global.openStore()
        try await store.renameContainer(container, to: name)
    }
}

/// `strata pause`: freezes running containers, as `docker pause`.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Freeze the processes of running containers (until unpause).",
        discussion: "Example:\n  strata pause web")
    @OptionGroup var global: GlobalOptions
    @Argument var containers: [String]

    func validate() throws {
        guard !containers.isEmpty else { throw ValidationError("pause needs at least one container") }
    }

    func run() async throws {
        let store = try await global.openStore()
        try await Output.eachContainer(containers) { try await store.pause($0) }
    }
}

/// `strata unpause`: thaws paused containers, as `docker unpause`.
struct UnpauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpause", abstract: "Thaw paused containers.",
        discussion: "Example:\n  strata unpause web")
    @OptionGroup var global: GlobalOptions
    @Argument var containers: [String]

    func validate() throws {
        guard !containers.isEmpty else { throw ValidationError("unpause needs at least one container") }
    }

    func run() async throws {
        let store = try await global.openStore()
        try await Output.eachContainer(containers) { try await store.unpause($0) }
    }
}

/// `strata top`: the processes of a running container, as `docker top`.
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "Show the processes of a running container (the host's ps, limited to them).",
        discussion: "Examples:\n  strata top web\n  strata top web aux")
    @OptionGroup var global: GlobalOptions
    @Argument var container: String
    @Argument(parsing: .captureForPassthrough, help: "Options for ps (default: -ef).")
    var psOptions: [String] = []

    func run() async throws {
        let store = try await global.openStore()
        let top = try await store.top(container, psArguments: psOptions.isEmpty ? ["-ef"] : psOptions)
        var table = Table(top.titles, rows: top.processes.count)
        for row in top.processes {
            for cell in row { table.add(cell) }
            table.endRow()
        }
        Output.writeStandardOutput(table.renderBytes())
    }
}

/// `strata export`: the container's root filesystem as a tar, as `docker export`.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a container's root filesystem as a tar (to standard output, or -o FILE).",
        discussion: "Examples:\n  strata export web > web.tar\n  strata export -o web.tar web && strata import web.tar flat:1")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "The file to write (default: standard output).")
    var output: String?
    @Argument var container: String

    func run() async throws {
        let store = try await global.openStore()
        _ = try await store.archive(fromContainer: container, path: "/.", to: URL(fileURLWithPath: output ?? "/dev/stdout"))
    }
}
