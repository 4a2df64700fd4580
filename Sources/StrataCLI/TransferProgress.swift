import Foundation
import Synchronization
import OCI
import StrataRegistry

/// Draws pull/push progress on stderr: on a terminal one bar per blob, redrawn in place
/// (`a1b2c3d4e5f6: Downloading [=====>      ]  12.3MB/45.6MB`); otherwise one line per
/// blob when it is done (`a1b2c3d4e5f6: Pull complete`). `-q` draws nothing.
final class TransferProgress: Sendable {
    private let tty: Bool
    private let verb: String
    /// The blobs in first-seen order, each one's line, and how many lines are on screen.
    private struct Screen {
        var order: [Digest] = []
        var lines: [Digest: String] = [:]
        var drawn = 0
    }
    private let screen = Mutex(Screen())
    private let write: @Sendable (String) -> Void

    /// - Parameter verb: "Downloading" or "Pushing".
    init(verb: String, tty: Bool = isatty(STDERR_FILENO) == 1,
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.verb = verb
        self.tty = tty
        self.write = write
    }

    /// The callback to hand to ``RegistryOptions/progress``.
    var callback: @Sendable (TransferEvent) -> Void { { [self] in handle($0) } }

    func handle(_ event: TransferEvent) {
        screen.withLock { s in
            switch event {
            case .started(let d, let size):
                set(&s, d, bar(d, done: 0, size: size))
            case .advanced(let d, let done, let size):
                set(&s, d, bar(d, done: done, size: size))
            case .finished(let d, _, let status):
                let line = "\(d.shortHex): \(status)"
                if tty { set(&s, d, line) } else { write(line + "\n") }
            case .message(let m):
                if tty { redraw(&s, extra: m) } else { write(m + "\n") }
            }
        }
    }

    private func bar(_ d: Digest, done: Int64, size: Int64) -> String {
        return "\(d.shortHex): \(verb) \(Units.bar(done, of: size)) \(Units.size(done))/\(Units.size(size))"
    }

    private func set(_ s: inout Screen, _ d: Digest, _ line: String) {
        guard tty else { return }
        if s.lines[d] == nil { s.order.append(d) }
        s.lines[d] = line
        redraw(&s, extra: nil)
    }

    /// Moves up over what was drawn and draws every line again (ANSI: cursor up, erase line).
    private func redraw(_ s: inout Screen, extra: String?) {
        var out = s.drawn > 0 ? "\u{1B}[\(s.drawn)A" : ""
        if let extra {
            // A message goes above the bars, which are then drawn again below it.
            out += "\u{1B}[2K\(extra)\n"
        }
        for d in s.order { out += "\u{1B}[2K\(s.lines[d] ?? "")\n" }
        s.drawn = s.order.count
        write(out)
    }
}
