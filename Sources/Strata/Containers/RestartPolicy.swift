/// When a container is started again after its process ends (`docker run --restart`), with
/// dockerd's rules. The store keeps the policy; whoever runs the container applies it:
/// `strata serve` restarts the containers it runs, and starts those the policy names when it
/// starts itself, as dockerd does when the daemon starts.
///
/// ```swift
/// let p = try RestartPolicy(parsing: "on-failure:3")
/// p.shouldRestart(exitCode: 1, restartCount: 2, manuallyStopped: false)   // true
/// ```
public struct RestartPolicy: Sendable, Codable, Hashable, CustomStringConvertible {
    public enum Name: String, Sendable, Codable, CaseIterable {
        case no
        case always
        case unlessStopped = "unless-stopped"
        case onFailure = "on-failure"
    }

    public var name: Name
    /// For `on-failure` only: the restarts allowed (0: no limit).
    public var maximumRetryCount: Int

    /// The delay before the first restart, doubled after each restart up to ``maxDelay``,
    /// and back to it once a run lasted ``resetAfter`` (dockerd's restart manager).
    public static let firstDelay: Duration = .milliseconds(100)
    public static let maxDelay: Duration = .seconds(60)
    public static let resetAfter: Duration = .seconds(10)

    /// A policy; `on-failure` alone takes a maximum, never negative (dockerd's checks).
    public init(_ name: Name, maximumRetryCount: Int = 0) throws {
        guard maximumRetryCount >= 0 else {
            throw StrataError(.invalidArgument, "invalid restart policy: maximum retry count cannot be negative")
        }
        guard maximumRetryCount == 0 || name == .onFailure else {
            throw StrataError(.invalidArgument, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
        }
        self.name = name
        self.maximumRetryCount = maximumRetryCount
    }

    /// Parses `--restart`'s form: `no`, `always`, `unless-stopped`, `on-failure[:MAX]`.
    public init(parsing s: String) throws {
        let parts = s.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let name = Name(rawValue: parts[0].isEmpty ? "no" : parts[0]) else {
            throw StrataError(.invalidArgument, "invalid restart policy: unknown policy '\(parts[0])'; use one of 'no', 'always', 'on-failure' or 'unless-stopped'")
        }
        var max = 0
        if parts.count == 2 {
            guard let n = Int(parts[1]) else { throw StrataError(.invalidArgument, "invalid restart policy format: maximum retry count must be an integer") }
            max = n
        }
        try self.init(name, maximumRetryCount: max)
    }

    /// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
    public var description: String {
        name == .onFailure && maximumRetryCount > 0 ? "on-failure:\(maximumRetryCount)" : name.rawValue
    }

    /// Whether a run that ended with `exitCode` is followed by another: never after a stop or
    /// kill (`manuallyStopped`); `always` and `unless-stopped` after any end; `on-failure`
    /// after a non-zero status while the restarts stay under the maximum.
    public func shouldRestart(exitCode: Int32, restartCount: Int, manuallyStopped: Bool) -> Bool {
        guard !manuallyStopped else { return false }
        switch name {
        case .no: return false
        case .always, .unlessStopped: return true
        case .onFailure: return exitCode != 0 && (maximumRetryCount == 0 || restartCount < maximumRetryCount)
        }
    }

    /// Whether the container is started when its runner starts (dockerd's daemon start): an
    /// `always` container that ran before, even one stopped by hand; the others as after a
    /// run's end.
    public func startsWithRunner(exitCode: Int32, restartCount: Int, manuallyStopped: Bool) -> Bool {
        name == .always || shouldRestart(exitCode: exitCode, restartCount: restartCount, manuallyStopped: manuallyStopped)
    }

    /// The delay before the next restart, after `previous` (nil: none yet) and a run that
    /// lasted `ran`.
    public static func delay(after previous: Duration?, ran: Duration) -> Duration {
        guard let previous, ran < resetAfter else { return firstDelay }
        return min(previous * 2, maxDelay)
    }
}
