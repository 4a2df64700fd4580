import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The terminal of one run of a container created with ``ContainerOptions/tty``
/// (`docker run -t`): a pseudo-terminal whose other side is the runtime's stdio. runc puts it
/// in raw mode and gives the container a terminal of its own, sized as this one and resized
/// on SIGWINCH. Output is one stream (logged as stdout); ``resize(rows:columns:)`` works while
/// the run goes on. Hand it to ``Store/start(_:hostNetwork:input:terminal:output:started:)``
/// to resize the run's terminal; without one, a run of a TTY container makes its own.
///
/// ```swift
/// let terminal = try ContainerTerminal(rows: 24, columns: 80)
/// async let status = store.start(c.id, terminal: terminal)
/// terminal.resize(rows: 50, columns: 132)
/// ```
public final class ContainerTerminal: Sendable {
    /// The master side (this process reads the output and writes the input there) and the
    /// runtime's side; -1 once closed.
    private let fds: Mutex<(master: Int32, slave: Int32)>
    /// The runtime's process, to tell it the size changed; 0 before it starts.
    private let runtimePID = Mutex<Int32>(0)

    /// `posix_openpt`, `unlockpt` and `ptsname` are not imported into Swift, nor are the
    /// ioctls behind them (`_IOR`/`_IOW` macros): their values on Linux's generic ioctl
    /// encoding (x86_64, arm64).
    private static let getPTYNumber: UInt = 0x8004_5430  // TIOCGPTN
    private static let setPTYLock: UInt = 0x4004_5431  // TIOCSPTLCK

    /// A new pseudo-terminal of the given size.
    public init(rows: UInt16 = 24, columns: UInt16 = 80) throws {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw StrataError.system("cannot open a pseudo-terminal (/dev/ptmx)") }
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard ioctl(master, Self.setPTYLock, &unlock) == 0, ioctl(master, Self.getPTYNumber, &number) == 0 else {
            let e = StrataError.system("cannot set up a pseudo-terminal")
            close(master)
            throw e
        }
        let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else {
            let e = StrataError.system("cannot open /dev/pts/\(number)")
            close(master)
            throw e
        }
        // Raw from the start, as runc makes its stdin terminal once it runs: output the
        // container writes before that is not translated (`\n` to `\r\n`) on this side.
        var mode = termios()
        if tcgetattr(slave, &mode) == 0 {
            cfmakeraw(&mode)
            _ = tcsetattr(slave, TCSANOW, &mode)
        }
        fds = Mutex((master, slave))
        resize(rows: rows, columns: columns)
    }

    deinit {
        fds.withLock { f in
            if f.master >= 0 { close(f.master) }
            if f.slave >= 0 { close(f.slave) }
        }
    }

    /// The size last set.
    public var size: (rows: UInt16, columns: UInt16) { lastSize.withLock { $0 } }
    private let lastSize = Mutex<(rows: UInt16, columns: UInt16)>((24, 80))

    /// Sets the terminal's size; the runtime passes it on to the container's terminal (the
    /// process gets SIGWINCH). Does nothing once the run ended.
    public func resize(rows: UInt16, columns: UInt16) {
        lastSize.withLock { $0 = (rows, columns) }
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        let ok = fds.withLock { f in f.slave >= 0 && ioctl(f.master, UInt(TIOCSWINSZ), &size) == 0 }
        let pid = runtimePID.withLock { $0 }
        if ok, pid > 0 { kill(pid, SIGWINCH) }
    }

    /// The runtime's side, for its stdin, stdout and stderr.
    func runtimeSide() -> FileHandle? {
        fds.withLock { $0.slave >= 0 ? FileHandle(fileDescriptor: $0.slave, closeOnDealloc: false) : nil }
    }

    /// A descriptor of the master side of its own (the reader closes it), or -1.
    func duplicateMaster() -> Int32 {
        fds.withLock { $0.master >= 0 ? fcntl($0.master, F_DUPFD_CLOEXEC, 0) : -1 }
    }

    func started(pid: Int32) {
        runtimePID.withLock { $0 = pid }
    }

    /// The runtime is gone: this side of the runtime's end closes, so the reader of the
    /// master sees the end (EIO) once the last process holding it is gone too.
    func runEnded() {
        runtimePID.withLock { $0 = 0 }
        fds.withLock { f in
            if f.slave >= 0 { close(f.slave) }
            f.slave = -1
        }
    }

    /// Copies what `input` gets into the terminal (the run's stdin), on a thread of its own,
    /// until the input's end or the terminal's.
    func forward(_ input: ContainerInput) {
        guard let from = input.processEnd() else { return }
        let source = fcntl(from.fileDescriptor, F_DUPFD_CLOEXEC, 0)
        let target = duplicateMaster()
        guard source >= 0, target >= 0 else {
            if source >= 0 { close(source) }
            if target >= 0 { close(target) }
            return
        }
        let t = Thread {
            var buffer = [UInt8](repeating: 0, count: 16 << 10)
            copying: while true {
                let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                var off = 0
                while off < n {
                    let w = buffer.withUnsafeBytes { write(target, $0.baseAddress.map { $0 + off }, n - off) }
                    if w < 0, errno == EINTR { continue }
                    if w <= 0 { break copying }
                    off += w
                }
            }
            close(source)
            close(target)
        }
        t.name = "strata-tty-input"
        t.start()
    }
}
