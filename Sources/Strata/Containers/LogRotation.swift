import Foundation

/// When a container's log is rotated (`--log-opt max-size=10m --log-opt max-file=3`), as
/// dockerd's json-file and local drivers rotate theirs: before a record is written to a log
/// that has reached ``maxSize`` bytes, the log becomes `container.log.1` (the one before
/// becomes `.2`, and so on), keeping ``maxFiles`` files in all, the current one included;
/// with one file, the log starts over empty. `docker logs` reads the rotated files, oldest
/// first, then the current one.
public struct LogRotation: Sendable, Codable, Hashable {
    /// Bytes after which the log is rotated.
    public var maxSize: Int64
    /// Files kept, the current one included (at least 1).
    public var maxFiles: Int

    public init(maxSize: Int64, maxFiles: Int = 1) {
        self.maxSize = maxSize
        self.maxFiles = maxFiles
    }

    /// dockerd's `local` driver's defaults: 20 MB, 5 files.
    public static let localDefault = LogRotation(maxSize: 20_000_000, maxFiles: 5)

    /// The rotation `--log-opt`s ask for with `driver` (json-file, local, none or empty for
    /// json-file): nil for none. The options strata applies are `max-size` (a size in
    /// dockerd's decimal units: `10m` is 10,000,000 bytes) and `max-file`; `compress=false`
    /// is taken (strata does not compress rotated files, so `compress=true` is refused, as
    /// are the attributes options, which only `docker logs --details` would show). A key the
    /// driver does not know gets dockerd's words.
    public static func parse(driver: String?, options: [String: String]) throws -> LogRotation? {
        let name = (driver ?? "").isEmpty ? "json-file" : driver!
        let known: Set<String> = name == "local" ? ["max-size", "max-file", "compress"]
            : ["max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"]
        if name == "none" {
            if let key = options.keys.sorted().first { throw StrataError(.invalidArgument, "unknown log opt '\(key)' for none log driver") }
            return nil
        }
        for key in options.keys.sorted() where !known.contains(key) {
            throw StrataError(.invalidArgument, "unknown log opt '\(key)' for \(name) log driver")
        }
        for key in options.keys.sorted() where !["max-size", "max-file", "compress"].contains(key) {
            throw StrataError(.notSupported, "strata does not apply log option \(key) (--log-opt \(key)=…): leave it unset")
        }
        if let c = options["compress"] {
            guard let on = Bool(c.lowercased()) else { throw StrataError(.invalidArgument, "invalid value for compress: \"\(c)\": use true or false") }
            if on {
                throw StrataError(.notSupported, "strata does not compress rotated logs (--log-opt compress=true): use compress=false")
            }
        }
        var rotation = name == "local" ? localDefault : nil
        if let s = options["max-size"] {
            guard let bytes = decimalSize(s) else { throw StrataError(.invalidArgument, "invalid size: '\(s)'") }
            guard bytes > 0 else { throw StrataError(.invalidArgument, "max-size must be a positive number") }
            rotation = LogRotation(maxSize: bytes, maxFiles: rotation?.maxFiles ?? 1)
        }
        if let f = options["max-file"] {
            guard let n = Int(f) else { throw StrataError(.invalidArgument, "invalid max-file \"\(f)\": use a whole number") }
            guard n >= 1 else { throw StrataError(.invalidArgument, "max-file cannot be less than 1") }
            // Without max-size dockerd never rotates, whatever max-file says.
            rotation?.maxFiles = n
        }
        return rotation
    }

    /// A size in decimal units as Docker's `units.FromHumanSize` reads it: `512`, `10k`,
    /// `10m`, `1.5g`, `10MB`, `2 GiB`… (each unit 1000 times the one below); nil when it is not one.
    static func decimalSize(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let number = t.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !number.isEmpty, let value = Double(number), value.isFinite else { return nil }
        var unit = t.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        if unit.hasSuffix("ib") { unit.removeLast(2) } else if unit.hasSuffix("b") { unit.removeLast() }
        let scales: [String: Double] = ["": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15]
        guard let scale = scales[unit] else { return nil }
        let bytes = value * scale
        guard bytes < 9e18 else { return nil }
        return Int64(bytes)
    }

    /// The path of the `k`th rotated file of the log at `path` (1: the newest).
    static func rotated(_ path: String, _ k: Int) -> String { "\(path).\(k)" }
}
