import Foundation
import GRDB
import GRDBSQLite

/// The rows of one statement read straight from SQLite's C API: a text column is a view of
/// SQLite's own bytes, with no `String` made for it.
///
/// For listings that read every row of a large table and compare or copy only some of the
/// values (`strata images` reads 10,000 image rows and their tags): GRDB's `Row` makes a
/// `String` for each text value read, which there costs more than SQLite's scan.
///
/// A view returned by ``text(_:)`` is valid until the next ``step()``. The statement is
/// GRDB's, prepared on the connection in use, and is reset when this value goes away.
final class RawRows {
    private let statement: Statement
    private let handle: SQLiteStatement
    private let db: Database
    /// Whether the statement is on a row (after a ``step()`` that returned true).
    private(set) var onRow = false

    init(_ db: Database, _ sql: String, arguments: StatementArguments = StatementArguments()) throws {
        statement = try db.makeStatement(sql: sql)
        try statement.setArguments(arguments)
        handle = statement.sqliteStatement
        self.db = db
    }

    deinit { sqlite3_reset(handle) }

    /// Moves to the next row; false when there are no more.
    @discardableResult
    func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { onRow = true; return true }
        onRow = false
        if rc == SQLITE_DONE { return false }
        let message = db.sqliteConnection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "error \(rc)"
        throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: message, sql: statement.sql)
    }

    /// The bytes of a text column, or nil for NULL. Valid until the next ``step()``.
    func text(_ column: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard sqlite3_column_type(handle, column) != SQLITE_NULL, let p = sqlite3_column_text(handle, column) else { return nil }
        return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, column)))
    }

    /// A text column as a `String` (UTF-8, repaired if it is not), or nil for NULL.
    func string(_ column: Int32) -> String? {
        text(column).map { String(decoding: $0, as: UTF8.self) }
    }

    /// An integer column; nil for NULL.
    func int64(_ column: Int32) -> Int64? {
        sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, column)
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Byte order, as SQLite's BINARY collation compares text.
    @inline(__always)
    static func compareBytes(_ a: Self, _ b: Self) -> Int32 {
        let n = Swift.min(a.count, b.count)
        if n > 0, let pa = a.baseAddress, let pb = b.baseAddress {
            let c = memcmp(pa, pb, n)
            if c != 0 { return c }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }
}
