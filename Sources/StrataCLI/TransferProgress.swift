import Foundation
import OCI
import StrataRegistry

/// Draws pull/push progress on stderr: on a terminal one bar per blob, redrawn in place
/// (`a1b2c3d4e5f6: Downloading [=====>      ]  12.3MB/45.6MB`); otherwise one line per
/// blob when it is done (`a1b2c3d4e5f6: Pull complete`). `-q` draws nothing.
final class TransferProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let tty: Bool
    private let verb: String
    private var order: [Digest] = []
    private var lines: [Digest: String] = [:]
    private var drawn = 0
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
        lock.withLock {
            switch event {
            case .started(let d, let size):
                set(d, bar(d, done: 0, size: size))
            case .advanced(let d, let done, let size):
                set(d, bar(d, done: done, size: size))
            case .finished(let d, _, let status):
                let line = "\(d.shortHex): \(status)"
                if tty { set(d, line) } else { write(line + "\n") }
            case .message(let m):
                if tty { redraw(extra: m) } else { write(m + "\n") }
            }
        }
    }

    private func bar(_ d: Digest, done: Int64, size: Int64) -> String {
        return "\(d.shortHex): \(verb) \(Units.bar(done, of: size)) \(Units.size(done))/\(Units.size(size))"
    }

    private func set(_ d: Digest, _ line: String) {
        guard tty else { return }
        if lines[d] == nil { order.append(d) }
        lines[d] = line
        redraw(extra: nil)
    }

    /// Moves up over what was drawn and draws every line again (ANSI: cursor up, erase line).
    private func redraw(extra: String?) {
        var out = drawn > 0 ? "\u{1B}[\(drawn)A" : ""
        if let extra {
            // A message goes above the bars, which are then drawn again below it.
            out += "\u{1B}[2K\(extra)\n"
        }
        for d in order { out += "\u{1B}[2K\(lines[d] ?? "")\n" }
        drawn = order.count
        write(out)
    }
}
