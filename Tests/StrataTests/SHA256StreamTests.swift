import Crypto
import Foundation
import Testing
@testable import Strata

/// The SHA-256 that hashes a layer's stored and decompressed bytes (two streams
/// interleaved on CPUs with the SHA extensions) against sha256sum and swift-crypto.
@Suite struct SHA256StreamTests {
    @Test func thisMachineUsesTheSHAExtensions() throws {
        // Every x86-64 CPU CI runs on has them; elsewhere the portable path is used and
        // the other tests below check that one.
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        #expect(SHA256Stream.accelerated == cpuinfo.contains(" sha_ni"))
    }

    @Test func matchesSha256sumOnFilesAroundBlockBoundaries() throws {
        let dir = try TempDir()
        for size in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 4097, 1_048_577] {
            let path = dir.file("f\(size)").path
            try bash("head -c \(size) /dev/urandom > '\(path)'")
            let want = try sh(["sha256sum", path]).stdout.prefix(64)
            var s = SHA256Stream()
            try FileReader(path: path, what: "f").forEachChunk(size: 1000) { s.update($0) }
            #expect(s.finalize().encoded == want, "size \(size)")
        }
    }

    /// Two streams of different lengths, fed in uneven pieces, partly paired and partly
    /// alone: each digest equals swift-crypto's for the same bytes.
    @Test func pairedStreamsEqualTheirSeparateDigests() {
        var g = SystemRandomNumberGenerator()
        for round in 0..<200 {
            let la = round % 50 == 0 ? Int.random(in: 0...2_000_000, using: &g) : Int.random(in: 0...9000, using: &g)
            let lb = Int.random(in: 0...9000, using: &g) + (round % 7 == 0 ? 300_000 : 0)
            let a = (0..<la).map { _ in UInt8.random(in: 0...255, using: &g) }
            let b = (0..<lb).map { _ in UInt8.random(in: 0...255, using: &g) }
            var sa = SHA256Stream(), sb = SHA256Stream()
            var ia = 0, ib = 0
            a.withUnsafeBytes { pa in
                b.withUnsafeBytes { pb in
                    while ia < la || ib < lb {
                        let na = min(la - ia, Int.random(in: 0...70_000, using: &g))
                        let nb = min(lb - ib, Int.random(in: 0...70_000, using: &g))
                        let ra = UnsafeRawBufferPointer(rebasing: pa[ia..<ia + na])
                        let rb = UnsafeRawBufferPointer(rebasing: pb[ib..<ib + nb])
                        if Bool.random(using: &g) {
                            SHA256Stream.update(&sa, ra, &sb, rb)
                        } else {
                            sa.update(ra)
                            sb.update(rb)
                        }
                        ia += na
                        ib += nb
                    }
                }
            }
            #expect(sa.finalize().encoded == hex(SHA256.hash(data: a)), "round \(round), \(la) bytes")
            #expect(sb.finalize().encoded == hex(SHA256.hash(data: b)), "round \(round), \(lb) bytes")
        }
    }
}

private func hex(_ d: SHA256.Digest) -> String { d.map { String(format: "%02x", $0) }.joined() }
