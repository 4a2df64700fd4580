import Foundation
import GRDB

/// One image as `strata images` lists it.
public struct ImageSummary: Sendable, Codable, Hashable {
    public var id: Digest
    /// Tags in familiar form (`busybox:latest`), sorted.
    public var tags: [String]
    /// `name@digest` references recorded by pull and push.
    public var repoDigests: [String]
    public var parentID: Digest?
    public var created: Date?
    /// Sum of the uncompressed layer sizes.
    public var size: Int64
    public var layerCount: Int
    /// Number of images whose parent this is.
    public var children: Int
    public var containers: Int
    /// The image config's labels (`config.Labels`).
    public var labels: [String: String] = [:]

    /// Untagged and nothing built on it.
    public var isDangling: Bool { tags.isEmpty && children == 0 }
    /// Untagged but the parent of another image (hidden without `-a`).
    public var isIntermediate: Bool { tags.isEmpty && children > 0 }

    /// The object Docker's `GET /images/json` lists for this image (API 1.43 field names).
    public func dockerJSON() -> [String: Any] {
        [
            "Id": id.string,
            "ParentId": parentID?.string ?? "",
            "RepoTags": tags,
            "RepoDigests": repoDigests,
            "Created": Int64(created?.timeIntervalSince1970 ?? 0),
            "Size": size,
            "VirtualSize": size,
            "SharedSize": -1,
            "Labels": labels.isEmpty ? NSNull() : labels as Any,
            "Containers": containers,
        ]
    }
}

/// Filters for ``Store/images(all:filters:)``, as `docker images --filter`.
public struct ImageFilters: Sendable {
    public var dangling: Bool?
    /// Glob patterns matched against `name` and `name:tag` (familiar form).
    public var references: [String] = []
    public var before: String?
    public var since: String?
    /// `label=KEY` or `label=KEY=VALUE`: every one must match the image config's labels.
    public var labels: [String] = []

    public init(dangling: Bool? = nil, references: [String] = [], before: String? = nil, since: String? = nil, labels: [String] = []) {
        self.dangling = dangling
        self.references = references
        self.before = before
        self.since = since
        self.labels = labels
    }

    /// Filters by name as `docker images --filter` and the Engine API's `filters` give them:
    /// `dangling` (true or false), `reference` (patterns), `label` (`KEY` or `KEY=VALUE`),
    /// `before` and `since` (an image). Any other key is an error.
    ///
    /// ```swift
    /// let f = try ImageFilters(["dangling": ["true"], "reference": ["busy*"]])
    /// ```
    public init(_ byKey: [String: [String]]) throws {
        self.init()
        for (k, values) in byKey.sorted(by: { $0.key < $1.key }) {
            for v in values {
                switch k {
                case "dangling":
                    guard v == "true" || v == "false" || v == "1" || v == "0" else {
                        throw StrataError(.invalidArgument, "invalid filter \"dangling=\(v)\": dangling takes true or false")
                    }
                    dangling = v == "true" || v == "1"
                case "reference": references.append(v)
                case "label": labels.append(v)
                case "before": before = v
                case "since": since = v
                default:
                    throw StrataError(.invalidArgument, "invalid filter \"\(k)\": use dangling, reference, label, before or since")
                }
            }
        }
    }

    /// Whether a config's labels satisfy every `labels` filter.
    func matchesLabels(_ labels: [String: String]) -> Bool {
        self.labels.allSatisfy { f in
            guard let eq = f.firstIndex(of: "=") else { return labels[f] != nil }
            return labels[String(f[..<eq])] == String(f[f.index(after: eq)...])
        }
    }
}

