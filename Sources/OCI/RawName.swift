/// File names are bytes (law 9): a tar header, a directory entry or a symlink target may hold
/// bytes that are not UTF-8 (`caf\xe9.txt` from an old Latin-1 tarball). A Swift `String`
/// cannot hold them, so strata carries such a name in a `String` through a lossless mapping
/// and turns it back into the exact bytes at every boundary (a system call, a tar header).
///
/// The mapping: a byte `b` (0x80–0xFF) that is not part of valid UTF-8 becomes the scalar
/// `U+10FF00 + b` (U+10FF80–U+10FFFF, the end of a private-use plane that no real name uses).
/// A name that really contains one of those scalars has its UTF-8 bytes mapped the same way,
/// one scalar per byte, so decoding is a bijection: `encode(decode(bytes)) == bytes` for every
/// byte string, and a valid UTF-8 name decodes to itself.
///
/// ```swift
/// let name = RawName.decode([0x63, 0x61, 0x66, 0xE9])   // "caf\u{10FFE9}"
/// RawName.encode(name)                                   // [0x63, 0x61, 0x66, 0xE9]
/// RawName.escaped(name)                                  // "caf\\351" (as `ls -b` prints it)
/// ```
public enum RawName {
    static let base: UInt32 = 0x10FF00
    static let low: UInt32 = 0x10FF80

    /// The string for a name's bytes (lossless; see the type's documentation).
    public static func decode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let a = Array(bytes)
        // Fast path: valid UTF-8 with no scalar in the reserved range (no 0xF4 lead byte).
        if !a.contains(0xF4), let s = String(validating: a, as: UTF8.self) { return s }
        var scalars = String.UnicodeScalarView()
        var i = 0
        while i < a.count {
            let (scalar, len) = decodeOne(a, at: i)
            if let scalar, scalar.value < low {
                scalars.append(scalar)
                i += len
            } else {
                // Invalid here, or a real scalar of the reserved range: one scalar per byte.
                for k in 0..<max(len, 1) where i + k < a.count {
                    let b = a[i + k]
                    scalars.append(b < 0x80 ? Unicode.Scalar(b) : Unicode.Scalar(base + UInt32(b))!)
                }
                i += max(len, 1)
            }
        }
        return String(scalars)
    }

    /// The string for a NUL-terminated C string's bytes.
    public static func decode(cString: UnsafePointer<CChar>) -> String {
        var n = 0
        while cString[n] != 0 { n += 1 }
        return cString.withMemoryRebound(to: UInt8.self, capacity: n) { decode(UnsafeBufferPointer(start: $0, count: n)) }
    }

    /// One valid UTF-8 scalar at `i` with its length, or (nil, 1) when the byte there does not
    /// start one. A reserved-range scalar is returned with its full length so its bytes can be
    /// mapped one by one.
    private static func decodeOne(_ a: [UInt8], at i: Int) -> (Unicode.Scalar?, Int) {
        let b0 = a[i]
        if b0 < 0x80 { return (Unicode.Scalar(b0), 1) }
        let len: Int
        var v: UInt32
        switch b0 {
        case 0xC2...0xDF: len = 2; v = UInt32(b0 & 0x1F)
        case 0xE0...0xEF: len = 3; v = UInt32(b0 & 0x0F)
        case 0xF0...0xF4: len = 4; v = UInt32(b0 & 0x07)
        default: return (nil, 1)
        }
        guard i + len <= a.count else { return (nil, 1) }
        for k in 1..<len {
            let b = a[i + k]
            guard b & 0xC0 == 0x80 else { return (nil, 1) }
            v = v << 6 | UInt32(b & 0x3F)
        }
        // Overlong forms and surrogates are not valid UTF-8.
        let minimum: UInt32 = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000
        guard v >= minimum, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v), let s = Unicode.Scalar(v) else { return (nil, 1) }
        if v >= low { return (nil, len) }
        return (s, len)
    }

    /// Whether `s` holds any byte that is not UTF-8 (a mapped scalar).
    public static func hasRawBytes(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.value >= low }
    }

    /// The exact bytes of a name carried in `s`.
    public static func encode(_ s: String) -> [UInt8] {
        guard hasRawBytes(s) else { return Array(s.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            if scalar.value >= low {
                out.append(UInt8(scalar.value - base))
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out
    }

    /// The exact bytes of `s` as a NUL-terminated C string, for a system call.
    public static func cString(_ s: String) -> [CChar] {
        if !hasRawBytes(s) { return s.utf8CString.map { $0 } }
        return encode(s).map { CChar(bitPattern: $0) } + [0]
    }

    /// `s` for a person: bytes that are not UTF-8, and control characters, as `ls -b` shows them
    /// (`\351`, `\n`, `\\`). A name without such bytes is returned as it is, apart from `\\`.
    public static func escaped(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value >= low || $0.value < 0x20 || $0.value == 0x7F || $0 == "\\" }) else { return s }
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar.value {
            case low...: out += octal(UInt8(scalar.value - base))
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F: out += octal(UInt8(scalar.value))
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func octal(_ b: UInt8) -> String {
        "\\" + String(b >> 6) + String((b >> 3) & 7) + String(b & 7)
    }

    /// JSON for scripts: rewrites the mapped scalars in encoded JSON text (where they appear as
    /// their 4-byte UTF-8 form) as the escapes `\udc80`–`\udcff`, Python's `surrogateescape`
    /// convention: `os.fsencode(json.loads(text)["path"])` gives the name's exact bytes.
    public static func jsonSurrogateEscapes(_ json: [UInt8]) -> [UInt8] {
        // U+10FF80–U+10FFFF in UTF-8: F4 8F BE 80–BF, F4 8F BF 80–BF.
        guard json.contains(0xF4) else { return json }
        var out: [UInt8] = []
        out.reserveCapacity(json.count)
        var i = 0
        let hex = Array("0123456789abcdef".utf8)
        while i < json.count {
            if json[i] == 0xF4, i + 3 < json.count, json[i + 1] == 0x8F, json[i + 2] == 0xBE || json[i + 2] == 0xBF {
                let byte = UInt8((UInt32(json[i + 2] & 0x3F) << 6 | UInt32(json[i + 3] & 0x3F)) & 0xFF)
                out.append(contentsOf: Array("\\udc".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
                i += 4
            } else {
                out.append(json[i])
                i += 1
            }
        }
        return out
    }
}
