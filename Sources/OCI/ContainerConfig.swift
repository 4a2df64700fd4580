import Foundation

/// `config` inside an image configuration: what a container made from the image runs, and
/// how. The one model of it for load, the builder, `commit -c`, the runtime and inspect.
///
/// Every key is kept as it came, known or not (`ArgsEscaped`, `Hostname`, an explicit
/// `"Entrypoint": null`), so a config read and written again loses nothing. The typed
/// properties read and write the keys Docker defines; setting one to `nil` removes its key.
/// Decoding checks the known keys' types, so `"Env": 1` is refused as Docker refuses it.
public struct ContainerConfig: Codable, Sendable, Hashable {
    /// Every key of the object, as it came or as edited.
    public var fields: [String: JSONValue]

    public init(fields: [String: JSONValue] = [:]) { self.fields = fields }

    public init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: JSONValue].self)
        try Self.check(fields, at: decoder.codingPath)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(fields)
    }

    // MARK: Typed keys

    public var User: String? {
        get { fields["User"]?.string }
        set { set("User", newValue.map(JSONValue.string)) }
    }

    /// `KEY=value` entries, in order.
    public var Env: [String]? {
        get { fields["Env"]?.stringArray }
        set { set("Env", newValue.map(JSONValue.strings)) }
    }

    public var Entrypoint: [String]? {
        get { fields["Entrypoint"]?.stringArray }
        set { set("Entrypoint", newValue.map(JSONValue.strings)) }
    }

    public var Cmd: [String]? {
        get { fields["Cmd"]?.stringArray }
        set { set("Cmd", newValue.map(JSONValue.strings)) }
    }

    public var WorkingDir: String? {
        get { fields["WorkingDir"]?.string }
        set { set("WorkingDir", newValue.map(JSONValue.string)) }
    }

    public var Labels: [String: String]? {
        get { fields["Labels"]?.object?.compactMapValues(\.string) }
        set { set("Labels", newValue.map(JSONValue.strings)) }
    }

    public var StopSignal: String? {
        get { fields["StopSignal"]?.string }
        set { set("StopSignal", newValue.map(JSONValue.string)) }
    }

    /// The shell of shell-form RUN, CMD and ENTRYPOINT (`SHELL`).
    public var Shell: [String]? {
        get { fields["Shell"]?.stringArray }
        set { set("Shell", newValue.map(JSONValue.strings)) }
    }

    /// ONBUILD triggers, as written.
    public var OnBuild: [String]? {
        get { fields["OnBuild"]?.stringArray }
        set { set("OnBuild", newValue.map(JSONValue.strings)) }
    }

    /// Exposed ports as the config keys them (`80/tcp`), sorted.
    public var ExposedPorts: [String]? { fields["ExposedPorts"]?.object.map { $0.keys.sorted() } }

    /// VOLUME paths, sorted.
    public var Volumes: [String]? { fields["Volumes"]?.object.map { $0.keys.sorted() } }

    /// The HEALTHCHECK object (`Test`, `Interval`, … in nanoseconds), as stored.
    public var Healthcheck: JSONValue? {
        get { fields["Healthcheck"] }
        set { set("Healthcheck", newValue) }
    }

    // MARK: Edits

    /// Env as a dictionary (later entries win).
    public var environment: [String: String] {
        var d: [String: String] = [:]
        for e in Env ?? [] {
            let kv = e.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            d[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return d
    }

    /// Sets one variable, in place of an earlier value of it, else at the end.
    public mutating func setEnv(_ key: String, _ value: String) {
        var e = Env ?? []
        if let i = e.firstIndex(where: { $0 == key || $0.hasPrefix(key + "=") }) { e[i] = "\(key)=\(value)" } else { e.append("\(key)=\(value)") }
        Env = e
    }

    public mutating func addLabel(_ key: String, _ value: String) {
        var labels = fields["Labels"]?.object ?? [:]
        labels[key] = .string(value)
        fields["Labels"] = .object(labels)
    }

    /// Adds `80/tcp` to `ExposedPorts`.
    public mutating func addExposedPort(_ spec: String) { addMember("ExposedPorts", spec) }

    /// Adds a path to `Volumes`.
    public mutating func addVolume(_ path: String) { addMember("Volumes", path) }

    private mutating func addMember(_ key: String, _ member: String) {
        var set = fields[key]?.object ?? [:]
        set[member] = .object([:])
        fields[key] = .object(set)
    }

    private mutating func set(_ key: String, _ value: JSONValue?) {
        if let value { fields[key] = value } else { fields.removeValue(forKey: key) }
    }

    // MARK: Checks

    private enum Shape { case string, strings, stringOrStrings, stringMap, object }

    private static let shapes: [String: Shape] = [
        "User": .string, "WorkingDir": .string, "StopSignal": .string, "Hostname": .string, "Domainname": .string,
        "Env": .strings, "OnBuild": .strings, "Shell": .strings,
        "Cmd": .stringOrStrings, "Entrypoint": .stringOrStrings,
        "Labels": .stringMap, "ExposedPorts": .object, "Volumes": .object, "Healthcheck": .object,
    ]

    /// Refuses a known key of the wrong type, as Go's decoder in Docker does (`null` is
    /// always allowed).
    static func check(_ fields: [String: JSONValue], at path: [any CodingKey]) throws {
        for (key, value) in fields {
            guard let shape = shapes[key], value != .null else { continue }
            let ok: Bool
            switch (shape, value) {
            case (.string, .string), (.stringOrStrings, .string), (.object, .object): ok = true
            case (.strings, .array(let a)), (.stringOrStrings, .array(let a)): ok = a.allSatisfy { $0.string != nil }
            case (.stringMap, .object(let o)): ok = o.values.allSatisfy { $0.string != nil }
            default: ok = false
            }
            if !ok {
                throw DecodingError.typeMismatch(JSONValue.self, .init(codingPath: path + [AnyKey(key)], debugDescription: "wrong type"))
            }
        }
    }
}
