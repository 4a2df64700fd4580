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

    /// Non-ASCII cells count display columns, as docker's tabwriter (go-runewidth): East
    /// Asian wide characters and emoji 2, combining marks 0. A short row pads only its cells.
    @Test func widthsCountDisplayColumnsAndShortRowsStop() {
        #expect(Table.displayWidth("e\u{301}t\u{e9}") == 3)
        #expect(Table.displayWidth("\u{65e5}\u{672c}\u{8a9e}") == 6)
        #expect(Table.displayWidth("\u{1F44D}\u{1F3FD}x") == 3)  // an emoji with a skin tone is one cluster
        #expect(Table.displayWidth("\u{2764}\u{FE0F}") == 2)
        #expect(Table.displayWidth("\u{FF21}\u{AC00}") == 4)  // fullwidth A, a Hangul syllable
        var wide = Table(["A", "B"])
        wide.add("\u{65e5}\u{672c}\u{8a9e}-\u{65e5}\u{672c}"); wide.add("x"); wide.endRow()
        // 11 columns wide, so the column is 14: "A" and 13 spaces.
        #expect(wide.render() == "A" + String(repeating: " ", count: 13) + "B\n\u{65e5}\u{672c}\u{8a9e}-\u{65e5}\u{672c}   x\n")
        var t = Table(["NAME", "VALUE"])
        t.add("caf\u{e9}-\u{65e5}\u{672c}"); t.add("x"); t.endRow()
        t.add("only"); t.endRow()
        // "café-日本" is 9 columns (the two ideographs are 2 each), so the column is 12.
        #expect(t.render() == "NAME" + String(repeating: " ", count: 8) + "VALUE\ncaf\u{e9}-\u{65e5}\u{672c}   x\nonly\n")
        #expect(Output.table(["NAME", "VALUE"], [["caf\u{e9}-\u{65e5}\u{672c}", "x"], ["only"]]) == t.render())
    }

    /// A listing laid out in parts (`strata images` builds two halves at once) renders
    /// exactly as the same rows in one table: widths are common to all parts.
    @Test func partsRenderAsOneTable() {
        let header = ["REPOSITORY", "TAG", "IMAGE ID"]
        var rows: [[String]] = []
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for k in 0..<300 {
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let n = Int(x >> 58)  // 0...63
            let name = String(repeating: k % 7 == 0 ? "\u{e9}" : "r", count: n)
            rows.append(k % 11 == 0 ? [name] : [name, "t\(n)", String(x, radix: 16)])
        }
        let whole = Output.table(header, rows)
        for split in [0, 1, 150, 299, 300] {
            var first = Table(columns: header.count, rows: split)
            var second = Table(columns: header.count, rows: rows.count - split)
            for (k, row) in rows.enumerated() {
                for c in row { if k < split { first.add(c) } else { second.add(c) } }
                if k < split { first.endRow() } else { second.endRow() }
            }
            let head = Table(header)
            let widths = Table.widths([head, first, second])
            let bytes = head.renderBytes(widths: widths) + first.renderBytes(widths: widths) + second.renderBytes(widths: widths)
            #expect(String(decoding: bytes, as: UTF8.self) == whole, "split at \(split)")
        }
    }

    /// An empty cell and an empty table still end their lines.
    @Test func emptyCells() {
        var t = Table(["A", "B"])
        t.add(""); t.add(""); t.endRow()
        #expect(t.render() == "A         B\n          \n")
        #expect(Table(columns: 2, rows: 0).renderBytes().isEmpty)
    }
}
