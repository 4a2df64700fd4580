import Foundation
import Testing
import OCI
import StrataRegistry
@testable import StrataCLI

/// Progress drawing: bars redrawn in place on a terminal, one line per finished blob otherwise.
@Suite struct TransferProgressTests {
    final class Sink: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func add(_ s: String) { lock.withLock { text += s } }
        var all: String { lock.withLock { text } }
    }

    static let a = Digest.sha256(Data("a".utf8))
    static let b = Digest.sha256(Data("b".utf8))

    @Test func oneLinePerBlobWhenNotATerminal() {
        let sink = Sink()
        let p = TransferProgress(verb: "Downloading", tty: false, write: { sink.add($0) })
        p.handle(.started(Self.a, size: 1000))
        p.handle(.advanced(Self.a, done: 500, size: 1000))
        p.handle(.finished(Self.b, size: 10, status: "Already exists"))
        p.handle(.finished(Self.a, size: 1000, status: "Pull complete"))
        #expect(sink.all == "\(Self.b.shortHex): Already exists\n\(Self.a.shortHex): Pull complete\n")
    }

    @Test func barsAreRedrawnInPlaceOnATerminal() {
        let sink = Sink()
        let p = TransferProgress(verb: "Downloading", tty: true, write: { sink.add($0) })
        p.handle(.started(Self.a, size: 1000))
        p.handle(.started(Self.b, size: 2000))
        p.handle(.advanced(Self.a, done: 500, size: 1000))
        p.handle(.finished(Self.a, size: 1000, status: "Pull complete"))
        let out = sink.all
        // The third draw moves up over the two bars drawn before and draws both again.
        #expect(out.contains("\u{1B}[2A"))
        #expect(out.contains("\(Self.a.shortHex): Downloading [===============>              ] 500B/1kB"))
        #expect(out.hasSuffix("\u{1B}[2K\(Self.a.shortHex): Pull complete\n\u{1B}[2K\(Self.b.shortHex): Downloading [>                             ] 0B/2kB\n"))
    }
}
