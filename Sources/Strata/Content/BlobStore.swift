import CArchive
import Foundation
import Synchronization

/// The content-addressed blob directory: `blobs/sha256/<hex>`, read-only files.
///
/// Writes go to `ingest/<id>/` first; a blob enters `blobs/` only after it is fully
/// written, fsynced and verified (law 1).
struct BlobStore: Sendable {
    let paths: StorePaths
    /// Buffers for direct I/O, reused from one large blob to the next.
    let buffers = AlignedBufferPool()

    /// Starts a new ingest session directory, locked against gc.
    func newSession() throws -> IngestSession {
        var lastError: Error?
        for _ in 0..<5 {
            let dir = paths.ingestDir.appendingPathComponent(UUID().uuidString.lowercased())
            do {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false)
            } catch {
                throw StrataError(.io, "cannot create ingest directory \(dir.path): \(error.localizedDescription)", cause: error)
            }
            // A gc with no grace period can take a brand-new directory before its lock is
            // held; then the lock is on a removed file and we start again.
            do {
                let session = try IngestSession(dir: dir, paths: paths, buffers: buffers)
                if session.isLocked { return session }
            } catch {
                lastError = error
            }
        }
        throw StrataError(.io, "cannot start an ingest session under \(paths.ingestDir.path)", cause: lastError)
    }

    func exists(_ d: Digest) -> Bool {
        access(paths.blob(d).path, F_OK) == 0
    }

    /// Opens a stored blob for reading.
    func open(_ d: Digest) throws -> FileReader {
        try FileReader(path: paths.blob(d).path, what: "blob \(d)")
    }

    /// Reads a small stored blob (a manifest, index or config) into memory.
    func readSmall(_ d: Digest, limit: Int = 32 << 20) throws -> Data {
        let r = try open(d)
        return try r.readAll(limit: limit, what: "blob \(d)")
    }
}

/// A directory under `ingest/` holding blobs being written. Removed when done.
/// While the session lives it holds a shared flock on `<dir>/lock`, so gc never removes a
/// session in use, whatever its grace period; a killed process releases it.
final class IngestSession: Sendable {
    let dir: URL
    let paths: StorePaths
    private let lock: FileLock
    /// The last temp file number, and the temp files written but not yet made durable.
    private let state = Mutex<(counter: Int, unsynced: [String])>((0, []))

    private let buffers: AlignedBufferPool?

    init(dir: URL, paths: StorePaths, buffers: AlignedBufferPool? = nil) throws {
        self.dir = dir
        self.paths = paths
        self.buffers = buffers
        lock = try FileLock(path: dir.appendingPathComponent("lock").path, mode: .shared)
    }

    var isLocked: Bool { lock.isStillInPlace }

    /// A new temp file in this session. Safe to call from several threads.
    /// - Parameters:
    ///   - sizeHint: the size the file will have, when known: its blocks are reserved up
    ///     front (see ``BlobWriter``).
    ///   - diffIDChecked: the caller compares the layer's diffID with an expected one, so
    ///     gzip's own CRC is skipped (``StreamDigester``).
    func newWriter(decodeCompressed: Bool = true, sizeHint: Int64? = nil, diffIDChecked: Bool = false) throws -> BlobWriter {
        let path: String = state.withLock {
            $0.counter += 1
            let p = dir.appendingPathComponent("\($0.counter)").path
            $0.unsynced.append(p)
            return p
        }
        return try BlobWriter(path: path, decodeCompressed: decodeCompressed, sizeHint: sizeHint, diffIDChecked: diffIDChecked,
                              buffers: buffers)
    }

    /// A fresh path in the session for a layer's index spool.
    func newIndexSpoolPath() -> String {
        state.withLock {
            $0.counter += 1
            return dir.appendingPathComponent("\($0.counter).index").path
        }
    }

    /// A file written into the session by someone else (a registry download) that must be
    /// made durable before it is renamed.
    func markUnsynced(_ path: String) { state.withLock { $0.unsynced.append(path) } }

    /// Makes every temp file of the session durable before any is renamed into blobs/
    /// (law 1). A few files are fsynced one by one; many small ones with one syncfs of the
    /// store's filesystem, which costs one journal commit instead of one per file.
    func makeDurable() throws {
        // Taken out under the lock, synced outside it; put back if the sync fails.
        let unsynced = state.withLock { s -> [String] in
            defer { s.unsynced.removeAll() }
            return s.unsynced
        }
        guard !unsynced.isEmpty else { return }
        do {
            try sync(unsynced)
        } catch {
            state.withLock { $0.unsynced = unsynced + $0.unsynced }
            throw error
        }
    }

    private func sync(_ unsynced: [String]) throws {
        if unsynced.count > 16 {
            let fd = Glibc.open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw StrataError.system("cannot open \(dir.path)") }
            defer { close(fd) }
            if strata_syncfs(fd) != 0 { throw StrataError.system("cannot sync the store's filesystem") }
        } else {
            for path in unsynced {
                let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
                if fd < 0 { continue }  // removed already (a blob the store had)
                defer { close(fd) }
                if fsync(fd) != 0 { throw StrataError.system("cannot fsync \(path)") }
            }
        }
    }

    /// Moves a verified temp file into `blobs/` (no-op when the blob is already there).
    /// Verification against `expected` happens before anything moves.
    @discardableResult
    func commit(_ file: IngestedFile, expected: Digest? = nil, expectedSize: Int64? = nil, name: String) throws -> Digest {
        let r = file.result
        if let expected, expected != r.digest, expected.algorithm == "sha256" {
            throw StrataError(.digestMismatch, "digest mismatch for \(name): expected \(expected), got \(r.digest)")
        }
        if let expectedSize, expectedSize != r.size {
            throw StrataError(.sizeMismatch, "size mismatch for \(name) (\(r.digest)): expected \(expectedSize) bytes, got \(r.size)")
        }
        let dest = paths.blob(r.digest).path
        if access(dest, F_OK) == 0 { return r.digest }
        try makeDurable()
        chmod(file.path, 0o444)
        if rename(file.path, dest) != 0 {
            throw StrataError.system("cannot move \(name) into the blob store")
        }
        return r.digest
    }

    /// fsyncs `blobs/sha256` so the renames are durable before rows name them.
    func syncBlobDirectory() throws {
        try fsyncDirectory(paths.blobsDir.path)
    }

    func remove() {
        try? FileManager.default.removeItem(at: dir)
    }
}

