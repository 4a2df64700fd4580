import Testing
@testable import StrataCLI

/// `Table` lays columns out as Go's tabwriter does with Docker's settings (minimum width 10,
/// padding 3, widths in runes; the last column is not padded).
@Suite struct TableTests {
    @Test func columnsAreWidestCellPlusThreeAtLeastTen() {
        var t = Table(["REPOSITORY", "TAG", "SIZE"])
        for row in [["busybox", "latest", "4.26MB"], ["a-much-longer-name", "1", "0B"]] {
            for c in row { t.add(c) }
            t.endRow()
        }
        #expect(t.render() == """
            REPOSITORY           TAG       SIZE
            busybox              latest    4.26MB
            a-much-longer-name   1         0B

            """)
    }

    /// Non-ASCII cells count runes, not bytes; a short row pads only the cells it has.
    @Test func widthsCountRunesAndShortRowsStop() {
        var t = Table(["NAME", "VALUE"])
        t.add("caf\u{e9}-\u{65e5}\u{672c}"); t.add("x"); t.endRow()
        t.add("only"); t.endRow()
        #expect(t.render() == "NAME      VALUE\ncaf\u{e9}-\u{65e5}\u{672c}   x\nonly\n")
        #expect(Output.table(["NAME", "VALUE"], [["caf\u{e9}-\u{65e5}\u{672c}", "x"], ["only"]]) == t.render())
    }
}
