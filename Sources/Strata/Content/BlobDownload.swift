import Foundation
import Synchronization
import GRDB

/// A lease held by a transfer (a registry pull) on every blob it will need, from before the
/// first byte arrives until the image rows are committed. gc keeps what it holds; a killed
/// process's hold simply expires, and the next gc after that removes what it had downloaded.
package struct BlobHold: Sendable {
    /// The lease ID (`strata lease ls`).
    public let id: String
}

/// One blob being downloaded straight into the store.
///
/// Bytes go to a temp file in its own ingest session and are hashed as they arrive: the
/// stored digest and, for a compressed layer, the digest of the decompressed stream (the
/// diffID) in the same pass, so nothing is read twice. ``commit()`` checks the digest and
/// size against the descriptor (law 3), makes the file durable, moves it into `blobs/` and
/// records it (law 1). While a download is in progress it holds a per-blob lock, so two
/// pulls that share a layer download it once.
///
/// ```swift
/// if let dl = try await store.beginDownload(descriptor, hold: hold) {
///     for try await chunk in body { try chunk.withUnsafeBytes { try dl.write($0) } }
///     try await dl.commit()
/// }
/// ```
package final class BlobDownload: Sendable {
    /// What the bytes must hash to.
    public let descriptor: Descriptor
    /// Bytes received so far (the offset a resumed request starts from).
    public var received: Int64 { state.withLock { $0.received } }
    private let store: Store
    private let session: IngestSession
    private let lock: BlobDownloadLock
    private let name: String
    /// The writer and what it has been given. One task writes at a time; the mutex makes
    /// that a checked fact rather than a promise (uncontended, it costs a few nanoseconds
    /// per 64 kB chunk).
    private let state: Mutex<State>

    private struct State {
        var received: Int64 = 0
        var writer: BlobWriter
        /// Network chunks are small (~64 kB); hashing and writing go 1 MiB at a time
        /// (measured: writing each chunk where it lies, without this copy, is slower).
        /// Allocated on first use: a writer that gathers pieces itself (direct I/O) needs none.
        var gathering: UnsafeMutableRawBufferPointer?
        var buffered = 0

        mutating func flush() throws {
            guard buffered > 0, let buffer = gathering else { return }
            try writer.write(UnsafeRawBufferPointer(rebasing: buffer[0..<buffered]))
            buffered = 0
        }
    }

    init(descriptor: Descriptor, store: Store, session: IngestSession, lock: BlobDownloadLock, name: String) throws {
        self.descriptor = descriptor
        self.store = store
        self.session = session
        self.lock = lock
        self.name = name
        let writer = try session.newWriter(decodeCompressed: MediaType.isLayer(descriptor.mediaType), sizeHint: descriptor.size, diffIDChecked: true)
        state = Mutex(State(writer: writer))
    }

    deinit {
        state.withLock { $0.gathering?.deallocate() }
        session.remove()
        lock.release()
    }

    /// Appends bytes; more than the descriptor's size is an error naming the blob.
    public func write(_ buf: UnsafeRawBufferPointer) throws {
        let limit = descriptor.size, digest = descriptor.digest, name = self.name
        try state.withLock { (s: inout State) throws -> Void in
            guard s.received + Int64(buf.count) <= limit else {
                throw StrataError(.sizeMismatch, "blob \(digest) from \(name) is larger than its \(limit) bytes")
            }
            if s.writer.gathers {
                try s.writer.write(buf)
                s.received += Int64(buf.count)
                return
            }
            let buffer = s.gathering ?? UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            s.gathering = buffer
            var rest = buf
            while !rest.isEmpty {
                let n = min(rest.count, buffer.count - s.buffered)
                UnsafeMutableRawBufferPointer(rebasing: buffer[s.buffered..<s.buffered + n]).copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[0..<n]))
                s.buffered += n
                rest = UnsafeRawBufferPointer(rebasing: rest[n...])
                if s.buffered == buffer.count { try s.flush() }
            }
            s.received += Int64(buf.count)
        }
    }

    /// Drops the bytes received so far (the server ignored a Range request and sent it all).
    public func restart() throws {
        let session = self.session, mediaType = descriptor.mediaType, size = descriptor.size
        try state.withLock { (s: inout State) throws -> Void in
            s.buffered = 0
            _ = try s.writer.finish()
            s.writer = try session.newWriter(decodeCompressed: MediaType.isLayer(mediaType), sizeHint: size, diffIDChecked: true)
            s.received = 0
        }
    }

    /// Verifies the bytes and moves them into the store, recording the blob (and, for a
    /// layer, the diffID computed while it arrived).
    public func commit() async throws {
        let file = try state.withLock { (s: inout State) throws in
            try s.flush()
            return try s.writer.finish()
        }
        let r = file.result
        let d = descriptor
        guard r.size == d.size, r.digest == d.digest else {
            throw StrataError(r.size == d.size ? .digestMismatch : .sizeMismatch,
                              "blob \(d.digest) from \(name): got \(r.size) bytes hashing to \(r.digest), expected \(d.size) bytes")
        }
        let isLayer = MediaType.isLayer(d.mediaType)
        if isLayer, let err = r.decodeError {
            throw StrataError(.corruptData, "layer \(d.digest) from \(name) cannot be decompressed: \(err)")
        }
        // fsync, rename and the directory fsync block for a while: off the cooperative pool
        // (two threads on two cores), so the other downloads keep reading meanwhile.
        let session = self.session, lockPath = store.paths.blobsLock, what = "blob \(d.digest) from \(name)"
        let held = try await offload { () throws -> FileLock in
            let lock = try FileLock(path: lockPath, mode: .shared)
            try session.commit(file, expected: d.digest, expectedSize: d.size, name: what)
            try session.syncBlobDirectory()
            return lock
        }
        defer { withExtendedLifetime(held) {} }
        let t = now()
        try await store.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO blobs(digest, size, media_type, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [r.digest.string, r.size, d.mediaType, t])
            if isLayer {
                try db.execute(sql: """
                    INSERT OR IGNORE INTO layer_blobs(blob_digest, diff_id, compression, uncompressed_size) VALUES (?, ?, ?, ?)
                    """, arguments: [r.digest.string, r.diffID.string, r.compression.rawValue, r.uncompressedSize])
            }
        }
        CrashPoint.hit("pull.after-blob")
        // The file index was built in the same pass as the diffID; record it now, while its
        // spool is still in the session (a failure leaves the layer to be indexed lazily).
        if isLayer, let spool = r.index {
            try? await store.recordIndex([(r.diffID, spool)], requireLayer: false)
        }
    }
}

