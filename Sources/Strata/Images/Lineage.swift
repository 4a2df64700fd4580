import GRDB

/// Image parent links for images that were loaded rather than built here.
///
/// P is the parent of C when C's layer chain starts with P's whole chain and P's history
/// is a strict prefix of C's history (the rule podman and Docker's classic builder agree
/// on). Of several candidates, the one with the longest history wins.
enum Lineage {
    // Statements are cached on the connection: a load links every image it inserts.
    private static func historyKeys(_ id: String, db: Database) throws -> [String] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT created, created_by, comment, empty_layer FROM history WHERE image_id = ? ORDER BY position
            """), arguments: [id]).map { r in
            "\((r["created"] as Int64?).map(String.init) ?? "-")\u{1}\(r["created_by"] as String)\u{1}\(r["comment"] as String)\u{1}\(r["empty_layer"] as Int)"
        }
    }

    private static func isPrefix(_ a: [String], of b: [String]) -> Bool {
        a.count < b.count && Array(b.prefix(a.count)) == a
    }

    /// Sets the parent of `imageID`, and makes it the parent of existing images it is closer to.
    static func link(imageID id: String, db: Database) throws {
        guard let me = try Row.fetchOne(db.cachedStatement(sql: "SELECT top_chain_id, layer_count, history_count FROM images WHERE id = ?"), arguments: [id]),
              let top = me["top_chain_id"] as String? else { return }
        let layerCount: Int = me["layer_count"]
        let historyCount: Int = me["history_count"]
        guard historyCount > 0 else { return }
        let mine = try historyKeys(id, db: db)

        // Parent: an image whose top chain is one of ours and whose history is a prefix of ours.
        let candidates = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT i.id, i.history_count FROM images i
            JOIN image_layers l ON l.image_id = ? AND l.chain_id = i.top_chain_id
            WHERE i.id != ? AND i.history_count > 0 AND i.history_count < ? AND i.broken = 0
            ORDER BY i.history_count DESC, i.layer_count DESC
            """), arguments: [id, id, historyCount])
        for c in candidates {
            let cid: String = c["id"]
            if isPrefix(try historyKeys(cid, db: db), of: mine) {
                try db.cachedStatement(sql: "UPDATE images SET parent_id = ? WHERE id = ?").execute(arguments: [cid, id])
                break
            }
        }

        // Children: images built on top of our chain whose history extends ours.
        let children = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT i.id, i.parent_id, p.history_count AS parent_history FROM image_layers l
            JOIN images i ON i.id = l.image_id
            LEFT JOIN images p ON p.id = i.parent_id
            WHERE l.chain_id = ? AND l.position = ? AND i.id != ? AND i.history_count > ?
            """), arguments: [top, layerCount - 1, id, historyCount])
        for c in children {
            let parentHistory: Int? = c["parent_history"]
            if let ph = parentHistory, ph >= historyCount { continue }
            let cid: String = c["id"]
            if isPrefix(mine, of: try historyKeys(cid, db: db)) {
                try db.cachedStatement(sql: "UPDATE images SET parent_id = ? WHERE id = ?").execute(arguments: [id, cid])
            }
        }
    }
}