/// A finished temp file and what its bytes hashed to.
struct IngestedFile: Sendable {
    let path: String
    let result: DigestResult
}

/// Writes a temp file while hashing it in the same pass.
///
/// When the final size is known the file's blocks are reserved first (fallocate with
/// KEEP_SIZE): on ext4, writing into reserved blocks skips delayed allocation (writing and
/// fsyncing 20 files of 50 MB here: 0.6–0.8 s of system time without, 0.16–0.21 s with).
/// Files of 4 MiB or more of known size go through a ``DirectWriter`` (O_DIRECT).
final class BlobWriter {
    /// `STRATA_BENCH_NO_INDEX=1` turns indexing at ingest off, so tools/bench/index can
    /// measure what indexing costs (the layers are then indexed lazily on first use).
    static let indexingDisabled = ProcessInfo.processInfo.environment["STRATA_BENCH_NO_INDEX"] == "1"

    let path: String
    private var fd: Int32
    private let digester: StreamDigester
    private var written: Int64 = 0
    private var flushed: Int64 = 0
    /// Set for large files of known size on a filesystem with direct I/O.
    private var direct: DirectWriter?
    /// True when writes are gathered into large pieces here (direct I/O), so callers need
    /// not gather them first.
    var gathers: Bool { direct != nil }
    /// Files from this size on (when known in advance) bypass the page cache.
    static let directThreshold: Int64 = 4 << 20

    init(path: String, decodeCompressed: Bool, sizeHint: Int64? = nil, diffIDChecked: Bool = false,
         buffers: AlignedBufferPool? = nil) throws {
        self.path = path
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StrataError.system("cannot create \(path)")
        }
        if let sizeHint, sizeHint >= 1 << 20 { _ = strata_preallocate(fd, sizeHint) }  // best effort
        // Layers are indexed in the same pass (configs and manifests simply are not tars).
        let index = decodeCompressed && !BlobWriter.indexingDisabled
        let digester = StreamDigester(decodeCompressed: decodeCompressed, indexTo: index ? path + ".index" : nil,
                                      checkTrailers: !diffIDChecked)
        self.digester = digester
        if let sizeHint, sizeHint >= BlobWriter.directThreshold {
            direct = DirectWriter.make(fd: fd, path: path, pool: buffers) { digester.update($0) }
        }
    }

    deinit {
        direct = nil  // waits for its writes before the descriptor number can be reused
        if fd >= 0 { close(fd) }
    }

    func write(_ buf: UnsafeRawBufferPointer) throws {
        if let direct {
            try direct.write(buf)  // hashed there, a piece at a time
            written += Int64(buf.count)
            return
        }
        digester.update(buf)
        try writeAll(fd: fd, buf, path: path)
        written += Int64(buf.count)
        if written - flushed >= 8 << 20 {
            // Start writeback now, without waiting, so the final sync finds little to do.
            _ = strata_start_writeback(fd, flushed, written - flushed)
            flushed = written
        }
    }

    /// Closes the file and returns the digests. Durability comes from
    /// ``IngestSession/makeDurable()`` before the file is renamed into blobs/.
    func finish() throws -> IngestedFile {
        if let direct {
            self.direct = nil
            try direct.finish()
        }
        close(fd)
        fd = -1
        return IngestedFile(path: path, result: digester.finish())
    }
}

func writeAll(fd: Int32, _ buf: UnsafeRawBufferPointer, path: String) throws {
    guard var p = buf.baseAddress else { return }
    var left = buf.count
    while left > 0 {
        let n = Glibc.write(fd, p, left)
        if n < 0 {
            if errno == EINTR { continue }
            throw StrataError.system("cannot write \(path)")
        }
        p += n
        left -= n
    }
}

func fsyncDirectory(_ path: String) throws {
    let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw StrataError.system("cannot open directory \(path)") }
    defer { close(fd) }
    if fsync(fd) != 0 { throw StrataError.system("cannot fsync directory \(path)") }
}

/// Buffered sequential reads from a file.
final class FileReader {
    let path: String
    private(set) var fd: Int32

    init(path: String, what: String) throws {
        fd = Glibc.open(path.cPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw StrataError(.blobNotFound, "\(what) is missing (\(path))") }
            throw StrataError.system("cannot open \(what) (\(path))")
        }
        self.path = path
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Reads up to `buf.count` bytes; 0 at end of file.
    func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buf.baseAddress, buf.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw StrataError.system("cannot read \(path)")
        }
    }

    /// Calls `body` for each chunk until end of file.
    func forEachChunk(size: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = try read(into: buf)
            if n == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
    }

    func readAll(limit: Int, what: String) throws -> Data {
        var data = Data()
        try forEachChunk(size: 1 << 16) { chunk in
            if data.count + chunk.count > limit {
                throw StrataError(.invalidArgument, "\(what) is larger than \(limit) bytes")
            }
            data.append(contentsOf: chunk)
        }
        return data
    }
}