/// Runs blocking I/O (fsync, flock) on a Dispatch thread instead of the cooperative pool.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        DispatchQueue.global(qos: .userInitiated).async { c.resume(with: Result { try body() }) }
    }
}

/// `locks/download-<hex>.lock`, held (exclusive flock) while one process downloads a blob.
/// The holder unlinks the file before it lets go; a waiter that then gets the lock on the
/// unlinked file notices and takes the new one.
final class BlobDownloadLock: Sendable {
    private let lock: Mutex<FileLock?>

    init(_ lock: FileLock) { self.lock = Mutex(lock) }

    func release() {
        lock.withLock { held in
            guard let l = held else { return }
            if l.isStillInPlace { unlink(l.path) }
            held = nil
        }
    }
}

extension Store {
    /// Starts a lease on `digests` (blobs about to be downloaded), so gc keeps them until the
    /// rows naming them are committed and ``release(_:)`` is called.
    package func hold(_ digests: [Digest], for description: String) async throws -> BlobHold {
        BlobHold(id: try await createLease(description, refs: Set(digests.map(\.string)).sorted()))
    }

    /// Ends a hold; what it held stays only if something else names it.
    package func release(_ hold: BlobHold) async {
        await dropLease(hold.id)
    }

    /// Starts downloading a blob into the store, or returns nil when the store has it. When
    /// another process is downloading the same blob, waits for it to finish first, so a
    /// shared layer is downloaded once. `source` names where the bytes come from, for errors.
    package func beginDownload(_ descriptor: Descriptor, source: String) async throws -> BlobDownload? {
        if try await hasBlob(descriptor.digest) { return nil }
        let path = paths.locksDir.appendingPathComponent("download-\(descriptor.digest.encoded).lock").path
        while true {
            try Task.checkCancellation()
            if let l = try FileLock(tryPath: path) {
                guard l.isStillInPlace else { continue }
                let lock = BlobDownloadLock(l)
                if try await hasBlob(descriptor.digest) {
                    lock.release()
                    return nil
                }
                return try BlobDownload(descriptor: descriptor, store: self, session: blobs.newSession(), lock: lock, name: source)
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}
