import Foundation
import Synchronization

/// One line of a container's output, as `docker logs` counts and shows them.
public struct ContainerLogLine: Sendable, Hashable {
    public var stream: ContainerStream
    /// The bytes, with the line's `\n`; without one for the last line of a run that did not
    /// end it, or for each 64 KiB piece of a longer line.
    public var data: Data
    /// When the container wrote it; nil in a log kept before strata recorded times.
    public var time: Date?

    public init(stream: ContainerStream, data: Data, time: Date?) {
        self.stream = stream
        self.data = data
        self.time = time
    }
}

/// A container's log read as lines (``Store/logLines(of:)``): each stream is split at its
/// newlines, lines in the order they were completed, each with the time of the output that
/// ended it (from `container.log.times`, see ``ContainerLog``). Reads go on from where the
/// last one stopped, so a follower of a running container calls ``next(last:toEnd:)`` again
/// as the run appends.
///
/// ```swift
/// if let log = try await store.logLines(of: "job") {
///     for line in try log.next(last: 2, toEnd: true) { print(line.time as Any, line.data) }  // docker logs --tail 2
/// }
/// ```
public final class ContainerLogLineReader: Sendable {
    /// The longest piece of a line kept waiting for its newline.
    static let maxLine = 64 << 10

    private struct State {
        /// Log bytes read and not yet parsed, and the offset in the log of their first byte.
        var buffer = Data()
        var offset: UInt64 = 0
        /// Times entries read and not yet used, and the first one taken from them.
        var times = Data()
        var peeked: (offset: UInt64, nanos: UInt64)?
        /// Each stream's line so far, and the time of its last piece.
        var pending: [ContainerStream: (data: Data, time: Date?)] = [:]
    }

    private let files: LogFiles
    private let state = Mutex(State())
    /// The container's ID.
    public let id: String

    init(files: LogFiles, id: String) {
        self.files = files
        self.id = id
    }

    /// The lines completed since the last call, in order; with `last`, only the last `last`
    /// of them (`docker logs --tail`), reading the log to its current end; without, at most
    /// about 1 MiB of the log per call (call again until it returns nothing). With `toEnd`
    /// (the run is over), lines left without a newline at the log's end are lines too.
    public func next(last: Int? = nil, toEnd: Bool = false) throws -> [ContainerLogLine] {
        try state.withLock { s in
            var lines: [ContainerLogLine] = []
            func emit(_ l: ContainerLogLine) {
                lines.append(l)
                if let last, lines.count > max(last, 0) + 1024 {
                    lines.removeFirst(lines.count - max(last, 0))
                }
            }
            var read = 0
            var atEnd = false
            while last != nil || read < 1 << 20 {
                let chunk: Data
                do {
                    let (data, newFile) = try files.read(upToCount: 64 << 10)
                    if newFile {
                        // A file of its own: offsets and times start over (a record the last
                        // file left unfinished is dropped).
                        s.buffer = Data()
                        s.offset = 0
                        s.times = Data()
                        s.peeked = nil
                    }
                    chunk = data
                } catch {
                    throw StrataError(.io, "cannot read the log of \(id): \(error.localizedDescription)", cause: error)
                }
                if chunk.isEmpty {
                    atEnd = true
                    break
                }
                read += chunk.count
                s.buffer.append(chunk)
                parse(&s, emit)
            }
            if toEnd && atEnd {
                for stream in [ContainerStream.stdout, .stderr] {
                    if let p = s.pending.removeValue(forKey: stream), !p.data.isEmpty {
                        emit(ContainerLogLine(stream: stream, data: p.data, time: p.time))
                    }
                }
            }
            if let last { return Array(lines.suffix(max(last, 0))) }
            return lines
        }
    }

    /// Splits the complete records in the buffer into lines.
    private func parse(_ s: inout State, _ emit: (ContainerLogLine) -> Void) {
        var start = s.buffer.startIndex
        while s.buffer.endIndex - start >= 8 {
            let h = s.buffer[start..<start + 8]
            let n = Int(h[h.startIndex + 4]) << 24 | Int(h[h.startIndex + 5]) << 16 | Int(h[h.startIndex + 6]) << 8 | Int(h[h.startIndex + 7])
            guard s.buffer.endIndex - start >= 8 + n else { break }
            let stream = ContainerStream(rawValue: h[h.startIndex]) ?? .stdout
            let time = self.time(&s, at: s.offset + UInt64(start - s.buffer.startIndex))
            var line = s.pending[stream]?.data ?? Data()
            var rest = s.buffer[(start + 8)..<(start + 8 + n)]
            while let nl = rest.firstIndex(of: UInt8(ascii: "\n")) {
                line.append(rest[rest.startIndex...nl])
                emit(ContainerLogLine(stream: stream, data: line, time: time))
                line = Data()
                rest = rest[(nl + 1)...]
            }
            line.append(rest)
            while line.count >= Self.maxLine {
                emit(ContainerLogLine(stream: stream, data: Data(line.prefix(Self.maxLine)), time: time))
                line = Data(line.dropFirst(Self.maxLine))
            }
            s.pending[stream] = (line, time)
            start += 8 + n
        }
        s.offset += UInt64(start - s.buffer.startIndex)
        s.buffer = Data(s.buffer[start...])
    }

    /// The time recorded for the record at `offset` (the last entry naming it), or nil.
    private func time(_ s: inout State, at offset: UInt64) -> Date? {
        var found: UInt64?
        while true {
            if s.peeked == nil {
                if s.times.count < 16, let more = try? files.times?.read(upToCount: 64 << 10), !more.isEmpty { s.times.append(more) }
                guard s.times.count >= 16 else { break }
                let b = Array(s.times.prefix(16))
                var o: UInt64 = 0, t: UInt64 = 0
                for i in 0..<8 {
                    o = o << 8 | UInt64(b[i])
                    t = t << 8 | UInt64(b[8 + i])
                }
                s.times = Data(s.times.dropFirst(16))
                s.peeked = (o, t)
            }
            guard let p = s.peeked, p.offset <= offset else { break }
            if p.offset == offset { found = p.nanos }
            s.peeked = nil
        }
        return found.map { Date(timeIntervalSince1970: Double($0 / 1_000_000_000) + Double($0 % 1_000_000_000) / 1e9) }
    }
}

extension Store {
    /// The container's log as lines (``ContainerLogLineReader``); nil when it never ran.
    public func logLines(of ref: String) async throws -> ContainerLogLineReader? {
        let c = try await container(ref)
        try Self.requireLog(c)
        guard let files = LogFiles(path: logPath(c.id)) else { return nil }
        return ContainerLogLineReader(files: files, id: c.id)
    }
}
