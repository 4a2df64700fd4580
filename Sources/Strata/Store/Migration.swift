/// One schema migration, compiled in from `Migrations/NNNN_name.sql`.
struct Migration: Sendable {
    let version: Int
    let name: String
    let sql: String
}
