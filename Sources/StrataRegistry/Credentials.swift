import Foundation
import OCI

/// Registry credentials in Docker's format (`~/.docker/config.json`, `auths`), so
/// `docker login` and `strata login` share them. Never printed or logged.
public struct Credentials: Sendable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    public static func configFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let d = environment["DOCKER_CONFIG"], !d.isEmpty { return URL(fileURLWithPath: d).appendingPathComponent("config.json") }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".docker/config.json")
    }

    static func key(for registry: String) -> String {
        registry == Reference.defaultRegistry ? "https://index.docker.io/v1/" : registry
    }

    /// The stored credentials for a registry, if any.
    public static func lookup(_ registry: String, file: URL = configFile()) -> Credentials? {
        guard let data = try? Data(contentsOf: file),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let auths = json["auths"] as? [String: Any] else { return nil }
        let entry = (auths[key(for: registry)] ?? auths[registry] ?? auths["https://\(registry)"]) as? [String: Any]
        guard let auth = entry?["auth"] as? String, let decoded = Data(base64Encoded: auth),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return Credentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
    }

    /// Stores credentials for a registry; the file is written atomically with mode 0600.
    public static func store(_ c: Credentials?, for registry: String, file: URL = configFile()) throws {
        var json: [String: Any] = [:]
        // Logging out where nothing is stored writes nothing.
        if c == nil, !FileManager.default.fileExists(atPath: file.path) { return }
        if let data = try? Data(contentsOf: file) {
            guard let existing = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw StrataError(.invalidJSON, "\(file.path) is not valid JSON; fix or remove it")
            }
            json = existing
        }
        var auths = json["auths"] as? [String: Any] ?? [:]
        if let c {
            auths[key(for: registry)] = ["auth": Data("\(c.username):\(c.password)".utf8).base64EncodedString()]
        } else {
            auths.removeValue(forKey: key(for: registry))
        }
        json["auths"] = auths
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        let dir = file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let tmp = dir.appendingPathComponent(".config.json.\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: tmp.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw StrataError(.io, "cannot write \(tmp.path)")
        }
        if rename(tmp.path, file.path) != 0 {
            unlink(tmp.path)
            throw StrataError.system("cannot write \(file.path)")
        }
    }
}
