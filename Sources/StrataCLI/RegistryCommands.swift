import ArgumentParser
import Foundation
import Strata
import StrataRegistry

struct RegistryFlags: ParsableArguments {
    @Option(name: .customLong("insecure-registry"), help: "Allow plain HTTP to this registry (host:port). Loopback always is.")
    var insecure: [String] = []
    @Flag(name: .shortAndLong, help: "Print nothing but the result.")
    var quiet = false
    @Option(name: .customLong("max-concurrent"), help: "Blobs transferred at once (like dockerd's --max-concurrent-downloads).")
    var maxConcurrent = 3

    func validate() throws {
        guard (1...32).contains(maxConcurrent) else { throw ValidationError("--max-concurrent must be between 1 and 32") }
    }

    /// Options with progress drawn on stderr (bars on a terminal, lines otherwise), none with -q.
    func options(verb: String) -> RegistryOptions {
        RegistryOptions(insecureRegistries: Set(insecure), parallelism: maxConcurrent,
                        progress: quiet ? nil : TransferProgress(verb: verb).callback)
    }
}

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry.",
        discussion: """
            Layers are fetched 3 at a time and verified as they arrive; an interrupted layer resumes where it stopped. Progress goes to stderr: a bar per layer on a terminal, one line per layer otherwise, nothing with -q.

            Examples:
              strata pull localhost:5000/app:1
              strata pull --platform linux/arm64 quay.io/org/app@sha256:…
              strata pull --all-platforms localhost:5000/multi:1
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: RegistryFlags
    @Option(help: "Platform to pick from an index (os/arch[/variant]); defaults to the host's.")
    var platform: String?
    @Flag(help: "Keep the index and every platform image it lists (the tag goes to --platform's, or the host's).")
    var allPlatforms = false
    @Argument var reference: String

    func run() async throws {
        let p = try platform.map { try Platform(parsing: $0) }
        _ = try Reference(reference)
        let store = try await global.openStore()
        let result = try await Registry.pull(reference, into: store, options: flags.options(verb: "Downloading"), platform: p,
                                             allPlatforms: allPlatforms)
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
            Blobs the registry has are skipped (HEAD), blobs another repository of the same registry is known to have are mounted, the rest uploaded (in chunks when large). Uncompressed layers are compressed once (gzip, or --compression zstd) and the compressed copy is kept for the next push. Prints Docker's summary line (`TAG: digest: sha256:… size: N`), or only the digest with -q.

            Examples:
              strata push localhost:5000/app:1
              strata push app:1 localhost:5000/team/app:1
              strata push --compression zstd app:1 localhost:5000/team/app:zstd
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: RegistryFlags
    @Option(help: "Compression for layers stored uncompressed: gzip or zstd.")
    var compression: String = "gzip"
    @Argument var image: String
    @Argument var destination: String?

    func validate() throws {
        guard Compression(rawValue: compression).map({ $0 != .none }) ?? false else {
            throw ValidationError("--compression must be gzip or zstd")
        }
    }

    func run() async throws {
        let dest = destination ?? image
        _ = try Reference(dest)
        let c = Compression(rawValue: compression) ?? .gzip
        let store = try await global.openStore()
        var options = flags.options(verb: "Pushing")
        options.compression = c
        let result = try await Registry.pushImage(image, to: dest, from: store, options: options)
        print(flags.quiet ? result.digest.string : result.summary)
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Check credentials against a registry and store them in ~/.docker/config.json (Docker's format, mode 0600).",
        discussion: """
            The password is read from standard input (never from the command line, where it would end up in shell history) and is never printed. $DOCKER_CONFIG moves the file.

            Example:
              echo "$TOKEN" | strata login -u ci --password-stdin registry.example.com
            """)
    @OptionGroup var flags: RegistryFlags
    @Option(name: .shortAndLong, help: "Username.") var username: String
    @Flag(help: "Read the password from standard input.") var passwordStdin = false
    @Argument var registry: String

    func run() async throws {
        guard passwordStdin else { throw StrataError(.invalidArgument, "use --password-stdin: passwords on the command line end up in shell history") }
        guard let password = readLine(strippingNewline: true), !password.isEmpty else {
            throw StrataError(.invalidArgument, "no password on standard input")
        }
        try await Registry.login(registry, Credentials(username: username, password: password), options: flags.options(verb: ""))
        print("Login Succeeded")
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Remove stored credentials for a registry.")
    @Argument var registry: String

    func run() async throws {
        try Registry.logout(registry)
        print("Removing login credentials for \(registry)")
    }
}
