import Foundation
import OCI
import Strata

/// `docker image prune`, `docker container prune`, `docker builder prune`, and the parts of
/// `docker system prune`.
extension EngineRouter {
    /// `POST /containers/prune?filters=`: every container that is not running
    /// (``Store/pruneContainers(_:)``); filters `until`, `label`, `label!`. Answers
    /// `{"ContainersDeleted":[…],"SpaceReclaimed":N}`.
    func pruneContainers(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let options = try Self.prune(req) { try ContainerPruneOptions(filters: $0) }
        let report = try await store.pruneContainers(options)
        try await res.sendJSON(["ContainersDeleted": report.removed.isEmpty ? NSNull() : report.removed as Any, "SpaceReclaimed": report.reclaimedBytes])
    }

    /// `POST /volumes/prune?filters=`: unused anonymous volumes; named ones too with
    /// `all=true` (`docker volume prune -a`), as dockerd from API 1.42 (before it, every
    /// unused volume). Answers `{"VolumesDeleted":[…],"SpaceReclaimed":N}`.
    func pruneVolumes(_ req: EngineRequest, _ res: EngineResponse) async throws {
        var options = try Self.prune(req) { try VolumePruneOptions(filters: $0) }
        if let v = req.apiVersion.flatMap(APIVersion.init), v < APIVersion(major: 1, minor: 42) { options.all = true }
        let report = try await store.pruneVolumes(options)
        try await res.sendJSON(["VolumesDeleted": report.removed.isEmpty ? NSNull() : report.removed as Any, "SpaceReclaimed": report.reclaimedBytes])
    }

    /// `POST /networks/prune`: strata has no networks, so there is none to remove (what
    /// `docker system prune` asks along with the rest).
    func pruneNetworks(_ req: EngineRequest, _ res: EngineResponse) async throws {
        try await res.sendJSON(["NetworksDeleted": NSNull()])
    }

    /// `POST /images/prune?filters=`: `dangling=false` is `-a`; `until`, `label` as
    /// `strata image prune`. Answers `{"ImagesDeleted":[…],"SpaceReclaimed":N}`.
    func pruneImages(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let options = try Self.prune(req) { try PruneOptions(all: false, filters: $0) }
        let report = try await store.pruneImages(options)
        let deleted: [[String: Any]] = report.events.map { e in
            switch e {
            case .untagged(let t): return ["Untagged": t]
            case .deleted(let d): return ["Deleted": d.string]
            }
        }
        try await res.sendJSON(["ImagesDeleted": deleted.isEmpty ? NSNull() : deleted as Any, "SpaceReclaimed": report.reclaimedBytes])
    }

    /// Prune options made from the request's filters; what the library refuses is a 400.
    private static func prune<Options>(_ req: EngineRequest, _ make: ([String: [String]]) throws -> Options) throws -> Options {
        let filters = try req.filters()
        do {
            return try make(filters)
        } catch let e as StrataError {
            throw EngineError.badRequest(e.message)
        }
    }

    /// `POST /build/prune?all=&keep-storage=&filters=until=`: as `strata builder prune`.
    /// Answers `{"CachesDeleted":[…],"SpaceReclaimed":N}`.
    func pruneBuildCache(_ req: EngineRequest, _ res: EngineResponse) async throws {
        var options = BuildCachePruneOptions(all: try req.bool("all"))
        if let k = req.string("keep-storage"), !k.isEmpty {
            guard let n = Int64(k), n >= 0 else { throw EngineError.badRequest("invalid keep-storage \"\(k)\": expected a number of bytes") }
            if n > 0 { options.keepStorage = n }
        }
        for (k, values) in try req.filters() {
            guard k == "until" else { throw EngineError.badRequest("invalid filter \"\(k)\": strata serves until") }
            for v in values {
                do {
                    let d = try Durations.parse(v)
                    options.keepDuration = min(options.keepDuration ?? d, d)
                } catch let e as StrataError {
                    throw EngineError.badRequest(e.message)
                }
            }
        }
        let report = try await store.pruneBuildCache(options)
        try await res.sendJSON(["CachesDeleted": report.removed, "SpaceReclaimed": report.reclaimedBytes] as [String: Any])
    }
}
