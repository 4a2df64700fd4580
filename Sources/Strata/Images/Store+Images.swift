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

    /// No tag and no repo digest: Docker's `<none>` image (``Store/images(all:filters:)``
    /// lists it only under the rules there).
    public var isUntagged: Bool { Self.isUntagged(tags: tags, repoDigests: repoDigests) }
    /// Untagged and nothing built on it: what `dangling=true` lists.
    public var isDangling: Bool { isUntagged && children == 0 }
    /// Untagged but the parent of another image (hidden without `-a`).
    public var isIntermediate: Bool { isUntagged && children > 0 }

    /// The one definition of an untagged image, for the listing that decides before it
    /// makes a summary.
    static func isUntagged(tags: [String], repoDigests: [String]) -> Bool { tags.isEmpty && repoDigests.isEmpty }

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
                case "reference":
                    guard ReferencePattern.match(v, "") != nil else {
                        throw StrataError(.invalidArgument, "invalid filter \"reference=\(v)\": syntax error in pattern")
                    }
                    references.append(v)
                case "label": labels.append(v)
                case "before": before = v
                case "since": since = v
                default:
                    throw StrataError(.invalidArgument, "invalid filter \"\(k)\": use dangling, reference, label, before or since")
                }
            }
        }
    }

    /// Whether a familiar reference (`busybox:1`, `app@sha256:…`) or its name alone matches
    /// one of the `references` patterns, as moby's `reference.FamiliarMatch`.
    func matchesReference(_ reference: String) -> Bool {
        let u = reference.utf8
        let cut = u.firstIndex(of: UInt8(ascii: "@")) ?? u.lastIndex(of: UInt8(ascii: ":")).flatMap { c in
            u[u.index(after: c)...].contains(UInt8(ascii: "/")) ? nil : c
        }
        let name = cut.map { String(reference[..<$0]) } ?? reference
        return references.contains { p in ReferencePattern.match(p, reference) == true || ReferencePattern.match(p, name) == true }
    }

    /// Whether a config's labels satisfy every `labels` filter.
    func matchesLabels(_ labels: [String: String]) -> Bool {
        FilterPattern.matchesLabels(self.labels, labels)
    }
}

