import Strata

/// The `--filter KEY=VALUE` options of the listing commands (repeatable, as docker's):
/// grouped by key for the library's filter types (``ImageFilters``, ``ContainerFilters``,
/// ``VolumeFilters``, ``PruneOptions``), which check the keys and values.
enum FilterOption {
    /// The values of each key, in the order given: `["status=exited", "status=created"]`
    /// is `["status": ["exited", "created"]]`. An option without `=` is an error.
    static func byKey(_ options: [String]) throws -> [String: [String]] {
        var byKey: [String: [String]] = [:]
        for f in options {
            guard let eq = f.firstIndex(of: "=") else {
                throw StrataError(.invalidArgument, "invalid filter \"\(f)\": expected key=value")
            }
            byKey[String(f[..<eq]), default: []].append(String(f[f.index(after: eq)...]))
        }
        return byKey
    }
}
