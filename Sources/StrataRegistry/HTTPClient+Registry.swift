import AsyncHTTPClient
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

extension HTTPClient {
    /// The client for registries and remote build contexts: the shared client's settings,
    /// except that a connection that cannot be made fails at once instead of being retried
    /// until the connect timeout (the shared client tries a refused port for 90 s on each
    /// request, so a login to a registry that is down took six minutes). The callers retry
    /// on their own terms (``RegistryClient/send(_:_:headers:body:)``: three times, with
    /// backoff). A connection attempt gives up after 30 s, as Docker's dialer.
    static let registry = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: registryConfiguration)

    /// The client for the `urls` of non-distributable layers: ``registry``'s settings, with a
    /// shorter connect timeout (15 s: the next url is tried), a 90 s read timeout, and the
    /// body taken as it is (no decompression: its digest is checked).
    static let foreignLayers: HTTPClient = {
        var config = registryConfiguration
        config.timeout.connect = .seconds(15)
        config.timeout.read = .seconds(90)
        config.decompression = .disabled
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }()

    /// ``registry``'s configuration, from which the other clients of this module derive theirs.
    private static var registryConfiguration: Configuration {
        var config = Configuration.singletonConfiguration
        config.timeout.connect = .seconds(30)
        config.connectionPool.retryConnectionEstablishment = false
        return config
    }
}

extension HTTPClient {
    /// Why a request could not be sent, in a few words ("connection refused", "unknown
    /// host"), instead of NIO's nested descriptions; anything else as it describes itself.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let e as IOError:
            return String(cString: strerror(e.errnoCode)).lowercased()
        case let e as NIOConnectionError:
            if let first = e.connectionErrors.first { return describe(first.error) }
            return e.dnsAError != nil || e.dnsAAAAError != nil ? "unknown host" : "\(error)"
        case let e as SocketAddressError:
            if case .unknown = e { return "unknown host" }
            return "\(error)"
        case let e as HTTPClientError where e == .connectTimeout:
            return "no connection within 30 s"
        default:
            return "\(error)"
        }
    }
}
