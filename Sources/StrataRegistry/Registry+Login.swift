import Foundation
import OCI

extension Registry {
    /// Checks credentials against a registry (`GET /v2/`, answering its Basic or Bearer
    /// challenge with them) and, when it accepts them, stores them in Docker's config.json
    /// (atomically, mode 0600). The password is never printed or logged.
    ///
    /// ```swift
    /// try await Registry.login("registry.example.com", Credentials(username: "ci", password: token))
    /// ```
    public static func login(_ registry: String, _ credentials: Credentials, options: RegistryOptions = RegistryOptions()) async throws {
        let host = try await checkLogin(registry, credentials, options: options)
        try Credentials.store(credentials, for: host, file: options.credentialsFile)
    }

    /// Checks credentials against a registry without storing them (the Engine API's
    /// `POST /auth`: the client keeps them). Returns the registry host they are for.
    @discardableResult
    public static func checkLogin(_ registry: String, _ credentials: Credentials, options: RegistryOptions = RegistryOptions()) async throws -> String {
        let host = try Reference("\(registry)/x").registry
        let client = RegistryClient(registry: host, repository: "", options: options, credentials: credentials)
        let resp = try await client.send(.GET, "/v2/")
        _ = try? await resp.body.collect(upTo: 1 << 20)
        guard resp.status == .ok else {
            let code: StrataError.Code = resp.status == .unauthorized || resp.status == .forbidden ? .unauthorized : .io
            throw StrataError(code, "login to \(host) failed: HTTP \(resp.status.code) \(resp.status.reasonPhrase)"
                + (code == .unauthorized ? " (wrong username or password?)" : ""))
        }
        return host
    }

    /// Removes stored credentials for a registry.
    public static func logout(_ registry: String, options: RegistryOptions = RegistryOptions()) throws {
        let host = try Reference("\(registry)/x").registry
        try Credentials.store(nil, for: host, file: options.credentialsFile)
    }
}
