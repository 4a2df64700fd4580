import Foundation
import NIOSSL
import Strata
#if canImport(Glibc)
import Glibc
#endif

/// TLS with client certificates for ``EngineServer``'s TCP listeners, as dockerd's
/// `--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY`: the server shows CERT (with
/// KEY), and a client gets in only with a certificate signed by CA. A client without one,
/// or with one another CA signed, fails the handshake before it sends a request.
///
/// ```swift
/// let tls = try EngineTLS(caCertificatePath: "ca.pem", certificatePath: "server-cert.pem", keyPath: "server-key.pem")
/// let server = EngineServer(store: store, socketPath: sock, tcp: [try EngineTCPAddress("0.0.0.0:2376")], tls: tls)
/// ```
///
/// The files are read once, here: a missing, unreadable or malformed file, or a key that
/// does not belong to the certificate, is a ``StrataError/Code/invalidArgument`` naming it.
public struct EngineTLS: Sendable {
    /// The PEM file of the certificate authorities that client certificates must chain to.
    public let caCertificatePath: String
    /// The server's PEM certificate (its chain may follow it in the file).
    public let certificatePath: String
    /// The server certificate's PEM private key (unencrypted).
    public let keyPath: String
    /// The context every TLS connection is made from.
    let context: NIOSSLContext

    /// Reads and checks the three files and builds the server's TLS context (TLS 1.2 or
    /// newer, a client certificate signed by the CA required, no host name check on it).
    public init(caCertificatePath: String, certificatePath: String, keyPath: String) throws {
        self.caCertificatePath = caCertificatePath
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        let roots = try Self.certificates(caCertificatePath, what: "TLS CA certificate")
        let chain = try Self.certificates(certificatePath, what: "TLS certificate")
        let keyBytes = try Self.read(keyPath, what: "TLS key")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw StrataError(.invalidArgument, "the TLS key \(keyPath) is not an unencrypted PEM private key", cause: error)
        }
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .certificates(roots))
        configuration.minimumTLSVersion = .tlsv12
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL refuses a key that is not the certificate's (NIOSSLError.failedToLoadPrivateKey).
            throw StrataError(.invalidArgument, "the TLS key \(keyPath) does not belong to the certificate \(certificatePath)", cause: error)
        }
    }

    private static func read(_ path: String, what: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StrataError(.invalidArgument, "cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw StrataError(.invalidArgument, "cannot read the \(what) \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
            // A certificate or key file is a few KiB; anything this large is not one.
            guard bytes.count <= 1 << 20 else { throw StrataError(.invalidArgument, "the \(what) \(path) is larger than 1 MiB: not a PEM file") }
        }
        return bytes
    }

    private static func certificates(_ path: String, what: String) throws -> [NIOSSLCertificate] {
        let bytes = try read(path, what: what)
        let found = try? NIOSSLCertificate.fromPEMBytes(bytes)
        guard let found, !found.isEmpty else {
            throw StrataError(.invalidArgument, "the \(what) \(path) holds no PEM certificate")
        }
        return found
    }
}
