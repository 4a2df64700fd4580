import CArchive
import Crypto
import Foundation

/// What one pass over a blob's bytes tells: its digest and size as stored, the
/// compression sniffed from its magic bytes, and the digest and size of its
/// decompressed content (the diffID when the blob is a layer).
struct DigestResult: Sendable {
    var digest: OCI.Digest
    var size: Int64
    var compression: Compression
    /// Digest of the decompressed bytes; equal to `digest` for plain blobs.
    var diffID: OCI.Digest
    var uncompressedSize: Int64
    /// Set when the bytes looked compressed but could not be decompressed to the end.
    var decodeError: String?
    /// The layer's file index, when the digester had a ``TarIndexer`` observing it.
    var index: LayerIndexSpool? = nil
}

/// Hashes a byte stream in one pass, decompressing gzip/zstd on the fly (law 3, law 6).
final class StreamDigester {
    private var raw = SHA256Stream()
    private var rawSize: Int64 = 0
    private var prefix: [UInt8] = []
    private var compression: Compression?
    private var diff = SHA256Stream()
    /// Stored bytes of the current ``update(_:)`` not hashed yet: they are hashed together
    /// with the decompressed bytes they produce (two streams interleaved, see SHA256Stream).
    private var unhashed = UnsafeRawBufferPointer(start: nil, count: 0)
    private var diffSize: Int64 = 0
    private var decoder: OpaquePointer?
    private var decodeError: String?
    private let decodeCompressed: Bool
    private let checkTrailers: Bool
    private var out: UnsafeMutableRawBufferPointer?
    /// Optional observer of the decompressed bytes (the layer's tar): indexes its entries in
    /// the same pass.
    private let indexer: TarIndexer?

    /// - Parameters:
    ///   - decodeCompressed: when false, compressed input is hashed but not decompressed.
    ///   - indexTo: when set, the decompressed bytes are also parsed as a tar and its
    ///     entries spooled to this file (``DigestResult/index``).
    ///   - checkTrailers: when false, gzip's CRC-32 and length trailers are not computed.
    ///     Only for callers that compare ``DigestResult/diffID`` with an expected diffID
    ///     (load, pull, fsck): that check proves the decompressed bytes exactly, the CRC adds
    ///     nothing but CPU.
    init(decodeCompressed: Bool = true, indexTo spoolPath: String? = nil, checkTrailers: Bool = true) {
        self.decodeCompressed = decodeCompressed
        self.checkTrailers = checkTrailers
        self.indexer = spoolPath.map { TarIndexer(spoolPath: $0) }
    }

    deinit {
        if let decoder { strata_decoder_free(decoder) }
        out?.deallocate()
    }

    func update(_ buf: UnsafeRawBufferPointer) {
        guard buf.count > 0 else { return }
        rawSize += Int64(buf.count)
        if compression == nil {
            prefix.append(contentsOf: buf.prefix(4 - prefix.count))
            if prefix.count < 4 && rawSize < 4 {
                raw.update(buf)
                return
            }
            start(Compression.sniff(prefix))
            // Feed what was held back (earlier prefix bytes, already hashed as stored).
            let earlier = Int(rawSize) - buf.count
            if earlier > 0 {
                let held = Array(prefix.prefix(earlier))
                held.withUnsafeBytes { feed($0) }
            }
        }
        // While decompressing, the stored bytes are hashed alongside the output in feed();
        // whatever is left (the output ran short, or the stream is not decoded) goes here.
        unhashed = decoder != nil && decodeError == nil ? buf : UnsafeRawBufferPointer(start: nil, count: 0)
        if unhashed.isEmpty { raw.update(buf) }
        feed(buf)
        if !unhashed.isEmpty {
            raw.update(unhashed)
            unhashed = UnsafeRawBufferPointer(start: nil, count: 0)
        }
    }

    /// Hashes decompressed bytes, paired with as many pending stored bytes.
    private func hashDecompressed(_ chunk: UnsafeRawBufferPointer) {
        if unhashed.isEmpty {
            diff.update(chunk)
            return
        }
        let n = min(unhashed.count, chunk.count)
        SHA256Stream.update(&raw, UnsafeRawBufferPointer(rebasing: unhashed[0..<n]), &diff, chunk)
        unhashed = UnsafeRawBufferPointer(rebasing: unhashed[n...])
    }

    private func start(_ c: Compression) {
        compression = c
        guard c != .none, decodeCompressed else { return }
        decoder = strata_decoder_new(c == .gzip ? Int32(STRATA_CODEC_GZIP) : Int32(STRATA_CODEC_ZSTD), checkTrailers ? 1 : 0)
        if decoder == nil { decodeError = "cannot start a \(c.rawValue) decoder" }
        out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
    }

    private func feed(_ buf: UnsafeRawBufferPointer) {
        guard let c = compression else { return }
        if c == .none { indexer?.consume(buf); return }  // the diffID is the digest: hash once
        guard decodeError == nil, let decoder, let out, var base = buf.baseAddress else { return }
        var remaining = buf.count
        while true {
            var consumed = 0
            var produced = 0
            let rc = strata_decoder_step(decoder, base, remaining, &consumed, out.baseAddress, out.count, &produced)
            if rc != 0 {
                decodeError = String(cString: strata_decoder_error(decoder))
                return
            }
            if produced > 0 {
                let chunk = UnsafeRawBufferPointer(rebasing: out[0..<produced])
                hashDecompressed(chunk)
                indexer?.consume(chunk)
                diffSize += Int64(produced)
            }
            base += consumed
            remaining -= consumed
            if remaining == 0 && produced < out.count { return }
            if consumed == 0 && produced == 0 { return }
        }
    }

    func finish() -> DigestResult {
        if compression == nil { start(.none); prefix.withUnsafeBytes { feed($0) } }
        let digest = raw.finalize()
        let c = compression ?? .none
        if c == .none {
            return DigestResult(digest: digest, size: rawSize, compression: .none, diffID: digest, uncompressedSize: rawSize,
                                index: indexer?.finish())
        }
        var err = decodeError
        if decodeCompressed, err == nil, let decoder {
            // Drain anything still buffered inside the decoder.
            if let out {
                while true {
                    var consumed = 0
                    var produced = 0
                    let rc = strata_decoder_step(decoder, nil, 0, &consumed, out.baseAddress, out.count, &produced)
                    if rc != 0 { err = String(cString: strata_decoder_error(decoder)); break }
                    if produced == 0 { break }
                    let chunk = UnsafeRawBufferPointer(rebasing: out[0..<produced])
                    diff.update(chunk)
                    indexer?.consume(chunk)
                    diffSize += Int64(produced)
                }
            }
            if err == nil && strata_decoder_complete(decoder) == 0 {
                err = "truncated \(c.rawValue) data"
            }
        }
        let diffID = decodeCompressed ? diff.finalize() : digest
        return DigestResult(digest: digest, size: rawSize, compression: c, diffID: diffID,
                            uncompressedSize: decodeCompressed ? diffSize : rawSize, decodeError: err,
                            index: decodeCompressed && err == nil ? indexer?.finish() : nil)
    }
}