extension Store {
    /// Lists images, newest first (then by ID), over precomputed sizes.
    /// Without `all`, intermediate images (untagged parents of other images) are hidden.
    ///
    /// Five plain scans in image-ID order (images, tags, repo digests, child and container
    /// counts), merged here in one pass, rather than four correlated subqueries or joins per
    /// image: at 10,000 images SQLite's joins alone take longer than the whole listing.
    public func images(all: Bool = false, filters: ImageFilters = ImageFilters()) async throws -> [ImageSummary] {
        try await read { db in
            var sql = "SELECT id, parent_id, created, size, layer_count, labels FROM images"
            var args: [any DatabaseValueConvertible] = []
            var conds: [String] = []
            if let b = filters.before {
                let id = try Self.resolve(b, db: db)
                conds.append("coalesce(created, 0) < (SELECT coalesce(created, 0) FROM images WHERE id = ?)")
                args.append(id.string)
            }
            if let s = filters.since {
                let id = try Self.resolve(s, db: db)
                conds.append("coalesce(created, 0) > (SELECT coalesce(created, 0) FROM images WHERE id = ?)")
                args.append(id.string)
            }
            if !conds.isEmpty { sql += " WHERE " + conds.joined(separator: " AND ") }

            // Every scan is in image-ID order (an index each), so one pass joins them: no
            // hashing of 71-byte IDs, no dictionaries. IDs are ASCII: String order is byte
            // order, as SQLite's BINARY collation.
            let tags = try MergeScan(db, "SELECT image_id, name FROM tags ORDER BY image_id")
            let digests = try MergeScan(db, "SELECT image_id, name, digest FROM repo_digests ORDER BY image_id")
            let children = try MergeScan(db, "SELECT parent_id, count(*) FROM images WHERE parent_id IS NOT NULL GROUP BY parent_id ORDER BY parent_id")
            let containers = try MergeScan(db, "SELECT image_id, count(*) FROM containers GROUP BY image_id ORDER BY image_id")

            // Room for every image at once: growing an array of 10,000 summaries copies each
            // one several times.
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM images") ?? 0
            var out: [ImageSummary?] = []
            out.reserveCapacity(count)
            var keys: [(created: Int64, index: Int32)] = []
            keys.reserveCapacity(count)
            let rows = try Row.fetchCursor(db, sql: sql + " ORDER BY id", arguments: StatementArguments(args))
            while let r = try rows.next() {
                // Columns by position: this loop runs once per image.
                let idString: String = r[0]
                let parent: String? = r[1]
                let created: Int64? = r[2]
                var imageTags: [String] = []
                try tags.rows(for: idString) { imageTags.append(Reference.familiar(stored: $0[1])) }
                var imageDigests: [String] = []
                try digests.rows(for: idString) { imageDigests.append(Reference.familiar(stored: $0[1]) + "@" + ($0[2] as String)) }
                var childCount = 0
                try children.rows(for: idString) { childCount = $0[1] }
                var containerCount = 0
                try containers.rows(for: idString) { containerCount = $0[1] }
                var summary = ImageSummary(
                    id: try Digest(idString), tags: imageTags.count > 1 ? imageTags.sorted() : imageTags,
                    repoDigests: imageDigests.count > 1 ? imageDigests.sorted() : imageDigests,
                    parentID: parent.flatMap { try? Digest($0) },
                    created: created.map { Date(timeIntervalSince1970: Double($0)) },
                    size: r[3], layerCount: r[4], children: childCount, containers: containerCount)
                if !all && summary.isIntermediate && filters.dangling == nil { continue }
                if let d = filters.dangling, (summary.tags.isEmpty) != d { continue }
                if !filters.references.isEmpty {
                    let ok = summary.tags.contains { tag in
                        let name = tag.split(separator: ":").dropLast().joined(separator: ":")
                        return filters.references.contains { Glob.match($0, tag) || Glob.match($0, name) }
                    }
                    if !ok { continue }
                }
                // From the row; an image stored before 0007 whose row Store.open could not fill
                // (its config unreadable then) is read from its config blob, and a config that
                // still cannot be read lists no labels rather than failing the whole listing.
                let labelsText: String? = r[5]
                summary.labels = try labelsText.map(ImageLabels.decode) ?? ((try? self.configLabels(summary.id)) ?? [:])
                if !filters.labels.isEmpty, !filters.matchesLabels(summary.labels) { continue }
                keys.append((created ?? 0, Int32(out.count)))
                out.append(summary)
            }
            // Newest first, then by ID: the rows came in ID order, so ties keep their index
            // order. Sorting small keys, then taking each summary out of its slot, moves each
            // one once (no copy, no reference counting).
            keys.sort { $0.created != $1.created ? $0.created > $1.created : $0.index < $1.index }
            var sorted: [ImageSummary] = []
            sorted.reserveCapacity(keys.count)
            for k in keys {
                if let summary = out[Int(k.index)].take() { sorted.append(summary) }
            }
            return sorted
        }
    }

