import Foundation

/// `docker update`: a container's limits changed after create, for its live run at once.
extension Store {
    /// Changes a container's limits (`docker update`). Each limit `update` sets replaces the
    /// one recorded and the rest stay, as dockerd reads an update: 0 (or nil, or an empty
    /// cpuset) leaves a limit as it is; a pids limit of 0 or less removes it. A memory limit
    /// given alone keeps the swap limit, and must stay below it (dockerd's message); on a
    /// container that had none, swap stays unlimited. dockerd's checks apply to the result.
    ///
    /// A running container's cgroups change at once (`runc update`): should the kernel refuse
    /// (a memory limit below what the run uses), nothing is recorded. A stopped container gets
    /// the limits at its next start.
    ///
    /// ```swift
    /// try await store.updateResources("web", ContainerResources(memory: 256 << 20, memorySwap: 512 << 20))
    /// ```
    @discardableResult
    public func updateResources(_ ref: String, _ update: ContainerResources) async throws -> ContainerInfo {
        let c = try await container(ref)
        let name = c.name ?? String(c.id.prefix(12))
        if UserNamespace.isNested {
            throw StrataError(.permissionDenied, "resource limits need cgroups, which a rootless store cannot set")
        }
        let merged = try Self.merging(c.resources ?? ContainerResources(), update).validated()
        if try isRunning(id: c.id, state: c.state) {
            let runtime = try OCIRuntime.find()
            if try await waitForRuntime(c.id, runtime: runtime) {
                var spec = merged.runtimeSpec()
                // A limit removed is the runtime's "max" (-1); left out, runc would keep it.
                if let p = update.pidsLimit, p <= 0 { spec["pids"] = ["limit": -1] }
                let file = containerDirs(c.id).base.appendingPathComponent("update-\(randomHex().prefix(8)).json")
                try JSONSerialization.data(withJSONObject: spec).write(to: file)
                defer { try? FileManager.default.removeItem(at: file) }
                let r = try await runtimeCommand(runtime, ["update", "--resources", file.path, c.id])
                guard r.status == 0 else {
                    throw StrataError(.io, "cannot update the limits of container \(name): \(r.error.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
        }
        try await updateContainer(c.id) { $0.resources = merged.isEmpty ? nil : merged }
        try? await recordContainerEvent(c.id, action: "update")
        return try await container(c.id)
    }

    /// `old` with what `update` sets over it (see ``updateResources(_:_:)``).
    static func merging(_ old: ContainerResources, _ update: ContainerResources) throws -> ContainerResources {
        func given(_ v: Int64?) -> Int64? { v.flatMap { $0 == 0 ? nil : $0 } }
        var r = old
        if let m = given(update.memory) {
            if given(update.memorySwap) == nil, let s = old.memorySwap, s > 0, m > s {
                throw StrataError(.invalidArgument, "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
            }
            r.memory = m
            if old.memory == nil, given(update.memorySwap) == nil { r.memorySwap = -1 }
        }
        if let s = given(update.memorySwap) { r.memorySwap = s }
        if let v = given(update.memoryReservation) { r.memoryReservation = v }
        if let v = given(update.nanoCPUs) { r.nanoCPUs = v }
        if let v = given(update.cpuShares) { r.cpuShares = v }
        if let v = given(update.cpuPeriod) { r.cpuPeriod = v }
        if let v = given(update.cpuQuota) { r.cpuQuota = v }
        if let v = update.cpusetCPUs, !v.isEmpty { r.cpusetCPUs = v }
        if let p = update.pidsLimit { r.pidsLimit = p > 0 ? p : nil }
        return r
    }
}
