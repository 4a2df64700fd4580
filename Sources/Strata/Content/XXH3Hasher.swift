import CArchive
import Foundation

/// A reusable streaming XXH3-128 hasher (system libxxhash through the C shim), for the
/// content digests of the layer index: fast enough to add almost nothing to a load, and
/// meant to tell file content apart, not as a security hash.
final class XXH3Hasher {
    private let state: OpaquePointer?

    init() {
        state = strata_xxh3_new()
    }

    deinit { strata_xxh3_free(state) }

    /// Whether the hasher could be created (libxxhash allocates its state).
    var isUsable: Bool { state != nil }

    /// Starts a new input.
    func reset() {
        if let state { _ = strata_xxh3_reset(state) }
    }

    func update(_ buf: UnsafeRawBufferPointer) {
        guard let state, let base = buf.baseAddress, buf.count > 0 else { return }
        _ = strata_xxh3_update(state, base, buf.count)
    }

    /// The `xxh128:` digest of everything fed since the last ``reset()``; `nil` when the
    /// hasher could not be created.
    func digest() -> OCI.Digest? {
        guard let state else { return nil }
        var out = [UInt8](repeating: 0, count: 16)
        out.withUnsafeMutableBufferPointer { strata_xxh3_digest128(state, $0.baseAddress) }
        return OCI.Digest.xxh128(raw: out)
    }
}