    /// The labels of an image's config blob.
    func configLabels(_ id: Digest) throws -> [String: String] {
        try ImageConfig.decode(try blobs.readSmall(id), digest: id).config?.Labels ?? [:]
    }

    /// Fills `images.labels` of the images stored before migration 0007 from their config
    /// blobs: read outside any transaction, written in one short one. An image whose config
    /// cannot be read keeps NULL (listings then read the blob). Called by ``open(at:)``.
    func fillMissingLabels() async throws {
        let ids = try await read { db in try String.fetchAll(db, sql: "SELECT id FROM images WHERE labels IS NULL") }
        guard !ids.isEmpty else { return }
        var filled: [(String, String)] = []
        for id in ids {
            guard let d = try? Digest(id), let labels = try? configLabels(d) else { continue }
            filled.append((id, ImageLabels.encode(labels)))
        }
        guard !filled.isEmpty else { return }
        try await write { [filled] db in
            let update = try db.makeStatement(sql: "UPDATE images SET labels = ? WHERE id = ? AND labels IS NULL")
            for (id, labels) in filled { try update.execute(arguments: [labels, id]) }
        }
    }

    /// Points `target` (e.g. `app:latest`) at the image `source` names.
    public func tag(_ source: String, as target: String) async throws {
        let r = try Reference(target)
        guard r.digest == nil else { throw StrataError(.invalidReference, "invalid reference \"\(target)\": a tag cannot contain a digest") }
        try await write { db in
            let id = try Self.resolve(source, db: db)
            try db.execute(sql: """
                INSERT INTO tags(name, image_id, created_at) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created_at = excluded.created_at
                WHERE tags.image_id != excluded.image_id
                """, arguments: [r.fullName, id.string, now()])
        }
        CrashPoint.hit("tag.after-commit")
    }
}

/// One side of a merge join: a cursor over rows sorted by their first column (an image ID),
/// read forward as the images (in the same order) ask for theirs.
final class MergeScan {
    private let cursor: RowCursor
    /// The current row (the cursor's, changing in place: read only before the next step)
    /// and its key, read once per step.
    private var row: Row?
    private var key: String?

    init(_ db: Database, _ sql: String) throws {
        cursor = try Row.fetchCursor(db, sql: sql)
        try step()
    }

    private func step() throws {
        row = try cursor.next()
        key = row.map { $0[0] }
    }

    /// Calls `body` with each row whose first column is `key`, skipping rows before it.
    /// Keys must be asked for in ascending order.
    func rows(for wanted: String, _ body: (Row) throws -> Void) throws {
        while let k = key, let r = row {
            if k > wanted { return }
            if k == wanted { try body(r) }
            try step()
        }
    }
}

/// Shell-style glob matching (`*`, `?`) used by `--filter reference=`.
enum Glob {
    static func match(_ pattern: String, _ s: String) -> Bool {
        let p = Array(pattern), t = Array(s)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti], p[pi] != "*" {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// `images.labels`: a config's labels as a JSON object with sorted keys (`{}` for none).
enum ImageLabels {
    static func encode(_ labels: [String: String]?) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(labels ?? [:])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode(_ text: String) throws -> [String: String] {
        if text == "{}" { return [:] }
        do {
            return try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
        } catch {
            throw StrataError(.database, "an image row has unreadable labels: \(error)", cause: error)
        }
    }
}
