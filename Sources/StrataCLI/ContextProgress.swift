import Foundation
import Synchronization
import StrataRegistry

/// Draws `Downloading context: URL [=====>     ] 120 B/240 B` on stderr: redrawn in place
/// on a terminal (at most ten times a second), one line at the end otherwise, nothing
/// when quiet.
final class ContextProgress: Sendable {
    private let url: String
    private let tty: Bool
    private let write: @Sendable (String) -> Void
    /// When the bar was last drawn, and the last figures (received, total).
    private let state = Mutex<(lastDraw: Double, got: Int64, total: Int64?)>((0, 0, nil))

    init(url: String, tty: Bool = isatty(STDERR_FILENO) == 1,
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.url = url
        self.tty = tty
        self.write = write
    }

    /// The callback to hand to ``Download/fetch(_:to:maxSize:progress:)``.
    var callback: Download.Progress { { [self] got, total in update(got, total) } }

    func update(_ got: Int64, _ total: Int64?) {
        state.withLock { s in
            (s.got, s.total) = (got, total)
            guard tty else { return }
            let t = Date().timeIntervalSince1970
            guard t - s.lastDraw >= 0.1 || got == total else { return }
            s.lastDraw = t
            write("\r\u{1B}[2K" + line(got, total))
        }
    }

    /// Ends the display: the final bar on a terminal, the one line otherwise.
    func finish() {
        state.withLock { write((tty ? "\r\u{1B}[2K" : "") + line($0.got, $0.total) + "\n") }
    }

    func line(_ got: Int64, _ total: Int64?) -> String {
        guard let total, total > 0 else { return "Downloading context: \(url) \(Units.size(got))" }
        return "Downloading context: \(url) \(Units.bar(got, of: total)) \(Units.size(got))/\(Units.size(total))"
    }
}
