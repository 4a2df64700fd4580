import Foundation

/// The files of a container's log as a reader goes through them (``ContainerLogReader``,
/// ``ContainerLogLineReader``): its rotated files, the oldest first (``LogRotation``), then
/// the current one, each with its `.times` file. All are opened at once, so a rotation while
/// they are read moves none of them; at the end of the current file a reader moves on to a
/// new current file once the writer has rotated (the path then names another file).
/// Used under its reader's lock.
final class LogFiles: @unchecked Sendable {
    private let path: String
    private var queue: [(log: FileHandle, times: FileHandle?)]
    private(set) var log: FileHandle
    private(set) var times: FileHandle?

    /// The log at `path`; nil when there is none (the container never ran).
    init?(path: String) {
        var rotated: [(FileHandle, FileHandle?)] = []
        var k = 1
        while let h = FileHandle(forReadingAtPath: LogRotation.rotated(path, k)) {
            rotated.insert((h, FileHandle(forReadingAtPath: LogRotation.rotated(path, k) + ".times")), at: 0)
            k += 1
        }
        guard let current = FileHandle(forReadingAtPath: path) else {
            for (l, t) in rotated { try? l.close(); try? t?.close() }
            return nil
        }
        rotated.append((current, FileHandle(forReadingAtPath: path + ".times")))
        self.path = path
        let first = rotated.removeFirst()
        self.log = first.0
        self.times = first.1
        self.queue = rotated
    }

    deinit {
        close()
    }

    func close() {
        for h in [log] + queue.map(\.log) { try? h.close() }
        for h in [times] + queue.map(\.times) { try? h?.close() }
        queue = []
    }

    /// The next piece of the log, at most `count` bytes, and whether it starts a file of its
    /// own (its times and offsets start over); empty at the end of what is written so far.
    func read(upToCount count: Int) throws -> (data: Data, newFile: Bool) {
        var newFile = false
        while true {
            let data = try log.read(upToCount: count) ?? Data()
            if !data.isEmpty { return (data, newFile) }
            if !queue.isEmpty {
                let next = queue.removeFirst()
                switchTo(next.log, next.times)
                newFile = true
                continue
            }
            // The current file, read to its end: rotated away meanwhile, the path names a new one.
            var was = stat(), now = stat()
            guard fstat(log.fileDescriptor, &was) == 0, stat(path, &now) == 0, was.st_ino != now.st_ino || was.st_dev != now.st_dev,
                  let h = FileHandle(forReadingAtPath: path) else {
                return (Data(), newFile)
            }
            switchTo(h, FileHandle(forReadingAtPath: path + ".times"))
            newFile = true
        }
    }

    private func switchTo(_ l: FileHandle, _ t: FileHandle?) {
        try? log.close()
        try? times?.close()
        log = l
        times = t
    }
}
