import Foundation
import Testing
@testable import StrataCLI

/// `Downloading context: URL [===>   ] a/b`: redrawn in place on a terminal, one line at the
/// end otherwise.
@Suite struct ContextProgressTests {
    @Test func oneLineWhenNotATerminal() {
        let sink = TransferProgressTests.Sink()
        let p = ContextProgress(url: "http://h/ctx.tar", tty: false, write: { sink.add($0) })
        p.update(100, 240)
        p.update(240, 240)
        p.finish()
        #expect(sink.all == "Downloading context: http://h/ctx.tar [==============================] 240B/240B\n")
    }

    @Test func redrawnInPlaceOnATerminal() {
        let sink = TransferProgressTests.Sink()
        let p = ContextProgress(url: "http://h/ctx.tar", tty: true, write: { sink.add($0) })
        p.update(120, 240)
        p.update(240, 240)
        p.finish()
        let draws = sink.all.components(separatedBy: "\r\u{1B}[2K").filter { !$0.isEmpty }
        #expect(draws.first == "Downloading context: http://h/ctx.tar [===============>              ] 120B/240B")
        #expect(draws.last == "Downloading context: http://h/ctx.tar [==============================] 240B/240B\n")
    }

    @Test func unknownLengthShowsBytesOnly() {
        let sink = TransferProgressTests.Sink()
        let p = ContextProgress(url: "http://h/x", tty: false, write: { sink.add($0) })
        p.update(2048, nil)
        p.finish()
        #expect(sink.all == "Downloading context: http://h/x 2.05kB\n")
    }
}
