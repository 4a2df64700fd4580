#if canImport(Glibc)
import Glibc
#endif

/// A signal for a container's process (`docker kill -s`, an image's `STOPSIGNAL`), parsed as
/// Docker parses one: a name with or without `SIG` in any case (`TERM`, `sigterm`), a
/// number (`15`), or a real-time signal (`RTMIN+3`, `SIGRTMAX-1`).
///
/// ```swift
/// let s = try ContainerSignal("hup")      // s.number == 1, s.name == "SIGHUP"
/// ```
public struct ContainerSignal: Sendable, Hashable, CustomStringConvertible {
    /// The signal's number on Linux.
    public let number: Int32

    /// SIGTERM: what `docker stop` sends first unless the image says otherwise.
    public static let term = ContainerSignal(number: SIGTERM)
    /// SIGKILL: what `docker kill` sends by default, and `docker stop` after its timeout.
    public static let kill = ContainerSignal(number: SIGKILL)

    private init(number: Int32) { self.number = number }

    /// Linux's signal names without `SIG`, by number (the real-time ones are `RTMIN+n`).
    private static let names: [(String, Int32)] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7),
        ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14),
        ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21),
        ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28),
        ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ]
    private static let rtMin: Int32 = 34, rtMax: Int32 = 64

    /// Parses `text`; throws an invalid-argument error naming it when it is no signal.
    public init(_ text: String) throws {
        let bad = StrataError(.invalidArgument, "invalid signal: \"\(text)\" (a name such as SIGTERM or HUP, or a number from 1 to 64)")
        if let n = Int32(text) {
            guard n >= 1, n <= Self.rtMax else { throw bad }
            number = n
            return
        }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let hit = Self.names.first(where: { $0.0 == name }) {
            number = hit.1
            return
        }
        for (base, value, sign) in [("RTMIN", Self.rtMin, Int32(1)), ("RTMAX", Self.rtMax, Int32(-1))] where name.hasPrefix(base) {
            let rest = name.dropFirst(base.count)
            if rest.isEmpty { number = value; return }
            let op: Character = sign > 0 ? "+" : "-"
            guard rest.first == op, let k = Int32(rest.dropFirst()), k >= 0 else { throw bad }
            let n = value + sign * k
            guard n >= Self.rtMin, n <= Self.rtMax else { throw bad }
            number = n
            return
        }
        throw bad
    }

    /// `SIGTERM`, `SIGRTMIN+3`, or the number for one without a name.
    public var name: String {
        if let hit = Self.names.first(where: { $0.1 == number }) { return "SIG" + hit.0 }
        if number >= Self.rtMin, number <= Self.rtMax {
            return number == Self.rtMin ? "SIGRTMIN" : "SIGRTMIN+\(number - Self.rtMin)"
        }
        return String(number)
    }

    /// The ``name``.
    public var description: String { name }
}
