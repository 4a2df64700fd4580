import CArchive
import Crypto
import Foundation

/// A running SHA-256 for ``StreamDigester``: on x86 with the SHA extensions, CArchive's
/// implementation, which can hash two streams interleaved (a layer's stored bytes and its
/// decompressed bytes) for about 1.5 times the cost of one instead of twice; elsewhere
/// swift-crypto's. Both give the same digests (tested against sha256sum).
struct SHA256Stream {
    /// Whether this CPU has the SHA extensions (checked once).
    static let accelerated = strata_sha256_accelerated() != 0

    private var fast = strata_sha256()
    private var portable = SHA256()

    init() {
        if Self.accelerated { strata_sha256_init(&fast) }
    }

    mutating func update(_ buf: UnsafeRawBufferPointer) {
        guard buf.count > 0 else { return }
        if Self.accelerated {
            strata_sha256_update(&fast, buf.baseAddress, buf.count)
        } else {
            portable.update(bufferPointer: buf)
        }
    }

    /// Hashes `a` into `first` and `b` into `second`, interleaved when accelerated.
    static func update(_ first: inout SHA256Stream, _ a: UnsafeRawBufferPointer,
                       _ second: inout SHA256Stream, _ b: UnsafeRawBufferPointer) {
        if accelerated {
            strata_sha256_update2(&first.fast, a.baseAddress, a.count, &second.fast, b.baseAddress, b.count)
        } else {
            first.update(a)
            second.update(b)
        }
    }

    /// The digest of everything hashed so far.
    func finalize() -> OCI.Digest {
        if Self.accelerated {
            var c = fast
            var out = [UInt8](repeating: 0, count: 32)
            strata_sha256_final(&c, &out)
            return OCI.Digest.sha256(raw: out)!  // exactly 32 bytes
        }
        return OCI.Digest.sha256(finalizing: portable)
    }
}
