import Foundation

/// Durations in words as Docker writes them (go-units' `HumanDuration`): `Less than a
/// second`, `1 second`, `About a minute`, `3 hours`, `2 weeks`. The docker CLI and dockerd
/// use it for CREATED columns (`2 weeks ago`) and container statuses (`Up 5 seconds`).
///
/// ```swift
/// HumanDuration.text(90)       // "About a minute"
/// HumanDuration.text(7200)     // "2 hours"
/// ```
public enum HumanDuration {
    /// The units of the texts.
    public enum Unit: Int, Sendable { case lessThanASecond, second, seconds, aboutAMinute, minutes, aboutAnHour, hours, days, weeks, months, years }

    /// The words for `seconds`.
    public static func text(_ seconds: Double) -> String { text(parts(seconds)) }

    /// The words for `seconds` as a unit and a count: the text is a function of these two alone
    /// (a listing of thousands of rows makes each distinct text once).
    public static func parts(_ seconds: Double) -> (unit: Unit, count: Int) {
        let s = Int(seconds)
        if s < 1 { return (.lessThanASecond, 0) }
        if s == 1 { return (.second, 1) }
        if s < 60 { return (.seconds, s) }
        let m = Int(seconds / 60)
        if m == 1 { return (.aboutAMinute, 1) }
        if m < 60 { return (.minutes, m) }
        let h = Int(seconds / 3600 + 0.5)
        if h == 1 { return (.aboutAnHour, 1) }
        if h < 48 { return (.hours, h) }
        if h < 24 * 7 * 2 { return (.days, h / 24) }
        if h < 24 * 30 * 2 { return (.weeks, h / 24 / 7) }
        if h < 24 * 365 * 2 { return (.months, h / 24 / 30) }
        return (.years, Int(seconds / 3600) / 24 / 365)
    }

    /// The words for a unit and a count from ``parts(_:)``.
    public static func text(_ parts: (unit: Unit, count: Int)) -> String {
        let n = parts.count
        switch parts.unit {
        case .lessThanASecond: return "Less than a second"
        case .second: return "1 second"
        case .seconds: return "\(n) seconds"
        case .aboutAMinute: return "About a minute"
        case .minutes: return "\(n) minutes"
        case .aboutAnHour: return "About an hour"
        case .hours: return "\(n) hours"
        case .days: return "\(n) days"
        case .weeks: return "\(n) weeks"
        case .months: return "\(n) months"
        case .years: return "\(n) years"
        }
    }
}

extension ContainerInfo {
    /// The container's status as dockerd words it (`docker ps`' STATUS): `Up 5 seconds`,
    /// `Up 2 minutes (healthy)`, `Exited (3) 2 minutes ago`, `Created`.
    public func status(now: Date = Date()) -> String {
        switch state {
        case "running":
            let up = "Up " + HumanDuration.text(now.timeIntervalSince(startedAt ?? created))
            if paused == true { return up + " (Paused)" }
            return up + (health.map { " (\($0.summary))" } ?? "")
        case "exited":
            guard let finishedAt else { return "Exited (\(exitCode ?? 0))" }
            return "Exited (\(exitCode ?? 0)) " + HumanDuration.text(now.timeIntervalSince(finishedAt)) + " ago"
        case "created":
            return "Created"
        default:
            return state.prefix(1).uppercased() + state.dropFirst()
        }
    }
}
