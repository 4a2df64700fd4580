import ArgumentParser
import Foundation
import Strata
import StrataEngine

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the Docker Engine API on a unix socket (and TCP if asked), so docker and the Docker SDKs use this store.",
        discussion: """
            The socket is created mode 0660 (default ROOT/strata.sock), group `strata` when that \
            group exists, and removed on exit; under a systemd socket unit (LISTEN_FDS) the unit's \
            socket is used instead. \
            SIGTERM or SIGINT stops accepting connections, lets requests in flight finish, and \
            exits. Whoever can connect to the socket can do anything the store's owner can: \
            keep it out of reach of other users.

            There is no TCP listener unless --listen HOST:PORT asks for one (repeatable); it \
            serves the same API besides the socket. A loopback address (127.0.0.0/8, [::1], \
            localhost) may be served plain, as only this machine reaches it (but every local \
            user does). Any other address is refused unless --tlsverify with --tlscacert, \
            --tlscert and --tlskey is given (dockerd's flags): the server then presents \
            --tlscert and lets in only clients whose certificate --tlscacert signed; the socket \
            stays plain. Port 0 picks a free port; each address is printed on stderr once it \
            listens. A refused or malformed address, or a TLS file that cannot be used, is an \
            error before anything is bound.

            Examples:
              strata serve
              strata serve --socket /run/strata.sock &
              DOCKER_HOST=unix:///run/strata.sock docker images

              strata serve --listen 127.0.0.1:2375 &
              DOCKER_HOST=tcp://127.0.0.1:2375 docker images

              strata serve --listen 0.0.0.0:2376 --tlsverify \\
                --tlscacert ca.pem --tlscert server-cert.pem --tlskey server-key.pem &
              docker --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem \\
                -H tcp://HOST:2376 images
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "The unix socket to listen on (default: ROOT/strata.sock).")
    var socket: String?
    @Option(help: ArgumentHelp("Also serve on TCP at HOST:PORT (repeatable; port 0: a free port). Only loopback without --tlsverify.",
                               valueName: "host:port"))
    var listen: [String] = []
    @Flag(help: "Require TLS with a client certificate signed by --tlscacert on every --listen address.")
    var tlsverify = false
    @Option(help: ArgumentHelp("The CA certificates (PEM) that client certificates must chain to.", valueName: "file"))
    var tlscacert: String?
    @Option(help: ArgumentHelp("The server's TLS certificate (PEM).", valueName: "file"))
    var tlscert: String?
    @Option(help: ArgumentHelp("The server certificate's private key (PEM, unencrypted).", valueName: "file"))
    var tlskey: String?

    /// The TCP addresses and their TLS, checked before the store is opened: a refused or
    /// malformed address, or a TLS file that cannot be used, changes nothing on disk.
    func listeners() throws -> ([EngineTCPAddress], EngineTLS?) {
        let addresses = try listen.map { try EngineTCPAddress($0) }
        guard tlsverify else {
            guard tlscacert == nil, tlscert == nil, tlskey == nil else {
                throw StrataError(.invalidArgument, "--tlscacert, --tlscert and --tlskey take effect only with --tlsverify")
            }
            for address in addresses { try address.requireSafe(tls: nil) }
            return (addresses, nil)
        }
        guard !addresses.isEmpty else {
            throw StrataError(.invalidArgument, "--tlsverify secures --listen addresses: give one (e.g. --listen 0.0.0.0:2376)")
        }
        guard let ca = tlscacert, let cert = tlscert, let key = tlskey else {
            throw StrataError(.invalidArgument, "--tlsverify needs --tlscacert, --tlscert and --tlskey")
        }
        return (addresses, try EngineTLS(caCertificatePath: ca, certificatePath: cert, keyPath: key))
    }

    func run() async throws {
        let (addresses, tls) = try listeners()
        let store = try await global.openStore()
        let path = socket ?? store.root.appendingPathComponent("strata.sock").path
        // Under a systemd socket unit (tools/cron/strata.socket) the socket comes ready.
        let inherited = EngineServer.systemdSocket()
        let server = EngineServer(store: store, socketPath: path, inheritedSocket: inherited, tcp: addresses, tls: tls)
        let signals = [SIGTERM, SIGINT].map { sig -> any DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { server.shutdown() }
            source.resume()
            return source
        }
        defer { for s in signals { s.cancel() } }
        try await server.run { endpoints in
            for endpoint in endpoints {
                FileHandle.standardError.write(Data("Serving the Docker Engine API on \(endpoint)\n".utf8))
            }
        }
    }
}
