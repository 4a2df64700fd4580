import Foundation
import OCI

/// A container's health check (`docker create --health-cmd`, a Dockerfile's HEALTHCHECK),
/// in Docker's terms and JSON field names: `Test` is `["CMD", program, args…]`,
/// `["CMD-SHELL", command]` (run by `/bin/sh -c`), `["NONE"]` (no check, over the image's)
/// or empty (the image's); durations are nanoseconds, 0 for the default.
public struct Healthcheck: Sendable, Codable, Hashable {
    public var Test: [String]?
    public var Interval: Int64?
    public var Timeout: Int64?
    public var StartPeriod: Int64?
    public var StartInterval: Int64?
    public var Retries: Int?

    /// dockerd's defaults: 30 s between probes and before the first, 30 s for one probe, no
    /// start period, 5 s between probes within it, 3 failures in a row for unhealthy.
    public static let defaultInterval: Int64 = 30_000_000_000
    public static let defaultTimeout: Int64 = 30_000_000_000
    public static let defaultStartInterval: Int64 = 5_000_000_000
    public static let defaultRetries = 3
    /// dockerd refuses a duration below this (but 0, the default).
    public static let minimumDuration: Int64 = 1_000_000

    public init(Test: [String]? = nil, Interval: Int64? = nil, Timeout: Int64? = nil, StartPeriod: Int64? = nil,
                StartInterval: Int64? = nil, Retries: Int? = nil) {
        self.Test = Test
        self.Interval = Interval
        self.Timeout = Timeout
        self.StartPeriod = StartPeriod
        self.StartInterval = StartInterval
        self.Retries = Retries
    }

    /// The health check in an image config's `Healthcheck` (nil when it has none or it is
    /// not an object).
    public init?(_ value: JSONValue?) {
        guard case .object(let o)? = value else { return nil }
        func duration(_ key: String) -> Int64? {
            if case .number(let n)? = o[key], n.isFinite, abs(n) < 9e18 { return Int64(n) }
            return nil
        }
        if case .array(let words)? = o["Test"] {
            Test = words.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        Interval = duration("Interval")
        Timeout = duration("Timeout")
        StartPeriod = duration("StartPeriod")
        StartInterval = duration("StartInterval")
        if case .number(let n)? = o["Retries"], n.isFinite, abs(n) < 1e9 { Retries = Int(n) }
    }

    /// Refuses what dockerd refuses at create, in its words: a test that is not CMD,
    /// CMD-SHELL or NONE, a negative or sub-millisecond duration, negative retries.
    public func validate() throws {
        if let test = Test, let kind = test.first {
            guard ["CMD", "CMD-SHELL", "NONE"].contains(kind) else {
                throw StrataError(.invalidArgument, "unknown healthcheck type \"\(kind)\": the test must start with CMD, CMD-SHELL or NONE")
            }
            if kind != "NONE", test.count < 2 {
                throw StrataError(.invalidArgument, "the healthcheck test \(kind) needs a command")
            }
        }
        for (name, value) in [("Interval", Interval), ("Timeout", Timeout), ("StartPeriod", StartPeriod), ("StartInterval", StartInterval)] {
            guard let v = value, v != 0 else { continue }
            if v < 0 { throw StrataError(.invalidArgument, "\(name) in Healthcheck cannot be negative") }
            if v < Self.minimumDuration { throw StrataError(.invalidArgument, "\(name) in Healthcheck cannot be less than 1ms") }
        }
        if let r = Retries, r < 0 { throw StrataError(.invalidArgument, "Retries in Healthcheck cannot be negative") }
    }

    /// dockerd's merge of a container's check with its image's: a test or setting the
    /// container leaves unset (empty, 0) comes from the image.
    public static func merged(container: Healthcheck?, image: Healthcheck?) -> Healthcheck? {
        guard var c = container else { return image }
        guard let i = image else { return c }
        if c.Test?.isEmpty ?? true { c.Test = i.Test }
        if (c.Interval ?? 0) == 0 { c.Interval = i.Interval }
        if (c.Timeout ?? 0) == 0 { c.Timeout = i.Timeout }
        if (c.StartPeriod ?? 0) == 0 { c.StartPeriod = i.StartPeriod }
        if (c.StartInterval ?? 0) == 0 { c.StartInterval = i.StartInterval }
        if (c.Retries ?? 0) == 0 { c.Retries = i.Retries }
        return c
    }

    /// The command a probe runs in the container; nil for no check (none, NONE, empty).
    public var probeCommand: [String]? {
        guard let test = Test, let kind = test.first, test.count > 1 else { return nil }
        switch kind {
        case "CMD": return Array(test.dropFirst())
        case "CMD-SHELL": return ["/bin/sh", "-c"] + test.dropFirst()
        default: return nil
        }
    }

    var interval: Duration { .nanoseconds(Interval.flatMap { $0 > 0 ? $0 : nil } ?? Self.defaultInterval) }
    var timeoutNanoseconds: Int64 { Timeout.flatMap { $0 > 0 ? $0 : nil } ?? Self.defaultTimeout }
    var startPeriodNanoseconds: Int64 { max(0, StartPeriod ?? 0) }
    var startPeriod: Duration { .nanoseconds(startPeriodNanoseconds) }
    var startInterval: Duration { .nanoseconds(StartInterval.flatMap { $0 > 0 ? $0 : nil } ?? Self.defaultStartInterval) }
    var retries: Int { Retries.flatMap { $0 > 0 ? $0 : nil } ?? Self.defaultRetries }

    /// A duration as Go writes it (`1s`, `1.5s`, `500ms`, `1m30s`, `0`), as the docker CLI's
    /// `--health-interval` and the others take it: nanoseconds.
    public static func parseDuration(_ text: String) throws -> Int64 {
        guard let ns = GoDuration.nanoseconds(text) else {
            throw StrataError(.invalidArgument, "invalid duration \"\(text)\": use a number and a unit, as 30s, 1m30s or 500ms")
        }
        return ns
    }
}

/// A container's health as its checks found it (dockerd's `State.Health`): `starting` from a
/// run's start until a probe passes (or fails `Retries` times in a row once the start
/// period is over), then `healthy` or `unhealthy`; `unhealthy` once the run ends or is
/// paused (no monitor), as dockerd reports it. The last five probes are kept.
public struct HealthState: Sendable, Codable, Hashable {
    public var Status: String
    public var FailingStreak: Int
    public var Log: [HealthProbe]

    public init(Status: String, FailingStreak: Int = 0, Log: [HealthProbe] = []) {
        self.Status = Status
        self.FailingStreak = FailingStreak
        self.Log = Log
    }

    /// How many probes are kept.
    public static let keptProbes = 5
    /// Bytes of a probe's output kept (then `...`).
    public static let keptOutput = 4096

    /// What `docker ps` adds to `Up …`: `health: starting`, `healthy` or `unhealthy`.
    public var summary: String { Status == "starting" ? "health: starting" : Status }
}

/// One probe's result.
public struct HealthProbe: Sendable, Codable, Hashable {
    public var Start: Date
    public var End: Date
    public var ExitCode: Int
    public var Output: String

    public init(Start: Date, End: Date, ExitCode: Int, Output: String) {
        self.Start = Start
        self.End = End
        self.ExitCode = ExitCode
        self.Output = Output
    }
}
