import Foundation
import Synchronization
import GRDB

/// A blob as the loader sees it: either spooled into ingest/ from the input, or already
/// in the store (then the input's copy was never read).
enum SourceBlob: Sendable {
    case spooled(IngestedFile)
    case stored(DigestResult)

    var result: DigestResult {
        switch self {
        case .spooled(let f): return f.result
        case .stored(let r): return r
        }
    }
}

/// The files of an image archive or layout directory, by cleaned relative path.
protocol LoadSource: AnyObject {
    var session: IngestSession { get }
    /// How errors name the input.
    var name: String { get }
    func has(_ path: String) -> Bool
    /// The blob at `path`, hashed in one pass (and spooled unless the store already has it).
    func blob(_ path: String) throws -> SourceBlob
}

extension LoadSource {
    /// Reads a small metadata file (JSON) from the source.
    func readSmall(_ path: String, store: BlobStore) throws -> Data {
        switch try blob(path) {
        case .spooled(let f):
            return try FileReader(path: f.path, what: "\(path) in \(name)").readAll(limit: 32 << 20, what: "\(path) in \(name)")
        case .stored(let r):
            return try store.readSmall(r.digest)
        }
    }
}

/// Looks up what the store already knows about a blob, so a second load skips it.
struct KnownBlobs {
    let db: DatabasePool

    func lookup(_ d: OCI.Digest, blobs: BlobStore) -> DigestResult? {
        guard blobs.exists(d) else { return nil }
        return try? db.read { db -> DigestResult? in
            guard let size = try Int64.fetchOne(db, sql: "SELECT size FROM blobs WHERE digest = ?", arguments: [d.string]) else { return nil }
            if let row = try Row.fetchOne(db, sql: "SELECT diff_id, compression, uncompressed_size FROM layer_blobs WHERE blob_digest = ?", arguments: [d.string]),
               let diff = try? OCI.Digest(row["diff_id"] as String), let c = Compression(rawValue: row["compression"]) {
                return DigestResult(digest: d, size: size, compression: c, diffID: diff, uncompressedSize: row["uncompressed_size"])
            }
            return DigestResult(digest: d, size: size, compression: .none, diffID: d, uncompressedSize: size)
        }
    }
}

/// If `path` is `blobs/sha256/<hex>`, the digest it names.
func digestNamed(byPath path: String) -> OCI.Digest? {
    let parts = path.split(separator: "/")
    guard parts.count == 3, parts[0] == "blobs" else { return nil }
    return try? OCI.Digest("\(parts[1]):\(parts[2])")
}

/// A tar stream (optionally compressed as a whole), read once from start to end.
/// Every regular file is spooled into the ingest session as it streams past, except
/// `blobs/sha256/<hex>` entries the store already holds.
final class TarSource: LoadSource, SpoolsData {
    let name: String
    let session: IngestSession
    private enum Item { case blob(SourceBlob), link(String) }
    private var items: [String: Item] = [:]

    init(path: String, name: String, session: IngestSession, known: KnownBlobs, blobs: BlobStore) throws {
        self.name = name
        self.session = session
        try read(ArchiveReader(path: path, name: name), file: path, known: known, blobs: blobs)
    }

    /// Reads a tar as it arrives through `stream` (a request body): each member is hashed
    /// and spooled as it passes, with no copy of the whole input in between. Returns once
    /// the stream reached its end; throws when it ended early.
    init(stream: any ByteStream, name: String, session: IngestSession, known: KnownBlobs, blobs: BlobStore) throws {
        self.name = name
        self.session = session
        try read(ArchiveReader(stream: stream, name: name), file: nil, known: known, blobs: blobs)
        // What follows the tar's end (padding), up to the body's end: a load is committed
        // only for a body that arrived whole.
        try stream.drain()
    }

