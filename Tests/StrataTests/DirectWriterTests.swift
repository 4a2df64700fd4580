import Foundation
import Testing
@testable import Strata

/// Direct I/O for large blobs and saves: every byte lands in the file, in order, whatever
/// the chunk sizes and wherever the last partial block falls; the digester sees the same
/// bytes; a filesystem without direct I/O still gets a correct file.
@Suite struct DirectWriterTests {
    /// Sizes around the 4 KiB alignment and the 1 MiB piece boundaries.
    static let sizes = [0, 1, 4095, 4096, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 12_345]

    private func random(_ n: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    private func writeInChunks(_ bytes: [UInt8], to w: DirectWriter) throws {
        var i = 0
        var step = 1
        while i < bytes.count {
            let n = min(step, bytes.count - i)
            try bytes[i..<i + n].withUnsafeBytes { try w.write($0) }
            i += n
            step = step * 7 % 300_007 + 1  // 1, 8, 57, … uneven sizes across every boundary
        }
    }

    @Test(arguments: [false, true]) func everyByteArrivesInOrder(onTmpfs: Bool) throws {
        let dir = try TempDir(parent: onTmpfs ? "/dev/shm" : nil)
        for size in Self.sizes {
            let bytes = random(size)
            let path = dir.file("f\(size)").path
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            #expect(fd >= 0)
            defer { close(fd) }
            let seen = Seen()
            if let w = DirectWriter.make(fd: fd, path: path, observe: { seen.bytes.append(contentsOf: $0) }) {
                try writeInChunks(bytes, to: w)
                try w.finish()
                #expect(seen.bytes == bytes, "observed bytes, size \(size)")
            } else {
                #expect(onTmpfs, "a regular ext4 file takes O_DIRECT")
                try bytes.withUnsafeBytes { try writeAll(fd: fd, $0, path: path) }
            }
            let back = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(back.count == size, "size \(size)")
            #expect(back == bytes, "content, size \(size)")
            // O_DIRECT is off again once the writer is done with the file.
            #expect(fcntl(fd, F_GETFL) & 0o40000 == 0)
        }
    }

    @Test func notARegularFileIsLeftToBufferedWrites() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(DirectWriter.make(fd: fds[1], path: "pipe", observe: { _ in }) == nil)
    }

    /// A large blob written through BlobWriter (direct I/O, preallocated) hashes to what
    /// sha256sum says and takes no more disk blocks than its size needs.
    @Test func largeBlobWriterMatchesSha256sum() throws {
        let dir = try TempDir()
        try bash("head -c 9437201 /dev/urandom > '\(dir.file("src").path)'")
        let src = dir.file("src").path
        let size = Int64(9_437_201)
        let w = try BlobWriter(path: dir.file("dst").path, decodeCompressed: false, sizeHint: size)
        try FileReader(path: src, what: "src").forEachChunk(size: 65_536) { try w.write($0) }
        let f = try w.finish()
        let want = try sh(["sha256sum", src]).stdout.prefix(64)
        #expect(f.result.digest.encoded == want)
        #expect(f.result.size == size)
        #expect(try sh(["cmp", src, f.path]).status == 0)
        var st = stat()
        #expect(stat(f.path, &st) == 0)
        #expect(Int64(st.st_size) == size)
    }

    /// The CRC-32 trailer is checked unless the caller verifies the diffID; without the
    /// check, a damaged trailer on intact data still yields the true diffID, and damaged
    /// data still yields a different one (which the caller then rejects).
    @Test func gzipTrailerCheckIsOptionalButTheDiffIDStillProvesTheContent() throws {
        let dir = try TempDir()
        try bash("""
            cd "\(dir.path)"
            head -c 300000 /dev/urandom > data
            gzip -1 -c data > good.gz
            n=$(stat -c %s good.gz)
            cp good.gz badcrc.gz; printf '\\x00\\x00\\x00\\x00' | dd of=badcrc.gz bs=1 seek=$((n - 8)) conv=notrunc 2>/dev/null
            cp good.gz baddata.gz; printf 'XXXX' | dd of=baddata.gz bs=1 seek=$((n / 2)) conv=notrunc 2>/dev/null
            """)
        let want = try sh(["sha256sum", dir.file("data").path]).stdout.prefix(64)
        func digest(_ name: String, check: Bool) throws -> DigestResult {
            let d = StreamDigester(checkTrailers: check)
            try FileReader(path: dir.file(name).path, what: name).forEachChunk { d.update($0) }
            return d.finish()
        }
        #expect(try digest("badcrc.gz", check: true).decodeError != nil)
        let unchecked = try digest("badcrc.gz", check: false)
        #expect(unchecked.decodeError == nil)
        #expect(unchecked.diffID.encoded == want)
        let damaged = try digest("baddata.gz", check: false)
        #expect(damaged.decodeError != nil || damaged.diffID.encoded != want)
        #expect(try digest("good.gz", check: true).diffID.encoded == want)
    }
}

/// Collects observed bytes (each collector is used from one thread at a time).
private final class Seen: @unchecked Sendable {
    var bytes: [UInt8] = []
}
