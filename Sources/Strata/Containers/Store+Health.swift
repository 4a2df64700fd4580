import Foundation
import OCI
import Synchronization

/// Health checks (``Healthcheck``): while a run lives, whoever started it (the server, or a
/// foreground `strata run`/`start`) runs its check as dockerd's monitor does. The first probe
/// comes one interval after the start, the next one interval after each probe ends; a probe is
/// an exec of the check's command in the container, its output (the first 4 KiB) and exit
/// code recorded with its times in the container's ``HealthState``; a probe that outlives its
/// timeout is stopped and fails with exit code -1. A pass makes the container `healthy`;
/// `Retries` failures in a row make it `unhealthy`, but failures within the start period
/// do not count while it is still `starting`. Each change of status is a `health_status: …`
/// event. Probes skip while the container is paused.
extension Store {
    /// The check a run of `c` gets: its own, with the image's filling the rest; nil for none.
    func healthcheck(for c: ContainerInfo) -> Healthcheck? {
        let config = (try? blobs.readSmall(c.imageID)).flatMap { try? ImageConfig.decode($0, digest: c.imageID) }?.config
        return c.effectiveHealthcheck(image: config)
    }

    /// Starts the monitor of a run that was just marked running with `check`; stop it with
    /// ``stopHealthMonitor(_:)`` before the run's exit is recorded.
    func startHealthMonitor(_ id: String, check: Healthcheck?) -> Task<Void, Never>? {
        guard let check, let command = check.probeCommand else { return nil }
        let started = ContinuousClock.now
        let startedAt = Date()
        return Task {
            var status = "starting"
            while !Task.isCancelled {
                // As dockerd (API 1.43): one interval between probes; within the start period,
                // a StartInterval when one was given, and never past the period's end.
                let elapsed = ContinuousClock.now - started
                var wait = check.interval
                if elapsed < check.startPeriod {
                    let remaining = check.startPeriod - elapsed
                    if remaining < wait { wait = remaining } else if status == "starting", (check.StartInterval ?? 0) > 0 { wait = check.startInterval }
                }
                do { try await Task.sleep(for: wait) } catch { return }
                guard let c = try? await container(id), c.state == "running" else { return }
                if c.paused == true { continue }
                let probe = await runProbe(id, command: command, timeout: check.timeoutNanoseconds)
                if Task.isCancelled { return }
                let inStartPeriod = probe.Start.timeIntervalSince(startedAt) * 1e9 < Double(check.startPeriodNanoseconds)
                let retries = check.retries
                let next = Mutex<String?>(nil)
                try? await updateContainer(id) { info in
                    // Only for this run: a later run keeps its own state.
                    guard info.state == "running", var h = info.health else { return }
                    h.Log = Array((h.Log + [probe]).suffix(HealthState.keptProbes))
                    if probe.ExitCode == 0 {
                        h.FailingStreak = 0
                        h.Status = "healthy"
                    } else if !(h.Status == "starting" && inStartPeriod) {
                        h.FailingStreak += 1
                        if h.FailingStreak >= retries { h.Status = "unhealthy" }
                    }
                    info.health = h
                    next.withLock { $0 = h.Status }
                }
                if let now = next.withLock({ $0 }), now != status {
                    status = now
                    try? await recordContainerEvent(id, action: "health_status: \(now)")
                }
            }
        }
    }

    /// Stops a run's monitor and waits for a probe in flight to end.
    func stopHealthMonitor(_ monitor: Task<Void, Never>?) async {
        monitor?.cancel()
        await monitor?.value
    }

    /// One probe: `command` exec'd in the container, stopped after `timeout` nanoseconds.
    private func runProbe(_ id: String, command: [String], timeout: Int64) async -> HealthProbe {
        let start = Date()
        let output = Mutex((data: Data(), truncated: false))
        let collect: @Sendable (ContainerStream, Data) -> Void = { _, piece in
            output.withLock { o in
                let room = HealthState.keptOutput - o.data.count
                if piece.count > room { o.truncated = true }
                if room > 0 { o.data.append(piece.prefix(room)) }
            }
        }
        func text() -> String {
            output.withLock { o in String(decoding: o.data, as: UTF8.self) + (o.truncated ? "..." : "") }
        }
        enum Outcome: Sendable { case exited(Int32), timedOut, failed(String) }
        let outcome: Outcome = await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    return .exited(try await self.exec(id, ExecOptions(command: command), output: collect))
                } catch {
                    return Task.isCancelled ? nil : .failed((error as? StrataError)?.message ?? "\(error)")
                }
            }
            group.addTask {
                do { try await Task.sleep(for: .nanoseconds(timeout)) } catch { return nil }
                return .timedOut
            }
            var first: Outcome?
            while first == nil, let next = await group.next() { first = next }
            group.cancelAll()
            return first ?? .failed("the health check was stopped")
        }
        switch outcome {
        case .exited(let code):
            return HealthProbe(Start: start, End: Date(), ExitCode: Int(code), Output: text())
        case .timedOut:
            let out = text()
            let message = "Health check exceeded timeout (\(GoDuration.format(nanoseconds: timeout)))" + (out.isEmpty ? "" : ": " + out)
            return HealthProbe(Start: start, End: Date(), ExitCode: -1, Output: message)
        case .failed(let message):
            return HealthProbe(Start: start, End: Date(), ExitCode: -1, Output: message)
        }
    }
}
