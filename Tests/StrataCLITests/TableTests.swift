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
