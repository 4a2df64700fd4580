import Foundation
import OCI

/// A JSON value, kept as it came (unknown keys of an image's `config` survive a build step).
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n == n.rounded(), abs(n) < 9e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    var stringArray: [String]? {
        guard case .array(let a) = self else { return nil }
        return a.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    static func strings(_ a: [String]) -> JSONValue { .array(a.map { .string($0) }) }
}

/// The `config` object of an image configuration as a build step edits it (Env, Cmd,
/// Entrypoint, WorkingDir, User, Labels, ExposedPorts, Volumes, StopSignal, Shell,
/// Healthcheck, OnBuild), keeping every other key as it was.
struct ImageSettings: Sendable, Equatable {
    var object: [String: JSONValue]

    init(object: [String: JSONValue] = [:]) { self.object = object }

    /// The `config` object of a stored image config blob.
    init(configBlob: Data) throws {
        struct Outer: Decodable { var config: [String: JSONValue]? }
        do {
            object = try JSONDecoder().decode(Outer.self, from: configBlob).config ?? [:]
        } catch {
            throw StrataError(.invalidJSON, "the base image's config cannot be read: \(JSONErrors.describe(error))", cause: error)
        }
    }

    func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return try e.encode(object) } catch {
            throw StrataError(.internalError, "cannot encode the image config: \(error)", cause: error)
        }
    }

    private mutating func set(_ key: String, _ value: JSONValue?) {
        if let value { object[key] = value } else { object.removeValue(forKey: key) }
    }

    var env: [String] {
        get { object["Env"]?.stringArray ?? [] }
        set { set("Env", .strings(newValue)) }
    }

    /// Env as a dictionary (later entries win).
    var environment: [String: String] {
        var d: [String: String] = [:]
        for e in env {
            let kv = e.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            d[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return d
    }

    mutating func setEnv(_ key: String, _ value: String) {
        var e = env
        if let i = e.firstIndex(where: { $0 == key || $0.hasPrefix(key + "=") }) { e[i] = "\(key)=\(value)" } else { e.append("\(key)=\(value)") }
        env = e
    }

    var cmd: [String]? {
        get { object["Cmd"]?.stringArray }
        set { set("Cmd", newValue.map(JSONValue.strings)) }
    }

    var entrypoint: [String]? {
        get { object["Entrypoint"]?.stringArray }
        set { set("Entrypoint", newValue.map(JSONValue.strings)) }
    }

    var workingDir: String {
        get { object["WorkingDir"]?.string ?? "" }
        set { set("WorkingDir", newValue.isEmpty ? nil : .string(newValue)) }
    }

    var user: String {
        get { object["User"]?.string ?? "" }
        set { set("User", newValue.isEmpty ? nil : .string(newValue)) }
    }

    var shell: [String]? {
        get { object["Shell"]?.stringArray }
        set { set("Shell", newValue.map(JSONValue.strings)) }
    }

    /// The VOLUME paths, sorted.
    var volumes: [String] {
        guard case .object(let o)? = object["Volumes"] else { return [] }
        return o.keys.sorted()
    }

    var stopSignal: String? {
        get { object["StopSignal"]?.string }
        set { set("StopSignal", newValue.map(JSONValue.string)) }
    }

    var onBuild: [String] {
        get { object["OnBuild"]?.stringArray ?? [] }
        set { set("OnBuild", newValue.isEmpty ? nil : .strings(newValue)) }
    }

    mutating func addLabel(_ key: String, _ value: String) {
        var labels: [String: JSONValue] = [:]
        if case .object(let o)? = object["Labels"] { labels = o }
        labels[key] = .string(value)
        object["Labels"] = .object(labels)
    }

    mutating func addToSet(_ key: String, _ member: String) {
        var set: [String: JSONValue] = [:]
        if case .object(let o)? = object[key] { set = o }
        set[member] = .object([:])
        object[key] = .object(set)
    }

    mutating func setHealthcheck(_ value: JSONValue?) { set("Healthcheck", value) }
}