    /// Reads every entry; members of an uncompressed `file` are hashed and copied afterwards,
    /// in parallel, from their offsets.
    private func read(_ reader: ArchiveReader, file: String?, known: KnownBlobs, blobs: BlobStore) throws {
        var contiguous: [ParallelIngest.Job] = []
        while let entry = try reader.next() {
            switch entry.kind {
            case .file:
                if let d = digestNamed(byPath: entry.path), let r = known.lookup(d, blobs: blobs), r.size == entry.size {
                    try reader.skipData()
                    items[entry.path] = .blob(.stored(r))
                    continue
                }
                if let offset = entry.dataOffset {
                    // An uncompressed file: hash and copy this entry later, in parallel with others.
                    contiguous.append(ParallelIngest.Job(path: entry.path, offset: offset, size: entry.size))
                    try reader.skipData()
                    continue
                }
                let w = try session.newWriter(sizeHint: entry.size, diffIDChecked: true)
                try reader.readData { try w.write($0) }
                items[entry.path] = .blob(.spooled(try w.finish()))
            case .symlink, .hardlink:
                guard let t = entry.linkTarget else { continue }
                let target = entry.kind == .symlink
                    ? try ArchivePath.resolve(t, from: entry.path, in: name)
                    : try ArchivePath.clean(t, in: name)
                items[entry.path] = .link(target)
            case .directory, .other:
                try reader.skipData()
            }
        }
        guard let file else { return }
        for (p, f) in try ParallelIngest.run(contiguous, input: file, name: name, session: session) {
            items[p] = .blob(.spooled(f))
        }
    }

    func has(_ path: String) -> Bool { items[path] != nil }

    func blob(_ path: String) throws -> SourceBlob {
        var p = path
        for _ in 0..<16 {
            switch items[p] {
            case .blob(let b)?: return b
            case .link(let t)?: p = t
            case nil: throw StrataError(.blobNotFound, "\(name) has no file \"\(Digest.clip(path))\"")
            }
        }
        throw StrataError(.unsafePath, "\(name): too many levels of links at \"\(Digest.clip(path))\"")
    }
}

/// An OCI image layout directory; files are hashed and spooled only when asked for.
final class DirectorySource: LoadSource, SpoolsData {
    let name: String
    private let root: String
    let session: IngestSession
    private let known: KnownBlobs
    private let blobs: BlobStore
    private var cache: [String: SourceBlob] = [:]
    /// The directory is scratch space of the store: hash files in place and move them.
    private let consume: Bool

    init(path: String, session: IngestSession, known: KnownBlobs, blobs: BlobStore, consume: Bool = false) throws {
        self.consume = consume
        guard let real = realpath(path, nil) else {
            throw StrataError.system("cannot open \(path)")
        }
        root = String(cString: real)
        free(real)
        name = path
        self.session = session
        self.known = known
        self.blobs = blobs
    }

    /// Resolves a relative path inside the directory, refusing symlinks that lead out (law 5).
    private func resolve(_ path: String) throws -> String? {
        let full = root + "/" + path
        guard let real = realpath(full, nil) else { return nil }
        defer { free(real) }
        let r = String(cString: real)
        guard r.hasPrefix(root + "/") else {
            throw StrataError(.unsafePath, "unsafe path \"\(path)\" in \(name): it leads outside the directory")
        }
        return r
    }

    func has(_ path: String) -> Bool {
        if consume, let d = digestNamed(byPath: path), known.lookup(d, blobs: blobs) != nil { return true }
        return (try? resolve(path)) != nil
    }

