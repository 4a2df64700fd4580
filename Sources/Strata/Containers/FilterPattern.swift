import Foundation

/// How dockerd reads the values of a container or volume filter (moby's `filters.Args`):
/// the one place ``ContainerFilters`` and ``VolumeFilters`` take their matching and their
/// true/false values from.
enum FilterPattern {
    /// dockerd's match of a filter value: equal, or an unanchored regular expression that
    /// matches (a value that is not a valid expression only matches exactly). `web` matches
    /// `web-1`; `^web$` only `web`.
    static func matches(_ pattern: String, _ value: String) -> Bool {
        if pattern == value { return true }
        guard let re = try? Regex(pattern) else { return false }
        return value.contains(re)
    }

    /// dockerd's `label=` rule (moby's `MatchKVList`): every filter matches, `KEY` when the
    /// label is there, `KEY=VALUE` when it has that value. Images, containers alike.
    static func matchesLabels(_ filters: [String], _ labels: [String: String]) -> Bool {
        filters.allSatisfy { f in
            guard let eq = f.firstIndex(of: "=") else { return labels[f] != nil }
            return labels[String(f[..<eq])] == String(f[f.index(after: eq)...])
        }
    }

    /// The values of a true/false filter (`true`, `false`, `1`, `0`, any case), as dockerd
    /// reads them; another value is an `.invalidArgument` error naming the key and value.
    static func booleans(_ values: [String], key: String) throws -> [Bool] {
        try values.map { v in
            switch v.lowercased() {
            case "true", "1": return true
            case "false", "0": return false
            default: throw invalid("\(key)=\(v)")
            }
        }
    }

    /// The error dockerd answers a filter it cannot take with: `invalid filter 'KEY'` or
    /// `invalid filter 'KEY=VALUE'`.
    static func invalid(_ filter: String) -> StrataError {
        StrataError(.invalidArgument, "invalid filter '\(filter)'")
    }
}
