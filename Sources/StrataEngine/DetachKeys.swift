import Foundation
import NIOCore

/// The key sequence with which a client leaves a TTY container (or exec) running: what it
/// types into the attached stdin is passed on until the sequence, which is kept back and
/// ends the attach, as dockerd's escape proxy does. ctrl-p ctrl-q unless the request names
/// others (`attach?detachKeys=`, exec's `DetachKeys`), in Docker's notation: keys separated by
/// commas, each one character or `ctrl-` with one of `a`–`z`, `@`, `[`, `\`, `]`, `^`, `_`.
///
/// dockerd looks for the sequence only when the container (or exec) has a TTY; the docker CLI
/// also looks for it itself on a terminal, so this matters for clients that do not.
struct DetachKeys: Sendable, Equatable {
    /// The bytes of the sequence; never empty.
    let keys: [UInt8]

    /// ctrl-p, ctrl-q: dockerd's and the docker CLI's default.
    static let standard = DetachKeys(keys: [0x10, 0x11])

    private init(keys: [UInt8]) { self.keys = keys }

    /// Parses Docker's notation (`ctrl-p,ctrl-q`, `a,ctrl-@`); nil or empty means ``standard``.
    /// Throws a 400 naming the keys, worded as dockerd's, for a key it does not know.
    init(parsing spec: String?) throws {
        guard let spec, !spec.isEmpty else {
            self = .standard
            return
        }
        var keys: [UInt8] = []
        for key in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let bytes = Array(key.utf8)
            if bytes.count == 1 {
                keys.append(bytes[0])
                continue
            }
            let lower = key.lowercased()
            guard lower.hasPrefix("ctrl-"), lower.utf8.count == 6, let c = lower.utf8.last else {
                throw EngineError.badRequest("Invalid detach keys (\(spec)) provided")
            }
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): keys.append(c - UInt8(ascii: "a") + 1)
            case UInt8(ascii: "@"): keys.append(0)
            case UInt8(ascii: "["), UInt8(ascii: "\\"), UInt8(ascii: "]"), UInt8(ascii: "^"), UInt8(ascii: "_"):
                keys.append(c - 0x40)  // ctrl-[ is ESC (27) … ctrl-_ is 31
            default:
                throw EngineError.badRequest("Invalid detach keys (\(spec)) provided")
            }
        }
        self.keys = keys
    }

    /// A scanner of one attach's input.
    func scanner() -> Scanner { Scanner(keys: keys) }

    /// Follows the sequence across the pieces a client sends.
    struct Scanner: Sendable {
        let keys: [UInt8]
        /// How many of the keys the input ended with so far (kept back, not passed on).
        private var matched = 0

        init(keys: [UInt8]) { self.keys = keys }

        /// What of `piece` goes on to the container, and whether the sequence completed in it
        /// (then what followed it in the piece is dropped, as the attach ends there).
        ///
        /// As dockerd's proxy: a byte that breaks a partial sequence releases the keys kept
        /// back and itself, and is not taken as the start of a new sequence (so ctrl-p ctrl-p
        /// ctrl-q does not detach).
        /// A client's piece as it goes on to the container: all of it without a scanner.
        static func pass(_ piece: ByteBuffer, through scanner: inout Scanner?) -> (Data, detached: Bool) {
            guard var s = scanner else { return (Data(piece.readableBytesView), false) }
            let (pass, detached) = s.feed(piece.readableBytesView)
            scanner = s
            return (Data(pass), detached)
        }

        mutating func feed(_ piece: some Sequence<UInt8>) -> (pass: [UInt8], detached: Bool) {
            var pass: [UInt8] = []
            for byte in piece {
                if byte == keys[matched] {
                    matched += 1
                    if matched == keys.count { return (pass, true) }
                    continue
                }
                pass.append(contentsOf: keys[0..<matched])
                pass.append(byte)
                matched = 0
            }
            return (pass, false)
        }
    }
}
