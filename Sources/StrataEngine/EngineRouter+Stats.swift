import Foundation
import Strata

/// `docker stats`: samples of ``Store/stats(_:)`` in the Engine API's shape; the docker CLI
/// computes the percentages from a sample and the one before it (`precpu_stats`).
extension EngineRouter {
    /// `GET /containers/{id}/stats?stream=&one-shot=`: with `stream` (the default) a sample a
    /// second until the container stops or the client goes; without it one sample, taken half
    /// a second after a first one (`precpu_stats`) unless `one-shot`. A container that does
    /// not run gives one sample of zeros, as dockerd.
    func containerStats(_ ref: String, _ req: EngineRequest, _ res: EngineResponse) async throws {
        try Self.checkName(ref)
        let c = try await store.container(ref)
        let stream = (req.string("stream") ?? "").isEmpty ? true : try req.bool("stream")
        let oneShot = try req.bool("one-shot")
        let sample = { [store] () async -> ContainerStats? in try? await store.stats(c.id) }
        if !stream {
            var before: ContainerStats?
            if !oneShot, let first = await sample() {
                before = first
                try await Task.sleep(for: .milliseconds(500))
            }
            try await res.sendJSON(Self.statsJSON(c, await sample(), before: before))
            return
        }
        try await res.startStream(contentType: "application/json")
        var before: ContainerStats?
        repeat {
            let now = await sample()
            try await res.message(Self.statsJSON(c, now, before: before))
            guard let now else { break }
            before = now
            try await Task.sleep(for: .seconds(1))
        } while true
        try await res.finish()
    }

    /// One sample as dockerd sends it (zeros for none).
    static func statsJSON(_ c: ContainerInfo, _ s: ContainerStats?, before: ContainerStats?) -> [String: Any] {
        func cpu(_ s: ContainerStats?) -> [String: Any] {
            [
                "cpu_usage": ["total_usage": s?.cpuTotal ?? 0, "percpu_usage": s?.cpuPerCPU ?? [],
                              "usage_in_kernelmode": s?.cpuKernel ?? 0, "usage_in_usermode": s?.cpuUser ?? 0] as [String: Any],
                "system_cpu_usage": s?.systemCPU ?? 0, "online_cpus": s?.onlineCPUs ?? 0,
                "throttling_data": ["periods": 0, "throttled_periods": 0, "throttled_time": 0],
            ]
        }
        let blkio: Any = s.map { s in
            [["major": 0, "minor": 0, "op": "read", "value": s.blockRead], ["major": 0, "minor": 0, "op": "write", "value": s.blockWrite]]
        } ?? NSNull()
        return [
            "read": s.map { nanoFixed($0.read) } ?? nanoFixed(nil), "preread": before.map { nanoFixed($0.read) } ?? nanoFixed(nil),
            "id": c.id, "name": "/" + (c.name ?? String(c.id.prefix(12))), "num_procs": 0,
            "pids_stats": s.map { ["current": $0.pids] } ?? [:] as [String: Any],
            "blkio_stats": ["io_service_bytes_recursive": blkio],
            "storage_stats": [String: Any](),
            "cpu_stats": cpu(s), "precpu_stats": cpu(before),
            "memory_stats": s.map { s in
                ["usage": s.memoryUsage, "max_usage": s.memoryMaxUsage, "limit": s.memoryLimit, "stats": s.memoryCounters] as [String: Any]
            } ?? [:] as [String: Any],
        ]
    }
}
