import Foundation

/// A table laid out as Docker's tabwriter does (minimum width 10, padding 3, widths counted
/// in terminal columns as its go-runewidth does: see ``displayWidth(_:)``), built a cell at
/// a time.
///
/// Each cell's UTF-8 bytes are copied into one flat buffer as it is added, and its width is
/// counted then: a 10,000-image listing keeps no `String` per cell and makes no array per
/// row, and rendering is one pass of copies into a buffer of the exact size.
///
/// ```swift
/// var t = Table(["REPOSITORY", "TAG"])
/// t.add("busybox"); t.add("latest"); t.endRow()
/// print(t.render(), terminator: "")
/// ```
struct Table {
    /// Every cell's bytes, one after another.
    private var bytes: [UInt8] = []
    /// Where each cell ends in `bytes` (it starts where the one before ends).
    private var cellEnds: [Int] = []
    private var cellWidths: [Int] = []
    /// Where each row ends in `cellEnds` (rows may have fewer cells than the header).
    private var rowEnds: [Int] = []
    /// Each column's width with its padding; the last column is not padded.
    private var widths: [Int]

    init(_ header: [String], rows: Int = 0) {
        self.init(columns: header.count, rows: rows + 1)
        for h in header { add(h) }
        endRow()
    }

    /// A table with no header row, for a part of a listing built apart (see
    /// ``renderBytes(widths:)``).
    init(columns: Int, rows: Int) {
        widths = [Int](repeating: 0, count: columns)
        bytes.reserveCapacity(rows * columns * 12)
        cellEnds.reserveCapacity(rows * columns)
        cellWidths.reserveCapacity(rows * columns)
        rowEnds.reserveCapacity(rows)
    }

    /// The widths that lay out several parts of one listing as one table: each column as
    /// wide as its widest cell in any part.
    static func widths(_ parts: [Table]) -> [Int] {
        guard var w = parts.first?.widths else { return [] }
        for p in parts.dropFirst() {
            for c in w.indices where c < p.widths.count { w[c] = max(w[c], p.widths[c]) }
        }
        return w
    }

    /// Appends a cell to the current row.
    mutating func add(_ cell: String) {
        var cell = cell
        // An ASCII cell (nearly all of them) is as wide as its byte count.
        let ascii = cell.withUTF8 { b in
            bytes.append(contentsOf: b)
            return !b.contains { $0 >= 0x80 }
        }
        let n = ascii ? cell.utf8.count : Self.displayWidth(cell)
        let column = cellEnds.count - (rowEnds.last ?? 0)
        cellEnds.append(bytes.count)
        cellWidths.append(n)
        if column < widths.count - 1 { widths[column] = max(widths[column], max(n + 3, 10)) }
    }

    /// The columns a terminal gives `text`, as the docker CLI's tabwriter counts them
    /// (go-runewidth over grapheme clusters): a cluster is as wide as its first character, 2
    /// for East Asian wide and fullwidth characters and for emoji shown as emoji, 0 for a mark
    /// or a control character standing alone, else 1. Combining marks after a character add
    /// nothing.
    static func displayWidth(_ text: String) -> Int {
        var width = 0
        for cluster in text {
            let scalars = cluster.unicodeScalars
            guard let first = scalars.first else { continue }
            if scalars.contains(where: { $0.properties.isEmojiPresentation })
                || (scalars.contains("\u{FE0F}") && scalars.contains(where: { $0.properties.isEmoji })) {
                width += 2
                continue
            }
            switch first.properties.generalCategory {
            case .nonspacingMark, .enclosingMark, .format, .control: continue
            default: break
            }
            width += Units.isWide(first) ? 2 : 1
        }
        return width
    }

    /// Ends the current row.
    mutating func endRow() { rowEnds.append(cellEnds.count) }

    /// The text, a line per row, as UTF-8 bytes.
    func renderBytes() -> [UInt8] { renderBytes(widths: widths) }

    /// The text laid out with the given column widths (``widths(_:)`` of all the parts).
    func renderBytes(widths: [Int]) -> [UInt8] {
        // The exact size first: each cell's bytes, each padding, a newline per row.
        var size = bytes.count + rowEnds.count
        var first = 0
        for end in rowEnds {
            for k in first..<end where k < end - 1 { size += max(0, widths[k - first] - cellWidths[k]) }
            first = end
        }
        return [UInt8](unsafeUninitializedCapacity: size) { out, count in
            bytes.withUnsafeBufferPointer { src in
                guard let base = out.baseAddress else { return }
                let from = src.baseAddress
                var at = 0, start = 0, firstCell = 0
                for end in rowEnds {
                    for k in firstCell..<end {
                        let n = cellEnds[k] - start
                        if n > 0, let from { (base + at).update(from: from + start, count: n) }
                        at += n
                        start = cellEnds[k]
                        if k < end - 1 {
                            let pad = widths[k - firstCell] - cellWidths[k]
                            if pad > 0 { (base + at).update(repeating: UInt8(ascii: " "), count: pad); at += pad }
                        }
                    }
                    base[at] = UInt8(ascii: "\n")
                    at += 1
                    firstCell = end
                }
            }
            count = size
        }
    }

    /// The text, a line per row.
    func render() -> String { String(decoding: renderBytes(), as: UTF8.self) }
}