extension Store {
    /// Lists images, newest first (then by ID), over precomputed sizes.
    /// Without `all`, intermediate images (untagged parents of other images) are hidden.
    ///
    /// Five plain scans in image-ID order (images, tags, repo digests, child and container
    /// counts), merged here in one pass, rather than four correlated subqueries or joins per
    /// image: at 10,000 images SQLite's joins alone take longer than the whole listing. The
    /// scans are read on SQLite's C API (``RawRows``): IDs are compared as bytes, and only
    /// the values a summary keeps become strings.
    public func images(all: Bool = false, filters: ImageFilters = ImageFilters()) async throws -> [ImageSummary] {
        try await read { db in
            var sql = Self.imageListingSQL
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
            // hashing of 71-byte IDs, no dictionaries. Keys compare as bytes, as SQLite's
            // BINARY collation orders them.
            let tags = try MergeScan(db, "SELECT image_id, name FROM tags ORDER BY image_id")
            let digests = try MergeScan(db, "SELECT image_id, name, digest FROM repo_digests ORDER BY image_id")
            let children = try MergeScan(db, "SELECT parent_id, count(*) FROM images WHERE parent_id IS NOT NULL GROUP BY parent_id ORDER BY parent_id")
            let containers = try MergeScan(db, "SELECT image_id, count(*) FROM containers GROUP BY image_id ORDER BY image_id")

            // Room for every image at once: growing an array of 10,000 summaries copies each
            // one several times.
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM images") ?? 0
            var out: [ImageSummary] = []
            out.reserveCapacity(count)
            var created: [Int64] = []
            created.reserveCapacity(count)
            let rows = try RawRows(db, sql + " ORDER BY id", arguments: StatementArguments(args))
            while try rows.step() {
                guard let id = rows.text(0) else { continue }  // the primary key: never NULL
                var imageTags: [String] = []
                try tags.rows(for: id) { imageTags.append(Reference.familiar(storedUTF8: $0.text(1) ?? .init(start: nil, count: 0))) }
                var imageDigests: [String] = []
                try digests.rows(for: id) { r in
                    imageDigests.append(Reference.familiar(storedUTF8: r.text(1) ?? .init(start: nil, count: 0)) + "@" + (r.string(2) ?? ""))
                }
                var childCount = 0
                try children.rows(for: id) { childCount = Int($0.int64(1) ?? 0) }
                var containerCount = 0
                try containers.rows(for: id) { containerCount = Int($0.int64(1) ?? 0) }
                // Docker's rules (moby's image list): `reference=` keeps the references that
                // match, each on its own; an image left with no tag and no digest is listed
                // only without `reference=` and `dangling=false`, and, without `all`, only if
                // no image is built on it. `dangling=true` looks at those heads alone, with
                // `all` too: an intermediate image is never dangling.
                if !filters.references.isEmpty {
                    imageTags.removeAll { !filters.matchesReference($0) }
                    imageDigests.removeAll { !filters.matchesReference($0) }
                }
                if filters.dangling == true && childCount > 0 { continue }
                if ImageSummary.isUntagged(tags: imageTags, repoDigests: imageDigests) {
                    if !all && childCount > 0 { continue }
                    if filters.dangling == false || !filters.references.isEmpty { continue }
                } else if filters.dangling == true && !imageTags.isEmpty {
                    continue
                }
                let time = rows.int64(2)
                var summary = ImageSummary(
                    id: try Digest(utf8: id), tags: imageTags.count > 1 ? imageTags.sorted() : imageTags,
                    repoDigests: imageDigests.count > 1 ? imageDigests.sorted() : imageDigests,
                    parentID: try rows.text(1).map { try Digest(utf8: $0) },
                    created: time.map { Date(timeIntervalSince1970: Double($0)) },
                    size: rows.int64(3) ?? 0, layerCount: Int(rows.int64(4) ?? 0), children: childCount, containers: containerCount)
                // From the row; an image stored before 0007 whose row Store.open could not fill
                // (its config unreadable then) is read from its config blob, and a config that
                // still cannot be read lists no labels rather than failing the whole listing.
                if let labels = rows.text(5) {
                    if !ImageLabels.isEmpty(labels) { summary.labels = try ImageLabels.decode(String(decoding: labels, as: UTF8.self)) }
                } else {
                    summary.labels = (try? self.configLabels(summary.id)) ?? [:]
                }
                if !filters.labels.isEmpty, !filters.matchesLabels(summary.labels) { continue }
                created.append(time ?? 0)
                out.append(summary)
            }

            // Newest first, then by ID: the rows came in ID order, so ties keep their index
            // order. The summaries are put in that order in place, by swaps along each cycle
            // of the permutation: each one moves, none is copied or reference counted.
            let from = ListingOrder(created: created).sortedIndices()
            var placed = [Bool](repeating: false, count: out.count)
            out.withUnsafeMutableBufferPointer { summaries in
                // The buffer's swap moves (Array's copies each value and counts references).
                for start in summaries.indices where !placed[start] {
                    var at = start
                    while from[at] != start {
                        summaries.swapAt(at, from[at])
                        placed[at] = true
                        at = from[at]
                    }
                    placed[at] = true
                }
            }
            return out
        }
    }

    /// The columns a listing reads of every image, in the order `images` reads them. The
    /// index `images_listing` (migration 0009) covers them, so the listing never reads the
    /// wide image rows.
    static let imageListingSQL = "SELECT id, parent_id, created, size, layer_count, labels FROM images"

