import Foundation
import OCI
import Strata

/// The containers the store holds (`strata create`, `strata run`), as `docker ps`,
/// `docker container inspect` and `docker rm` see them; and volumes. Creating and running
/// them is in `EngineRouter+Run`.
extension EngineRouter {
    /// `GET /containers/json?all=&filters=`: running containers, or all with `all`, that
    /// the filters select (``ContainerFilters``; a filter it refuses is a 400).
    func listContainers(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let byKey = try req.filters()
        let all = try req.bool("all")
        let filters = try ContainerFilters(byKey)
        try await store.recoverInterruptedRuns()
        let list = try await store.containers(all: all, filters: filters)
        try await res.sendJSON(list.map(containerSummary))
    }

    /// A container as `GET /containers/json` (and `/system/df`) lists it.
    func containerSummary(_ c: ContainerInfo) -> [String: Any] {
        [
            "Id": c.id, "Names": ["/" + (c.name ?? String(c.id.prefix(12)))], "Image": c.image, "ImageID": c.imageID.string,
            "Command": c.command.joined(separator: " "), "Created": Int64(c.created.timeIntervalSince1970),
            "State": c.dockerState, "Status": c.status(),
            "Ports": Self.summaryPorts(c), "Labels": c.labels ?? [:], "Mounts": mounts(c),
            "HostConfig": ["NetworkMode": c.network.name], "NetworkSettings": ["Networks": Self.endpoints(c)],
        ]
    }

    /// A running container's ports as `docker ps` shows them: each published one with its
    /// host address and port, each other exposed one alone (`80/tcp`).
    static func summaryPorts(_ c: ContainerInfo) -> [[String: Any]] {
        guard c.state == "running", c.network == .none else { return [] }
        let published = c.publishedPorts ?? []
        var out: [[String: Any]] = published.map { p in
            ["IP": p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP, "PrivatePort": p.containerPort, "PublicPort": p.hostPort, "Type": p.proto]
        }
        for key in c.exposedPorts ?? [] where !published.contains(where: { $0.key == key }) {
            let parts = key.split(separator: "/", maxSplits: 1)
            guard let port = Int(parts[0]) else { continue }
            out.append(["PrivatePort": port, "Type": parts.count == 2 ? String(parts[1]) : "tcp"])
        }
        return out
    }

    /// `DELETE /containers/{id}?force=&v=`: 204.
    func removeContainer(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let force = try req.bool("force")
        let c = try await store.container(ref)
        let id = c.id
        // As dockerd: one its restart policy is about to start again is not removed without
        // force (a run ending now, recorded but not yet handed to the policy, counts too).
        let runEnding = await runner.isRunning(id) && c.state != "running"
        let ending = runEnding && c.restartPolicy?.shouldRestart(exitCode: c.exitCode ?? 0, restartCount: c.restartCount ?? 0,
                                                                manuallyStopped: c.manuallyStopped == true) == true
        let restarting = await runner.isRestarting(id)
        if !force, ending || restarting {
            throw EngineError(status: .conflict, message: "cannot remove container \"/\(c.name ?? String(id.prefix(12)))\": container is restarting: stop the container before removing or force remove")
        }
        if force { await runner.cancelRestart(id) }
        if force { await runner.kill(id) }
        _ = try await store.removeContainer(ref, force: force, removeVolumes: try req.bool("v"))
        await runner.forget(id)
        try await res.send(.noContent)
    }

    func mounts(_ c: ContainerInfo) -> [[String: Any]] {
        (c.volumes ?? []).map { v in
            v.isBind ? ["Type": "bind", "Source": v.source, "Destination": v.destination, "Mode": v.mode ?? "", "RW": !v.isReadOnly,
                        "Propagation": v.propagation ?? "rprivate"]
                : ["Type": "volume", "Name": v.source, "Source": store.root.appendingPathComponent("volumes/\(v.source)/data").path,
                   "Destination": v.destination, "Driver": "local", "Mode": v.mode ?? "", "RW": !v.isReadOnly, "Propagation": ""]
        }
    }

    /// `GET /volumes?filters=` (``VolumeFilters``; a filter it refuses is a 400).
    func listVolumes(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let volumes = try await store.volumes(filters: try VolumeFilters(try req.filters()))
        try await res.sendJSON(["Volumes": volumes.map(volumeJSON), "Warnings": [String]()] as [String: Any])
    }

    /// `POST /volumes/create` with `{"Name": …, "Labels": …}` (driver `local` only): 201 and the volume.
    func createVolume(_ req: EngineRequest, _ res: EngineResponse) async throws {
        var name: String?
        var labels: [String: String] = [:]
        if case .data(let body) = req.body, !body.isEmpty {
            guard let o = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { throw EngineError.badRequest("expected a JSON object") }
            if let d = o["Driver"] as? String, !d.isEmpty, d != "local" {
                throw EngineError(status: .notImplemented, message: "strata serves the local volume driver only")
            }
            if let opts = o["DriverOpts"] as? [String: Any], !opts.isEmpty {
                throw EngineError(status: .notImplemented, message: "strata does not support volume driver options")
            }
            name = (o["Name"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            labels = try Self.labels(o["Labels"])
        }
        if let name { try Self.checkName(name) }
        try await res.sendJSON(volumeJSON(try await store.createVolume(name, labels: labels)), status: .created)
    }

    /// `GET /volumes/{name}`.
    func inspectVolume(_ name: String, _ res: EngineResponse) async throws {
        try Self.checkName(name)
        try await res.sendJSON(volumeJSON(try await store.volume(name)))
    }

    /// `DELETE /volumes/{name}`: 204; 409 when a container uses it.
    func removeVolume(_ name: String, _ res: EngineResponse) async throws {
        try Self.checkName(name)
        try await store.removeVolumes([name])
        try await res.send(.noContent)
    }

    func volumeJSON(_ v: VolumeInfo) -> [String: Any] {
        ["Name": v.name, "Driver": "local", "Mountpoint": v.mountpoint, "CreatedAt": RFC3339.format(v.created),
         "Labels": v.labels, "Scope": "local", "Options": [String: String]()]
    }
}
