import Foundation

/// A JSON value, kept as it came. ``ContainerConfig`` and the unknown keys of
/// ``ImageConfig`` and ``HistoryEntry`` are held in this form, so a config read and written
/// again loses nothing (numbers are doubles: integers are exact up to 2^53).
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
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
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

    /// The string, when this is one.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The strings of an array (other members skipped); a lone string is a one-element list,
    /// as Docker reads `Cmd` and `Entrypoint`.
    public var stringArray: [String]? {
        switch self {
        case .array(let a): return a.compactMap(\.string)
        case .string(let s): return [s]
        default: return nil
        }
    }

    /// The members, when this is an object.
    public var object: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// An array of strings.
    public static func strings(_ a: [String]) -> JSONValue { .array(a.map { .string($0) }) }

    /// An object whose members are strings.
    public static func strings(_ d: [String: String]) -> JSONValue { .object(d.mapValues { .string($0) }) }
}

/// A JSON object key known only at run time.
struct AnyKey: CodingKey, Hashable {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Decoding and encoding of structs that name some keys and keep the rest: known keys typed,
/// explicit nulls remembered, unknown keys as ``JSONValue``.
struct KeptFields {
    let container: KeyedDecodingContainer<AnyKey>
    let known: Set<String>

    init(_ decoder: any Decoder, known: Set<String>) throws {
        container = try decoder.container(keyedBy: AnyKey.self)
        self.known = known
    }

    func decode<T: Decodable>(_ key: String, as: T.Type = T.self) throws -> T? {
        try container.decodeIfPresent(T.self, forKey: AnyKey(key))
    }

    /// Known keys present with the value `null`.
    func nulls() throws -> Set<String> {
        var s: Set<String> = []
        for k in container.allKeys where known.contains(k.stringValue) {
            if try container.decodeNil(forKey: k) { s.insert(k.stringValue) }
        }
        return s
    }

    /// Every key this type does not name.
    func others() throws -> [String: JSONValue] {
        var d: [String: JSONValue] = [:]
        for k in container.allKeys where !known.contains(k.stringValue) {
            d[k.stringValue] = try container.decode(JSONValue.self, forKey: k)
        }
        return d
    }
}

extension KeyedEncodingContainer where K == AnyKey {
    /// Encodes a known key: its value, or `null` when it came as `null`, or nothing.
    mutating func encode<T: Encodable>(_ value: T?, _ key: String, nulls: Set<String>) throws {
        if let value { try encode(value, forKey: AnyKey(key)) }
        else if nulls.contains(key) { try encodeNil(forKey: AnyKey(key)) }
    }

    mutating func encode(others: [String: JSONValue]) throws {
        for (k, v) in others { try encode(v, forKey: AnyKey(k)) }
    }
}
