import Crypto
import Foundation

/// A content digest, `algorithm:encoded`. Only `sha256` (64 lowercase hex) and
/// `sha512` (128 lowercase hex) are accepted when parsing; anything else is an error.
///
/// The store also makes `xxh128` digests (32 lowercase hex, XXH3-128) internally, for the
/// content of files in its layer index (``xxh128(raw:)``). They tell content apart; they are
/// not a security hash, and ``init(_:)`` never accepts them from input.
///
/// ```swift
/// let d = try Digest("sha256:" + String(repeating: "a", count: 64))
/// d.shortHex // "aaaaaaaaaaaa"
/// ```
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// `algorithm:encoded`, held whole: a digest read from the database or a document keeps
    /// the string it was parsed from, and SQL arguments, paths and comparisons use it as is.
    public let string: String

    /// The algorithm: `sha256`, `sha512` (or `xxh128` for the store's own file index).
    public var algorithm: String { String(string.utf8.prefix(upTo: colon))! }
    /// The hex after the colon.
    public var encoded: String { String(string.utf8.suffix(from: string.utf8.index(after: colon)))! }

    /// The colon's position (every algorithm the store knows has six characters, but the
    /// position is found rather than assumed).
    private var colon: String.Index { string.utf8.firstIndex(of: UInt8(ascii: ":")) ?? string.utf8.endIndex }

    /// Parses and validates a digest string.
    public init(_ string: String) throws {
        // The common case first, on the UTF-8 bytes: listings parse one per row, and the
        // string is kept as it is (no copy).
        if string.utf8.count == 71, Self.isSHA256(string) {
            self.string = string
            return
        }
        guard let colon = string.firstIndex(of: ":") else {
            throw StrataError(.invalidDigest, "invalid digest \"\(Self.clip(string))\": expected sha256:<64 hex>")
        }
        let algorithm = String(string[..<colon])
        let encoded = String(string[string.index(after: colon)...])
        let expected: Int
        switch algorithm {
        case "sha256": expected = 64
        case "sha512": expected = 128
        default:
            throw StrataError(.invalidDigest, "unsupported digest algorithm \"\(Self.clip(algorithm))\" in \"\(Self.clip(string))\"")
        }
        guard encoded.utf8.count == expected, encoded.utf8.allSatisfy(Self.isLowerHex) else {
            throw StrataError(.invalidDigest, "invalid digest \"\(Self.clip(string))\": expected \(algorithm):<\(expected) lowercase hex>")
        }
        self.string = string
    }

    /// Parses and validates a digest from its UTF-8 bytes, as a listing reads them from the
    /// database: the common `sha256:` form is checked on the bytes and copied once.
    public init(utf8 bytes: UnsafeBufferPointer<UInt8>) throws {
        guard Self.isSHA256(bytes) else {
            try self.init(String(decoding: bytes, as: UTF8.self))
            return
        }
        // Checked ASCII: copied without decoding it again.
        self.init(checked: String(unsafeUninitializedCapacity: bytes.count) { out in
            _ = out.initialize(from: bytes)
            return bytes.count
        })
    }

    private init(checked string: String) { self.string = string }

    /// Whether a 71-byte string is `sha256:` and 64 lowercase hex, checked on contiguous bytes.
    private static func isSHA256(_ string: String) -> Bool {
        var s = string
        return s.withUTF8 { isSHA256($0) }
    }

    private static func isSHA256(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 71, b[0] == 0x73, b[1] == 0x68, b[2] == 0x61, b[3] == 0x32, b[4] == 0x35,
              b[5] == 0x36, b[6] == 0x3A else { return false }  // "sha256:"
        for i in 7..<71 where !isLowerHex(b[i]) { return false }
        return true
    }

    private static func isLowerHex(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 102) }

    /// A sha256 digest from a 64-hex string known to be valid.
    init(sha256Hex: String) {
        self.string = "sha256:" + sha256Hex
    }

    /// A `sha256:` digest from the 32 bytes of a finished SHA-256; `nil` unless there are
    /// exactly 32 bytes.
    public static func sha256(raw bytes: some Collection<UInt8>) -> Digest? {
        guard bytes.count == 32 else { return nil }
        return Digest(sha256Hex: bytes.hexString)
    }

    /// An `xxh128:` digest from the 16 bytes of an XXH3-128 hash in canonical (big-endian)
    /// order, as `xxh128sum` prints it. `nil` unless there are exactly 16 bytes.
    ///
    /// For telling file content apart in the layer index; not a security hash. Such
    /// digests are never parsed from input: ``init(_:)`` rejects the `xxh128` algorithm.
    public static func xxh128(raw bytes: some Collection<UInt8>) -> Digest? {
        guard bytes.count == 16 else { return nil }
        return Digest(algorithm: "xxh128", encoded: bytes.hexString)
    }

    /// An `xxh128:` digest from its 32 lowercase hex characters; `nil` when they are not.
    /// For the store's own records (see ``xxh128(raw:)``), never for input from outside.
    public static func xxh128(hex: String) -> Digest? {
        guard hex.utf8.count == 32, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        return Digest(algorithm: "xxh128", encoded: hex)
    }

    private init(algorithm: String, encoded: String) {
        self.string = algorithm + ":" + encoded
    }

    /// `sha256:` digest of the given bytes.
    public static func sha256(_ data: some DataProtocol) -> Digest {
        Digest(sha256Hex: SHA256.hash(data: data).hexString)
    }

    /// Builds a digest from a finished hasher.
    public static func sha256(finalizing hasher: SHA256) -> Digest {
        Digest(sha256Hex: hasher.finalize().hexString)
    }

    public var description: String { string }
    /// The first 12 hex characters: Docker's short ID.
    public var shortHex: String {
        // On contiguous bytes: listings call this once per row.
        var s = string
        return s.withUTF8 { b in
            let start = (b.firstIndex(of: UInt8(ascii: ":")) ?? b.count - 1) + 1
            return String(decoding: UnsafeBufferPointer(rebasing: b[start..<min(start + 12, b.count)]), as: UTF8.self)
        }
    }

    public static func < (a: Digest, b: Digest) -> Bool { a.string < b.string }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        try self.init(s)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(string)
    }

    public static func clip(_ s: String) -> String {
        s.count > 80 ? String(s.prefix(77)) + "..." : s
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hexadecimal rendering.
    public var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Chain IDs identify a layer together with everything below it.
///
/// chainID(L0) = diffID(L0); chainID(n) = sha256("<chainID(n-1)> <diffID(n)>").
public enum ChainID {
    /// The chain IDs of each prefix of `diffIDs`.
    public static func chain(_ diffIDs: [Digest]) -> [Digest] {
        var out: [Digest] = []
        out.reserveCapacity(diffIDs.count)
        for d in diffIDs {
            if let last = out.last {
                out.append(.sha256(Data("\(last.string) \(d.string)".utf8)))
            } else {
                out.append(d)
            }
        }
        return out
    }
}
