import Foundation
import OCI
import Strata

/// `docker images`, `image inspect`, `history`, `tag`, `rmi`.
extension EngineRouter {
    /// `GET /images/json?all=&filters=`.
    func listImages(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let filters: ImageFilters
        do {
            filters = try ImageFilters(try req.filters())
        } catch let e as StrataError {
            throw EngineError.badRequest(e.message)
        }
        if let before = filters.before { try Self.checkName(before) }
        if let since = filters.since { try Self.checkName(since) }
        let images = try await store.images(all: try req.bool("all"), filters: filters)
        try await res.send(.ok, contentType: "application/json", body: ImageListJSON.encode(images) + Data("\n".utf8))
    }

    /// `GET /images/{name}/json`: Docker's inspect object.
    func inspectImage(_ name: String, _ res: EngineResponse) async throws {
        try Self.checkName(name)
        try await res.sendJSON(encoding: try await store.inspect(name).docker)
    }

    /// `GET /images/{name}/history`, newest step first.
    func history(_ name: String, _ res: EngineResponse) async throws {
        try Self.checkName(name)
        try await res.sendJSON(try await store.history(of: name).map { $0.dockerJSON() })
    }

    /// `POST /images/{name}/tag?repo=&tag=`: 201 with no body.
    func tag(_ name: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(name)
        guard let repo = req.string("repo"), !repo.isEmpty else { throw EngineError.badRequest("repo is required") }
        let tag = req.string("tag") ?? ""
        let target = tag.isEmpty ? repo : "\(repo):\(tag)"
        try Self.checkName(target)
        do { _ = try Reference(target) } catch let e as StrataError { throw EngineError.badRequest(e.message) }
        try await store.tag(name, as: target)
        try await res.send(.created)
    }

    /// `DELETE /images/{name}?force=`: `[{"Untagged": …}, {"Deleted": …}]`.
    func removeImage(_ name: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(name)
        if try req.bool("noprune") {
            throw EngineError.badRequest("strata does not support noprune: untagged parents nothing else needs are always removed")
        }
        let events = try await store.removeImage(name, force: try req.bool("force"))
        try await res.sendJSON(events.map { e -> [String: Any] in
            switch e {
            case .untagged(let t): return ["Untagged": t]
            case .deleted(let d): return ["Deleted": d.string]
            }
        })
    }
}
