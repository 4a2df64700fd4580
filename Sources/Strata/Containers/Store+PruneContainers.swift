import Foundation

/// Options for ``Store/pruneContainers(_:)``, as `docker container prune --filter`.
public struct ContainerPruneOptions: Sendable {
    /// Only containers created more than this long ago (`until=24h`).
    public var until: TimeInterval?
    /// `label=…` filters (`KEY` or `KEY=VALUE`): only containers whose labels match every one.
    public var labels: [String] = []
    /// `label!=…` filters: not the containers whose labels match every one (moby's rule).
    public var notLabels: [String] = []

    /// Every container that is not running, or only those created more than `until` seconds ago.
    public init(until: TimeInterval? = nil) { self.until = until }

    /// Options from filters by name, as the CLI and the Engine API give them: `until` (a
    /// duration such as `24h`), `label` and `label!` (`KEY` or `KEY=VALUE`). Any other key is
    /// an invalid-argument error.
    public init(filters: [String: [String]]) throws {
        for (k, values) in filters.sorted(by: { $0.key < $1.key }) {
            for v in values {
                switch k {
                case "until":
                    let d = try Durations.parse(v)
                    until = max(until ?? d, d)
                case "label": labels.append(v)
                case "label!": notLabels.append(v)
                default: throw StrataError(.invalidArgument, "invalid filter \"\(k)\": use until, label or label!")
                }
            }
        }
    }
}

/// What ``Store/pruneContainers(_:)`` removed.
public struct ContainerPruneReport: Sendable, Codable {
    /// The full IDs of the containers removed.
    public var removed: [String] = []
    /// The bytes their writable layers held.
    public var reclaimedBytes: Int64 = 0
}

extension Store {
    /// Removes every container that is not running (`docker container prune`): created ones
    /// and exited ones, with their writable layers. A row a killed process left saying
    /// running is recorded as exited first (``recoverInterruptedRuns()``) and goes too; a live
    /// run, in any process, is left alone. Their images then go by the usual rules (gc).
    ///
    /// ```swift
    /// let report = try await store.pruneContainers(ContainerPruneOptions(until: 3600))
    /// print(report.removed.count, report.reclaimedBytes)
    /// ```
    public func pruneContainers(_ options: ContainerPruneOptions = ContainerPruneOptions()) async throws -> ContainerPruneReport {
        try await recoverInterruptedRuns()
        var report = ContainerPruneReport()
        let cutoff = options.until.map { Date().addingTimeInterval(-$0) }
        for c in try await containers().reversed() {
            if let cutoff, c.created >= cutoff { continue }
            if !FilterPattern.matchesLabels(options.labels, c.labels ?? [:]) { continue }
            if !options.notLabels.isEmpty, FilterPattern.matchesLabels(options.notLabels, c.labels ?? [:]) { continue }
            guard c.state != "running", !(try isRunning(id: c.id, state: c.state)) else { continue }
            let size = (try? await containerSize(c.id).writable) ?? 0
            do {
                _ = try await removeContainer(c.id)
            } catch let e as StrataError where e.code == .containerNotFound || e.code == .conflict {
                continue  // removed or started by another process meanwhile
            }
            report.removed.append(c.id)
            report.reclaimedBytes += size
        }
        return report
    }
}
