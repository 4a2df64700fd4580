import Foundation
import Testing
@testable import OCI

@Suite struct DigestTests {
    @Test func acceptsSha256AndSha512() throws {
        let d = try Digest("sha256:" + String(repeating: "ab", count: 32))
        #expect(d.algorithm == "sha256")
        #expect(d.shortHex == "abababababab")
        let long = try Digest("sha512:" + String(repeating: "0", count: 127) + "f")
        #expect(long.algorithm == "sha512" && long.encoded == String(repeating: "0", count: 127) + "f")
        #expect(long.shortHex == "000000000000" && long.string.utf8.count == 135)
        // The parsed string is what `string` gives back, and order is the string's order.
        let a = try Digest("sha256:" + String(repeating: "a", count: 64)), b = try Digest("sha512:" + String(repeating: "0", count: 128))
        #expect(a.string == "sha256:" + String(repeating: "a", count: 64) && a.encoded == String(repeating: "a", count: 64))
        let again = try Digest(a.string)
        #expect(a < b && !(b < a) && a == again)
    }

    @Test(arguments: [
        "", "sha256", "sha256:", "sha256:abc", "md5:" + String(repeating: "a", count: 32),
        "sha256:" + String(repeating: "A", count: 64), "sha256:" + String(repeating: "g", count: 64),
        "SHA256:" + String(repeating: "a", count: 64), "sha256:" + String(repeating: "a", count: 65),
        // 71 bytes, one wrong in each part the fast path checks.
        "sha255:" + String(repeating: "a", count: 64), "sha256;" + String(repeating: "a", count: 64),
        "sha256:" + String(repeating: "a", count: 63) + "/", "sha256:" + String(repeating: "a", count: 63) + "\u{e9}",
    ])
    func rejectsMalformed(_ s: String) {
        #expect(throws: StrataError.self) { try Digest(s) }
    }

    /// The index's own `xxh128` digests are made only by the store, never parsed from input.
    @Test func xxh128IsInternalOnly() throws {
        let hex = "99aa06d3014798d86001c324468d497f"  // printf '' | xxh128sum
        let raw = stride(from: 0, to: 32, by: 2).map { i in UInt8(hex.dropFirst(i).prefix(2), radix: 16) ?? 0 }
        #expect(Digest.xxh128(raw: raw)?.string == "xxh128:" + hex)
        #expect(Digest.xxh128(hex: hex) == Digest.xxh128(raw: raw))
        #expect(Digest.xxh128(raw: raw.dropLast()) == nil)
        #expect(Digest.xxh128(hex: hex.uppercased()) == nil)
        #expect(Digest.xxh128(hex: hex + "0") == nil)
        #expect(throws: StrataError.self) { try Digest("xxh128:" + hex) }
        #expect(throws: StrataError.self) { try JSONDecoder().decode(Digest.self, from: Data("\"xxh128:\(hex)\"".utf8)) }
    }

    @Test func sha256MatchesCoreutils() {
        // printf 'hello\n' | sha256sum
        #expect(Digest.sha256(Data("hello\n".utf8)).encoded == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    }

    @Test func chainIDFollowsTheSpec() throws {
        let a = try Digest("sha256:" + String(repeating: "a", count: 64))
        let b = try Digest("sha256:" + String(repeating: "b", count: 64))
        let chain = ChainID.chain([a, b])
        #expect(chain[0] == a)
        // printf 'sha256:aaa…a sha256:bbb…b' | sha256sum
        #expect(chain[1].encoded == "ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c")
    }

    @Test func compressionIsSniffedFromMagic() {
        #expect(Compression.sniff([0x1F, 0x8B, 0x08, 0x00]) == .gzip)
        #expect(Compression.sniff([0x28, 0xB5, 0x2F, 0xFD]) == .zstd)
        #expect(Compression.sniff(Array("ustar".utf8)) == .none)
        #expect(Compression.sniff([UInt8]()) == .none)
    }
}
