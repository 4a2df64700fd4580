import Foundation
import OCI
import Strata

/// `docker network ls` and `docker network inspect`: strata gives every container an empty
/// network namespace of its own, which dockerd calls the `none` network (driver `null`), so
/// that is the one network listed; creating one answers 501 (the default route).
extension EngineRouter {
    /// The `none` network's ID: fixed, as a name for a network strata does not make.
    static let noneNetworkID = Digest.sha256(Data("strata network none".utf8)).encoded

    /// `GET /networks?filters=`: `name`, `id` (exact or an unanchored regular expression),
    /// `driver`, `scope`, `type` (`builtin` or `custom`), `label` and `dangling`, as dockerd
    /// reads them; another key is a 400.
    func listNetworks(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let filters = try req.filters()
        var keep = true
        for (k, values) in filters where !values.isEmpty {
            switch k {
            case "name": keep = keep && values.contains { Self.matches($0, "none") }
            case "id": keep = keep && values.contains { Self.matches($0, Self.noneNetworkID) }
            case "driver": keep = keep && values.contains("null")
            case "scope": keep = keep && values.contains("local")
            case "type": keep = keep && values.contains("builtin")
            case "label": keep = false  // it has no labels
            case "dangling": keep = keep && values.contains { $0 == "false" || $0 == "0" }  // predefined: never dangling
            default: throw EngineError.badRequest("invalid filter '\(k)'")
            }
        }
        try await res.sendJSON(keep ? [try await noneNetwork(containers: false)] : [[String: Any]]())
    }

    /// `GET /networks/{id}`: `none` by name, ID or ID prefix; any other a 404.
    func inspectNetwork(_ ref: String, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        guard ref == "none" || (ref.count >= 1 && Self.noneNetworkID.hasPrefix(ref)) else {
            throw EngineError(status: .notFound, message: "network \(ref) not found")
        }
        try await res.sendJSON(try await noneNetwork(containers: true))
    }

    /// A network filter value as dockerd matches it: equal, or an unanchored expression.
    private static func matches(_ pattern: String, _ value: String) -> Bool {
        if pattern == value { return true }
        guard let re = try? Regex(pattern) else { return false }
        return value.contains(re)
    }

    private func noneNetwork(containers: Bool) async throws -> [String: Any] {
        var attached: [String: Any] = [:]
        if containers {
            for c in try await store.containers(all: false) {
                attached[c.id] = ["Name": c.name ?? String(c.id.prefix(12)), "EndpointID": "", "MacAddress": "",
                                  "IPv4Address": "", "IPv6Address": ""]
            }
        }
        return ["Name": "none", "Id": Self.noneNetworkID, "Created": RFC3339.format(started), "Scope": "local", "Driver": "null",
                "EnableIPv6": false, "IPAM": ["Driver": "default", "Options": NSNull(), "Config": [Any]()] as [String: Any],
                "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": ["Network": ""], "ConfigOnly": false,
                "Containers": attached, "Options": [String: String](), "Labels": [String: String]()]
    }

    /// The entry of `NetworkSettings.Networks` a container has: `none`, no address.
    static func noneEndpoint() -> [String: Any] {
        ["IPAMConfig": NSNull(), "Links": NSNull(), "Aliases": NSNull(), "MacAddress": "", "NetworkID": noneNetworkID,
         "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
         "GlobalIPv6PrefixLen": 0, "DriverOpts": NSNull()]
    }
}
