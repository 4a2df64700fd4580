/// A table laid out as Docker's tabwriter does (minimum width 10, padding 3, widths counted
/// in Unicode scalars as Go counts runes), built a cell at a time.
///
/// Cells go into one flat array and each one's width is counted once, as it is added: a
/// 10,000-image listing makes no array per row.
///
/// ```swift
/// var t = Table(["REPOSITORY", "TAG"])
/// t.add("busybox"); t.add("latest"); t.endRow()
/// print(t.render(), terminator: "")
/// ```
struct Table {
    private var cells: [String] = []
    private var cellWidths: [Int] = []
    /// Where each row ends in `cells` (rows may have fewer cells than the header).
    private var rowEnds: [Int] = []
    /// Each column's width with its padding; the last column is not padded.
    private var widths: [Int]
    private var total = 0

    init(_ header: [String], rows: Int = 0) {
        widths = [Int](repeating: 0, count: header.count)
        cells.reserveCapacity((rows + 1) * header.count)
        cellWidths.reserveCapacity((rows + 1) * header.count)
        rowEnds.reserveCapacity(rows + 1)
        for h in header { add(h) }
        endRow()
    }

    /// Appends a cell to the current row.
    mutating func add(_ cell: String) {
        // An ASCII cell (nearly all of them) is its byte count, checked on contiguous bytes.
        var bytes = cell
        let ascii = bytes.withUTF8 { b in !b.contains { $0 >= 0x80 } }
        let n = ascii ? cell.utf8.count : cell.unicodeScalars.count
        let column = cells.count - (rowEnds.last ?? 0)
        cells.append(cell)
        cellWidths.append(n)
        total += n + 3
        if column < widths.count - 1 { widths[column] = max(widths[column], max(n + 3, 10)) }
    }

    /// Ends the current row.
    mutating func endRow() { rowEnds.append(cells.count) }

    /// The text, a line per row, written as UTF-8 bytes into one buffer.
    func render() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(total + rowEnds.count * (widths.reduce(0, +) / 2 + 1))
        var start = 0
        for end in rowEnds {
            for k in start..<end {
                out.append(contentsOf: cells[k].utf8)
                if k < end - 1 {
                    let pad = widths[k - start] - cellWidths[k]
                    if pad > 0 { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: pad)) }
                }
            }
            out.append(UInt8(ascii: "\n"))
            start = end
        }
        return String(decoding: out, as: UTF8.self)
    }
}
