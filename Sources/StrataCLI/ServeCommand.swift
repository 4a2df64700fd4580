import ArgumentParser
import Foundation
import Strata
import StrataEngine

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the Docker Engine API on a unix socket, so docker and the Docker SDKs use this store.",
        discussion: """
            The socket is created mode 0660 (default ROOT/strata.sock), group `strata` when that \
            group exists, and removed on exit; under a systemd socket unit (LISTEN_FDS) the unit's \
            socket is used instead. \
            SIGTERM or SIGINT stops accepting connections, lets requests in flight finish, and \
            exits. Whoever can connect to the socket can do anything the store's owner can: \
            keep it out of reach of other users.

            Examples:
              strata serve
              strata serve --socket /run/strata.sock &
              DOCKER_HOST=unix:///run/strata.sock docker images
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "The unix socket to listen on (default: ROOT/strata.sock).")
    var socket: String?

    func run() async throws {
        let store = try await global.openStore()
        let path = socket ?? store.root.appendingPathComponent("strata.sock").path
        // Under a systemd socket unit (tools/cron/strata.socket) the socket comes ready.
        let inherited = EngineServer.systemdSocket()
        let server = EngineServer(store: store, socketPath: path, inheritedSocket: inherited)
        let signals = [SIGTERM, SIGINT].map { sig -> any DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { server.shutdown() }
            source.resume()
            return source
        }
        defer { for s in signals { s.cancel() } }
        let how = inherited == nil ? "unix://\(path)" : "the socket systemd passed (descriptor 3)"
        FileHandle.standardError.write(Data("Serving the Docker Engine API on \(how)\n".utf8))
        try await server.run()
    }
}
