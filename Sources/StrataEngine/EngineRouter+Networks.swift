import Foundation
import OCI
import Strata

/// `docker network ls` and `docker network inspect`: strata runs a container in an empty
/// network namespace of its own, which dockerd calls the `none` network (driver `null`), or
/// in the host's (`--network host`, driver `host`) (``ContainerNetwork``), so those two are
/// listed; creating one answers 501 (the default route).
extension EngineRouter {
    /// `GET /networks?filters=`: `name`, `id` (exact or an unanchored regular expression),
    /// `driver`, `scope`, `type` (`builtin` or `custom`), `label` and `dangling`, as dockerd
    /// reads them; another key is a 400.
    func listNetworks(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let filters = try req.filters()
        var listed: [[String: Any]] = []
        for network in ContainerNetwork.allCases {
            var keep = true
            for (k, values) in filters where !values.isEmpty {
                switch k {
                case "name": keep = keep && values.contains { Self.matches($0, network.name) }
                case "id": keep = keep && values.contains { Self.matches($0, network.id) }
                case "driver": keep = keep && values.contains(network.driver)
                case "scope": keep = keep && values.contains("local")
                case "type": keep = keep && values.contains("builtin")
                case "label": keep = false  // they have no labels
                case "dangling": keep = keep && values.contains { $0 == "false" || $0 == "0" }  // predefined: never dangling
                default: throw EngineError.badRequest("invalid filter '\(k)'")
                }
            }
            if keep { listed.append(try await json(network, containers: false)) }
        }
        try await res.sendJSON(listed)
    }

    /// `GET /networks/{id}`: `none` or `host` by name, ID or ID prefix; any other a 404.
    func inspectNetwork(_ ref: String, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        guard let network = ContainerNetwork.allCases.first(where: { ref == $0.name })
            ?? ContainerNetwork.allCases.first(where: { !ref.isEmpty && $0.id.hasPrefix(ref) }) else {
            throw EngineError(status: .notFound, message: "network \(ref) not found")
        }
        try await res.sendJSON(try await json(network, containers: true))
    }

    /// A network filter value as dockerd matches it: equal, or an unanchored expression.
    private static func matches(_ pattern: String, _ value: String) -> Bool {
        if pattern == value { return true }
        guard let re = try? Regex(pattern) else { return false }
        return value.contains(re)
    }

    private func json(_ network: ContainerNetwork, containers: Bool) async throws -> [String: Any] {
        var attached: [String: Any] = [:]
        if containers {
            for c in try await store.containers(all: false) where c.network == network {
                attached[c.id] = ["Name": c.name ?? String(c.id.prefix(12)), "EndpointID": "", "MacAddress": "",
                                  "IPv4Address": "", "IPv6Address": ""]
            }
        }
        return ["Name": network.name, "Id": network.id, "Created": RFC3339.format(started), "Scope": "local", "Driver": network.driver,
                "EnableIPv6": false, "IPAM": ["Driver": "default", "Options": NSNull(), "Config": [Any]()] as [String: Any],
                "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": ["Network": ""], "ConfigOnly": false,
                "Containers": attached, "Options": [String: String](), "Labels": [String: String]()]
    }

    /// A container's `NetworkSettings.Networks`: its one network, with no address.
    static func endpoints(_ c: ContainerInfo) -> [String: Any] {
        [c.network.name: ["IPAMConfig": NSNull(), "Links": NSNull(), "Aliases": NSNull(), "MacAddress": "", "NetworkID": c.network.id,
                          "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                          "GlobalIPv6PrefixLen": 0, "DriverOpts": NSNull()] as [String: Any]]
    }
}