    func blob(_ path: String) throws -> SourceBlob {
        if let b = cache[path] { return b }
        // A pull leaves out blobs the store already has.
        if consume, let d = digestNamed(byPath: path), let r = known.lookup(d, blobs: blobs), (try? resolve(path)) == nil {
            cache[path] = .stored(r)
            return .stored(r)
        }
        guard let full = try resolve(path) else {
            throw StrataError(.blobNotFound, "\(name) has no file \"\(Digest.clip(path))\"")
        }
        if let d = digestNamed(byPath: path), let r = known.lookup(d, blobs: blobs) {
            var st = stat()
            if stat(full, &st) == 0, Int64(st.st_size) == r.size {
                cache[path] = .stored(r)
                return .stored(r)
            }
        }
        let reader = try FileReader(path: full, what: "\(path) in \(name)")
        let b: SourceBlob
        if consume {
            let digester = StreamDigester(indexTo: session.newIndexSpoolPath(), checkTrailers: false)
            try reader.forEachChunk { digester.update($0) }
            session.markUnsynced(full)
            b = .spooled(IngestedFile(path: full, result: digester.finish()))
        } else {
            var st = stat()
            let size: Int64? = fstat(reader.fd, &st) == 0 ? Int64(st.st_size) : nil
            let w = try session.newWriter(sizeHint: size, diffIDChecked: true)
            try reader.forEachChunk { try w.write($0) }
            b = .spooled(try w.finish())
        }
        cache[path] = b
        return b
    }
}

extension SpoolsData where Self: LoadSource {
    func spool(_ data: Data) throws -> SourceBlob {
        try session.spool(data)
    }
}

extension IngestSession {
    /// Writes generated bytes (a manifest, a config) as a temp blob.
    func spool(_ data: Data) throws -> SourceBlob {
        let w = try newWriter(decodeCompressed: false)
        try data.withUnsafeBytes { try w.write($0) }
        return .spooled(try w.finish())
    }
}

/// Hashes and copies entries of an uncompressed archive file into the ingest session on
/// every core at once: each entry is read with pread from its offset, decompressed and
/// hashed in one pass (law 6: one 1 MiB buffer per worker).
enum ParallelIngest {
    struct Job: Sendable {
        var path: String
        var offset: Int64
        var size: Int64
    }

    static func run(_ jobs: [Job], input: String, name: String, session: IngestSession) throws -> [(String, IngestedFile)] {
        guard !jobs.isEmpty else { return [] }
        let order = jobs.indices.sorted { jobs[$0].size > jobs[$1].size }  // biggest first, for balance
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, order.count))
        let state = State(count: jobs.count)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let fd = Glibc.open(input, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                state.fail(StrataError.system("cannot open \(name)"))
                return
            }
            defer { close(fd) }
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buf.deallocate() }
            while let i = state.next(order) {
                let job = jobs[i]
                do {
                    let w = try session.newWriter(sizeHint: job.size, diffIDChecked: true)
                    var done: Int64 = 0
                    while done < job.size {
                        let want = Int(min(Int64(buf.count), job.size - done))
                        let n = pread(fd, buf.baseAddress, want, off_t(job.offset + done))
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else {
                            throw StrataError(.corruptData, "\(name) is truncated: \(job.path) ends early")
                        }
                        try w.write(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                        done += Int64(n)
                    }
                    state.finish(i, job.path, try w.finish())
                } catch {
                    state.fail(error)
                }
            }
        }
        return try state.results()
    }

    /// Shared between the workers, behind a lock.
    private final class State: Sendable {
        private struct Value {
            var cursor = 0
            var out: [(String, IngestedFile)?]
            var error: (any Error)?
        }
        private let value: Mutex<Value>

        init(count: Int) { value = Mutex(Value(out: Array(repeating: nil, count: count))) }

        func next(_ order: [Int]) -> Int? {
            value.withLock { v in
                guard v.error == nil, v.cursor < order.count else { return nil }
                defer { v.cursor += 1 }
                return order[v.cursor]
            }
        }

        func finish(_ i: Int, _ path: String, _ f: IngestedFile) { value.withLock { $0.out[i] = (path, f) } }
        func fail(_ e: any Error) { value.withLock { if $0.error == nil { $0.error = e } } }

        func results() throws -> [(String, IngestedFile)] {
            let (out, error) = value.withLock { ($0.out, $0.error) }
            if let error { throw error }
            return out.compactMap { $0 }
        }
    }
}
