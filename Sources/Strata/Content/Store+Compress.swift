import CArchive
import Foundation
import GRDB

extension Store {
    /// A compressed copy (gzip by default, or zstd) of a stored uncompressed layer, for
    /// pushing. The first call compresses it (one streaming pass, the digest computed on the
    /// way) and records the compressed blob as another encoding of the same diffID; later
    /// calls reuse it. A layer that is already compressed is returned as it is.
    ///
    /// ```swift
    /// let z = try await store.compressedLayer(layerDigest, as: .zstd)
    /// ```
    package func compressedLayer(_ blob: Digest, as want: Compression = .gzip) async throws -> (digest: Digest, size: Int64, mediaType: String) {
        let want = want == .none ? Compression.gzip : want
        let wantType = want == .zstd ? MediaType.ociLayerZstd : MediaType.ociLayerGzip
        let row = try await read { db -> (String, String, Int64)? in
            guard let r = try Row.fetchOne(db, sql: """
                SELECT lb.diff_id, lb.compression, b.size FROM layer_blobs lb JOIN blobs b ON b.digest = lb.blob_digest WHERE lb.blob_digest = ?
                """, arguments: [blob.string]) else { return nil }
            return (r["diff_id"], r["compression"], r["size"])
        }
        guard let (diffID, compression, size) = row else { throw StrataError(.blobNotFound, "layer blob \(blob) is not in the store") }
        if compression != "none" {
            return (blob, size, compression == "gzip" ? MediaType.ociLayerGzip : MediaType.ociLayerZstd)
        }
        if let existing = try await read({ db -> (String, Int64)? in
            guard let r = try Row.fetchOne(db, sql: """
                SELECT lb.blob_digest, b.size FROM layer_blobs lb JOIN blobs b ON b.digest = lb.blob_digest
                WHERE lb.diff_id = ? AND lb.compression = ? LIMIT 1
                """, arguments: [diffID, want.rawValue]) else { return nil }
            return (r["blob_digest"], r["size"])
        }), blobs.exists(try Digest(existing.0)) {
            return (try Digest(existing.0), existing.1, wantType)
        }
        let session = try blobs.newSession()
        defer { session.remove() }
        let w = try session.newWriter(decodeCompressed: false)
        guard let enc = want == .zstd ? strata_zstd_encoder_new(3) : strata_gzip_encoder_new(6) else {
            throw StrataError(.internalError, "cannot start a \(want.rawValue) encoder")
        }
        defer { strata_encoder_free(enc) }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { out.deallocate() }
        func pump(_ input: UnsafeRawBufferPointer, finish: Bool) throws {
            var base = input.baseAddress
            var left = input.count
            var done: Int32 = 0
            repeat {
                var consumed = 0, produced = 0
                if strata_encoder_step(enc, base, left, &consumed, out.baseAddress, out.count, &produced, finish ? 1 : 0, &done) != 0 {
                    throw StrataError(.internalError, "\(want.rawValue) compression of \(blob) failed")
                }
                if produced > 0 { try w.write(UnsafeRawBufferPointer(rebasing: out[0..<produced])) }
                base = base.map { $0 + consumed }
                left -= consumed
            } while left > 0 || (finish && done == 0)
        }
        try blobs.open(blob).forEachChunk { try pump($0, finish: false) }
        try pump(UnsafeRawBufferPointer(start: nil, count: 0), finish: true)
        let file = try w.finish()
        let r = file.result
        let lease = try await createLease("compress", refs: [r.digest.string])
        do {
            let lock = try await FileLock.acquire(paths.blobsLock, mode: .shared)
            defer { withExtendedLifetime(lock) {} }
            try session.commit(file, name: "\(want.rawValue) of \(blob)")
            try session.syncBlobDirectory()
            let t = now()
            try await write(untracked: { db in try db.execute(sql: "DELETE FROM leases WHERE id = ?", arguments: [lease]) }) { db in
                try db.execute(sql: "INSERT OR IGNORE INTO blobs(digest, size, media_type, created_at) VALUES (?, ?, ?, ?)",
                               arguments: [r.digest.string, r.size, wantType, t])
                try db.execute(sql: "INSERT OR IGNORE INTO layer_blobs(blob_digest, diff_id, compression, uncompressed_size) VALUES (?, ?, ?, ?)",
                               arguments: [r.digest.string, diffID, want.rawValue, size])
            }
        } catch {
            await dropLease(lease)
            throw error
        }
        return (r.digest, r.size, wantType)
    }
}