    /// An image's labels: from its row (0007), else from its config blob.
    func imageLabels(_ id: Digest) async throws -> [String: String] {
        let stored = try await read { db in try String.fetchOne(db, sql: "SELECT labels FROM images WHERE id = ?", arguments: [id.string]) }
        if let stored { return try ImageLabels.decode(stored) }
        return try configLabels(id)
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

/// One side of a merge join: rows sorted by their first column (an image ID), read forward
/// as the images (in the same order) ask for theirs.
final class MergeScan {
    private let rows: RawRows

    init(_ db: Database, _ sql: String) throws {
        rows = try RawRows(db, sql)
        try rows.step()
    }

    /// Calls `body` with each row whose first column is `wanted`, skipping rows before it.
    /// Keys must be asked for in ascending byte order. The row's views are valid only
    /// during the call.
    func rows(for wanted: UnsafeBufferPointer<UInt8>, _ body: (RawRows) throws -> Void) throws {
        while rows.onRow, let key = rows.text(0) {
            let c = UnsafeBufferPointer.compareBytes(key, wanted)
            if c > 0 { return }
            if c == 0 { try body(rows) }
            try rows.step()
        }
    }
}

/// The order of a listing, newest first and then by position (the rows' ID order), kept as
/// one integer per row where the times allow: sorting 10,000 integers costs a fraction of
/// sorting (time, index) pairs through a closure.
struct ListingOrder {
    /// Each row's creation time, in row order.
    let created: [Int64]

    /// Row positions, newest first; equal times keep their order.
    func sortedIndices() -> [Int] {
        guard let lo = created.min(), let hi = created.max() else { return [] }
        // (hi - time) in the high bits and the position in the low 24: one sort of UInt64.
        let span = hi.subtractingReportingOverflow(lo)
        if created.count < 1 << 24, !span.overflow, span.partialValue < 1 << 39 {
            var keys = created.enumerated().map { UInt64(hi - $0.element) << 24 | UInt64($0.offset) }
            keys.sort()
            return keys.map { Int($0 & 0xFF_FFFF) }
        }
        return created.indices.sorted { created[$0] != created[$1] ? created[$0] > created[$1] : $0 < $1 }
    }
}

/// Go's `path.Match`, which `docker images --filter reference=` uses: `*` is any run of
/// characters but `/`, `?` one character but `/`, `[...]` a class (`[^...]` negated, `a-z`
/// ranges), and `\\` quotes the next character.
enum ReferencePattern {
    /// Whether `pattern` matches all of `name`; nil when the pattern is malformed.
    static func match(_ pattern: String, _ name: String) -> Bool? {
        let p = Array(pattern.unicodeScalars), n = Array(name.unicodeScalars)
        // Checked whole first, as Go reports a bad pattern even when the name ends early.
        guard isValid(p) else { return nil }
        return match(p, 0, n, 0)
    }

    private static func match(_ p: [Unicode.Scalar], _ pi: Int, _ n: [Unicode.Scalar], _ ni: Int) -> Bool {
        var pi = pi, ni = ni
        while pi < p.count {
            switch p[pi] {
            case "*":
                // Any run of non-separators, shortest first.
                var k = ni
                while true {
                    if match(p, pi + 1, n, k) { return true }
                    if k == n.count || n[k] == "/" { return false }
                    k += 1
                }
            case "?":
                guard ni < n.count, n[ni] != "/" else { return false }
                pi += 1; ni += 1
            case "[":
                guard ni < n.count, n[ni] != "/", let (matched, next) = classMatch(p, pi, n[ni]), matched else { return false }
                pi = next; ni += 1
            case "\\":
                guard pi + 1 < p.count, ni < n.count, p[pi + 1] == n[ni] else { return false }
                pi += 2; ni += 1
            default:
                guard ni < n.count, p[pi] == n[ni] else { return false }
                pi += 1; ni += 1
            }
        }
        return ni == n.count
    }

    /// Whether the class starting at `p[start]` (`[`) holds `c`, and where the pattern goes on.
    private static func classMatch(_ p: [Unicode.Scalar], _ start: Int, _ c: Unicode.Scalar) -> (Bool, Int)? {
        var i = start + 1
        var negated = false
        if i < p.count, p[i] == "^" { negated = true; i += 1 }
        var matched = false, first = true
        while i < p.count {
            if p[i] == "]" && !first { return (matched != negated, i + 1) }
            first = false
            guard let (lo, afterLo) = classChar(p, i) else { return nil }
            var hi = lo, next = afterLo
            if next < p.count, p[next] == "-", next + 1 < p.count, p[next + 1] != "]" {
                guard let (h, afterHi) = classChar(p, next + 1) else { return nil }
                hi = h; next = afterHi
            }
            if lo.value <= c.value && c.value <= hi.value { matched = true }
            i = next
        }
        return nil  // no closing bracket
    }

    private static func classChar(_ p: [Unicode.Scalar], _ i: Int) -> (Unicode.Scalar, Int)? {
        guard i < p.count else { return nil }
        if p[i] == "\\" { return i + 1 < p.count ? (p[i + 1], i + 2) : nil }
        if p[i] == "-" || p[i] == "]" { return nil }
        return (p[i], i + 1)
    }

    private static func isValid(_ p: [Unicode.Scalar]) -> Bool {
        var i = 0
        while i < p.count {
            switch p[i] {
            case "\\":
                guard i + 1 < p.count else { return false }
                i += 2
            case "[":
                guard let (_, next) = classMatch(p, i, "a") else { return false }
                i = next
            default:
                i += 1
            }
        }
        return true
    }
}

/// `images.labels`: a config's labels as a JSON object with sorted keys (`{}` for none).
enum ImageLabels {
    static func encode(_ labels: [String: String]?) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(labels ?? [:])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Whether stored labels are `{}` (nearly every image), without decoding them.
    static func isEmpty(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        text.count == 2 && text[0] == UInt8(ascii: "{") && text[1] == UInt8(ascii: "}")
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
