import ArgumentParser
import Foundation
import Strata
import StrataRegistry

struct RegistryFlags: ParsableArguments {
    @Option(name: .customLong("insecure-registry"), help: "Allow plain HTTP to this registry (host:port). Loopback always is.")
    var insecure: [String] = []
    @Flag(name: .shortAndLong, help: "Print nothing but the result.")
    var quiet = false

    func options() -> RegistryOptions {
        @Sendable func printLine(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        return RegistryOptions(insecureRegistries: Set(insecure), progress: quiet ? nil : printLine)
    }
}

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry.",
        discussion: """
            Examples:
              strata pull localhost:5000/app:1
              strata pull --platform linux/arm64 quay.io/org/app@sha256:…
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: RegistryFlags
    @Option(help: "Platform to pick from an index (os/arch[/variant]); defaults to the host's.")
    var platform: String?
    @Argument var reference: String

    func run() async throws {
        let p = try platform.map { try Platform(parsing: $0) }
        _ = try Reference(reference)
        let store = try await global.openStore()
        let result = try await Registry.pull(reference, into: store, options: flags.options(), platform: p)
        if flags.quiet {
            print(result.image.id)
        } else {
            print("Digest: \(result.digest)")
            print("Status: Downloaded image for \(try Reference(reference).familiar)")
        }
    }
}

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push an image to a registry; only the blobs it lacks are uploaded.",
        discussion: """
            Examples:
              strata push localhost:5000/app:1
              strata push app:1 localhost:5000/team/app:1
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: RegistryFlags
    @Argument var image: String
    @Argument var destination: String?

    func run() async throws {
        let dest = destination ?? image
        _ = try Reference(dest)
        let store = try await global.openStore()
        let digest = try await Registry.push(image, to: dest, from: store, options: flags.options())
        if flags.quiet { print(digest) }
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Store credentials for a registry in ~/.docker/config.json (Docker's format, mode 0600).",
        discussion: "Example:\n  echo \"$TOKEN\" | strata login -u ci --password-stdin registry.example.com")
    @Option(name: .shortAndLong, help: "Username.") var username: String
    @Flag(help: "Read the password from standard input.") var passwordStdin = false
    @Argument var registry: String

    func run() async throws {
        guard passwordStdin else { throw StrataError(.invalidArgument, "use --password-stdin: passwords on the command line end up in shell history") }
        guard let password = readLine(strippingNewline: true), !password.isEmpty else {
            throw StrataError(.invalidArgument, "no password on standard input")
        }
        try Credentials.store(Credentials(username: username, password: password), for: registry)
        print("Login Succeeded")
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Remove stored credentials for a registry.")
    @Argument var registry: String

    func run() async throws {
        try Credentials.store(nil, for: registry)
        print("Removing login credentials for \(registry)")
    }
}
