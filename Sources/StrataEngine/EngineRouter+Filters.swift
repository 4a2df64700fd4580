import Foundation
import Strata

/// The `filters` of `GET /containers/json` (`docker ps -f`) and `GET /volumes`
/// (`docker volume ls -f`), as dockerd reads them: values of one key are alternatives (any
/// may match), different keys must all match; `id` and `name` match exactly or as an
/// unanchored regular expression; an unknown key, or a value a key cannot take, is a 400.
extension EngineRouter {
    /// The keys `docker ps -f` accepts.
    static let containerFilterKeys: Set<String> = ["ancestor", "before", "expose", "exited", "health", "id", "is-task", "label",
                                                    "name", "network", "publish", "since", "status", "volume"]
    static let containerStates: Set<String> = ["created", "restarting", "running", "removing", "paused", "exited", "dead"]

    /// The containers `GET /containers/json?all=&filters=` lists: running ones, or all with
    /// `all` or a `status` filter; then those every filter key matches.
    func filteredContainers(_ all: Bool, _ filters: [String: [String]]) async throws -> [ContainerInfo] {
        for key in filters.keys where !Self.containerFilterKeys.contains(key) {
            throw EngineError.badRequest("invalid filter '\(key)'")
        }
        for s in filters["status"] ?? [] where !Self.containerStates.contains(s) {
            throw EngineError.badRequest("invalid filter 'status=\(s)'")
        }
        let exited = try (filters["exited"] ?? []).map { v -> Int32 in
            guard let n = Int32(v) else { throw EngineError.badRequest("invalid filter 'exited=\(v)'") }
            return n
        }
        for h in filters["health"] ?? [] where !["starting", "healthy", "unhealthy", "none"].contains(h) {
            throw EngineError.badRequest("invalid filter 'health=\(h)'")
        }
        let isTask = try Self.booleans(filters, "is-task")
        // before/since name containers; created times order them.
        let before = try await (filters["before"] ?? []).asyncMap { try await store.container($0).created }.min()
        let since = try await (filters["since"] ?? []).asyncMap { try await store.container($0).created }.max()
        // ancestor: the image (a name or an ID) and every image built on it; an unknown image
        // matches nothing, as with dockerd.
        var ancestors: Set<String>?
        if let refs = filters["ancestor"] {
            var ids = Set<String>()
            for r in refs {
                if let id = try? await store.lineage(of: r).first?.id.string { ids.insert(id) }
            }
            ancestors = ids
        }
        var lineages: [String: [String]] = [:]
        var out: [ContainerInfo] = []
        for c in try await store.containers() {
            let listAll = all || filters["status"] != nil
            if !listAll && c.state != "running" { continue }
            let name = c.name ?? String(c.id.prefix(12))
            if let v = filters["id"], !v.contains(where: { Self.match($0, c.id) }) { continue }
            if let v = filters["name"], !v.contains(where: { Self.match($0, name) || Self.match($0, "/" + name) }) { continue }
            if let v = filters["status"], !v.contains(c.state) { continue }
            if !exited.isEmpty, !(c.state == "exited" && c.startedAt != nil && exited.contains(c.exitCode ?? 0)) { continue }
            // strata's containers have no labels, ports or networks of their own, no health
            // check, and are never swarm tasks.
            if filters["label"] != nil || filters["network"] != nil || filters["publish"] != nil || filters["expose"] != nil { continue }
            if let v = filters["health"], !v.contains("none") { continue }
            if !isTask.isEmpty, !isTask.contains(false) { continue }
            if let before, c.created >= before { continue }
            if let since, c.created <= since { continue }
            if let v = filters["volume"] {
                let vols = c.volumes ?? []
                if !v.contains(where: { f in vols.contains { $0.source == f || $0.destination == f } }) { continue }
            }
            if let ancestors {
                let image = c.imageID.string
                if lineages[image] == nil {
                    lineages[image] = ((try? await store.lineage(of: image)) ?? []).map(\.id.string)
                }
                if !(lineages[image] ?? []).contains(where: ancestors.contains) { continue }
            }
            out.append(c)
        }
        return out
    }

    /// The values of a true/false filter (`true`, `false`, `1`, `0`, any case), as dockerd
    /// reads them; another value is a bad request.
    static func booleans(_ filters: [String: [String]], _ key: String) throws -> [Bool] {
        try (filters[key] ?? []).map { v in
            switch v.lowercased() {
            case "true", "1": return true
            case "false", "0": return false
            default: throw EngineError.badRequest("invalid filter '\(key)=\(v)'")
            }
        }
    }

    /// The volumes `GET /volumes?filters=` lists: `name` (exact or a regular expression),
    /// `dangling` (used by no container), `driver` (`local`), `label` (strata's volumes have
    /// none, so it matches nothing).
    func filteredVolumes(_ filters: [String: [String]]) async throws -> [VolumeInfo] {
        for key in filters.keys where !["dangling", "driver", "label", "name"].contains(key) {
            throw EngineError.badRequest("invalid filter '\(key)'")
        }
        let dangling = try Self.booleans(filters, "dangling")
        return try await store.volumes().filter { v in
            if let n = filters["name"], !n.contains(where: { Self.match($0, v.name) }) { return false }
            if !dangling.isEmpty, !dangling.contains(v.containers.isEmpty) { return false }
            if let d = filters["driver"], !d.contains(where: { Self.match($0, "local") }) { return false }
            return filters["label"] == nil
        }
    }

    /// dockerd's match of a filter value: equal, or an unanchored regular expression that
    /// matches (a value that is not a valid expression only matches exactly).
    static func match(_ pattern: String, _ value: String) -> Bool {
        if pattern == value { return true }
        guard let re = try? Regex(pattern) else { return false }
        return value.contains(re)
    }
}

extension Array {
    /// `map` with an async transform, in order.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        out.reserveCapacity(count)
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
