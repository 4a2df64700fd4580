import Foundation
import GRDB

/// One change of the store or operation on it, in Docker's event vocabulary (`docker
/// events`). Triggers write a row's change in its transaction (migrations 0010 and 0011), so
/// the CLI's changes, the Engine API's, prune's and gc's are all there, and such an event
/// exists exactly when its change was committed. An operation that changes no row (a kill,
/// an exec, a save) records its event once it has happened.
///
/// | type | actions | actor |
/// |---|---|---|
/// | `image` | `tag`, `untag`, `delete`, `load`, `pull`, `import`, `push`, `save` | the image ID (`pull`, `push`: the reference) |
/// | `container` | `create`, `start`, `die`, `pause`, `unpause`, `rename`, `destroy`, `kill`, `stop`, `restart`, `commit`, `attach`, `resize`, `exec_create: CMD`, `exec_start: CMD`, `exec_die` | the container ID |
/// | `volume` | `create`, `destroy` | the volume name |
public struct StoreEvent: Sendable, Hashable, Codable {
    /// The event's place in the store's sequence: later events have larger numbers.
    public var sequence: Int64
    /// When it was committed, in nanoseconds since the Unix epoch (millisecond precision).
    public var timeNano: Int64
    public var type: String
    public var action: String
    public var actorID: String
    /// Docker's attributes: for images their labels and `name`; for containers their labels,
    /// `image` and `name`, and `exitCode` for a `die` and an `exec_die`, `oldName` for a
    /// `rename`, `signal` for a `kill`, `execID` for the `exec_*`, `comment`, `imageID` and
    /// `imageRef` for a `commit`, `height` and `width` for a `resize`; `driver` for volumes.
    public var attributes: [String: String]

    public var time: Date { Date(timeIntervalSince1970: Double(timeNano) / 1e9) }

    /// The message dockerd sends for it (`GET /events`, `strata events --format json`): the
    /// typed form (`Type`, `Action`, `Actor`), and for images and containers the old form's
    /// `status`, `id` and (containers) `from` too.
    public func dockerJSON() -> [String: Any] {
        var out: [String: Any] = [
            "Type": type, "Action": action, "Actor": ["ID": actorID, "Attributes": attributes] as [String: Any],
            "scope": "local", "time": timeNano / 1_000_000_000, "timeNano": timeNano,
        ]
        if type == "image" || type == "container" {
            out["status"] = action
            out["id"] = actorID
            if type == "container" { out["from"] = attributes["image"] ?? "" }
        }
        return out
    }

    /// The line `docker events` prints for it:
    /// `2026-12-07T01:26:52.697000000Z container die 523b… (exitCode=3, image=bb:1, name=c1)`.
    public var dockerLine: String {
        let seconds = timeNano / 1_000_000_000
        let nanos = String(timeNano % 1_000_000_000)
        let stamp = RFC3339.format(Date(timeIntervalSince1970: Double(seconds))).dropLast()
            + "." + String(repeating: "0", count: 9 - nanos.count) + nanos + "Z"
        let attrs = attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        return "\(stamp) \(type) \(action) \(actorID)" + (attrs.isEmpty ? "" : " (\(attrs))")
    }
}

/// Which events ``Store/events(since:until:filters:poll:)`` gives, as `docker events
/// --filter`: each key given must match (any of its values), as dockerd.
public struct EventFilters: Sendable {
    /// `type=image|container|volume`.
    public var types: [String] = []
    /// `event=start` (the action).
    public var actions: [String] = []
    /// `container=ID-or-name`: the container's full or short ID, or its name.
    public var containers: [String] = []
    /// `image=ID-or-reference`: an image event's actor or name, a container event's image,
    /// each also without its tag.
    public var images: [String] = []
    /// `volume=NAME`.
    public var volumes: [String] = []
    /// `label=KEY` or `label=KEY=VALUE`, matched against the attributes.
    public var labels: [String] = []

    /// Keys that name what strata has none of (`network`, `daemon`, `plugin`, `node`,
    /// `service`, `secret`, `config`; `scope` other than `local`): a filter on one takes no event.
    public var matchesNothing = false

    public init() {}

    /// Filters by key as `docker events --filter KEY=VALUE` and the Engine API's `filters`
    /// give them. An unknown key is an `.invalidArgument` error (`invalid filter 'colour'`).
    ///
    /// ```swift
    /// let f = try EventFilters(["type": ["container"], "event": ["die"]])
    /// ```
    public init(_ byKey: [String: [String]]) throws {
        for (key, values) in byKey.sorted(by: { $0.key < $1.key }) where !values.isEmpty {
            switch key {
            case "type": types = values
            case "event": actions = values
            case "container": containers = values
            case "image": images = values
            case "volume": volumes = values
            case "label": labels = values
            case "scope": matchesNothing = matchesNothing || !values.contains("local")
            case "network", "daemon", "plugin", "node", "service", "secret", "config": matchesNothing = true
            default: throw FilterPattern.invalid(key)
            }
        }
    }

    public func matches(_ e: StoreEvent) -> Bool {
        if matchesNothing { return false }
        if !types.isEmpty, !types.contains(e.type) { return false }
        if !actions.isEmpty {
            // As dockerd (moby#25798): when one value names an action that carries its command
            // (`exec_create: sh -c …`), every value matches as a prefix; otherwise exactly.
            let fuzzy = actions.contains { ["exec_create", "exec_start", "health_status"].contains($0) }
            guard actions.contains(where: { fuzzy ? e.action.hasPrefix($0) : $0 == e.action }) else { return false }
        }
        if !containers.isEmpty {
            guard e.type == "container" else { return false }
            let name = e.attributes["name"] ?? ""
            guard containers.contains(where: { $0 == name || $0 == "/" + name || (!$0.isEmpty && e.actorID.hasPrefix($0)) }) else { return false }
        }
        if !images.isEmpty {
            let candidates: [String] = e.type == "container" ? [e.attributes["image"] ?? ""] : [e.actorID, e.attributes["name"] ?? ""]
            guard images.contains(where: { f in candidates.contains { c in Self.sameImage(f, c) } }) else { return false }
        }
        if !volumes.isEmpty {
            guard e.type == "volume", volumes.contains(e.actorID) else { return false }
        }
        for label in labels {
            let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
            guard let value = e.attributes[parts[0]] else { return false }
            if parts.count == 2, parts[1] != value { return false }
        }
        return true
    }

    /// dockerd's rule: the filter is the event's actor or image name exactly, or either one
    /// without its tag or digest (`app` takes `app:1` and `app:latest`).
    private static func sameImage(_ filter: String, _ value: String) -> Bool {
        guard !value.isEmpty else { return false }
        return filter == value || filter == withoutTag(value)
    }

    /// A reference without `@digest` and without a `:tag` in its last component.
    static func withoutTag(_ ref: String) -> String {
        var r = Substring(ref)
        if let at = r.firstIndex(of: "@") { r = r[..<at] }
        let lastSlash = r.lastIndex(of: "/")
        if let colon = r.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true { r = r[..<colon] }
        return String(r)
    }
}

extension Store {
    /// The store's events from `since` (none: only those from now on) up to `until` (none:
    /// on and on, until the caller stops iterating), oldest first, those `filters` takes.
    /// New events are seen within `poll` (they are rows: a reader asks for those after the
    /// last it gave). The store keeps the last 10,000 or more.
    ///
    /// ```swift
    /// for try await e in store.events(filters: { var f = EventFilters(); f.types = ["container"]; return f }()) {
    ///     print(e.action, e.actorID)
    /// }
    /// ```
    public func events(since: Date? = nil, until: Date? = nil, filters: EventFilters = EventFilters(),
                       poll: Duration = .milliseconds(200)) -> AsyncThrowingStream<StoreEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<StoreEvent, any Error>.makeStream()
        let task = Task {
            do {
                let untilNano = until.map { Int64(($0.timeIntervalSince1970 * 1e9).rounded(.down)) }
                var after: Int64
                if let since {
                    let sinceNano = Int64((since.timeIntervalSince1970 * 1e9).rounded(.down))
                    after = try await read { db in
                        try Int64.fetchOne(db, sql: "SELECT max(seq) FROM events WHERE time_nano < ?", arguments: [sinceNano]) ?? 0
                    }
                } else {
                    after = try await read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM events") ?? 0 }
                }
                while !Task.isCancelled {
                    let batch = try await eventRows(after: after)
                    for e in batch {
                        after = e.sequence
                        if let untilNano, e.timeNano > untilNano { continuation.finish(); return }
                        if filters.matches(e) { continuation.yield(e) }
                    }
                    if let untilNano, Int64((Date().timeIntervalSince1970 * 1e9).rounded(.down)) > untilNano, batch.isEmpty {
                        break
                    }
                    if batch.count < 500 { try await Task.sleep(for: poll) }
                }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func eventRows(after: Int64) async throws -> [StoreEvent] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT seq, time_nano, type, action, actor_id, attributes FROM events WHERE seq > ? ORDER BY seq LIMIT 500
                """, arguments: [after]).map { row in
                let json = (row["attributes"] as String?) ?? "{}"
                let attributes = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]).map { dict in
                    dict.mapValues { v in v as? String ?? "\(v)" }
                } ?? [:]
                return StoreEvent(sequence: row["seq"], timeNano: row["time_nano"], type: row["type"], action: row["action"],
                                  actorID: row["actor_id"], attributes: attributes)
            }
        }
    }

    /// Records an event that names an operation rather than a row's change, in the
    /// operation's own transaction. Its time is the row's (the table's default).
    static func recordEvent(_ db: Database, type: String, action: String, actor: String, attributes: [String: String]) throws {
        try db.cachedStatement(sql: "INSERT INTO events(type, action, actor_id, attributes) VALUES (?, ?, ?, ?)")
            .execute(arguments: [type, action, actor, try Self.json(attributes)])
    }

    /// Records a container's operation event (`kill`, `stop`, `commit`, `attach`, `exec_*`,
    /// `resize`, `restart`) with dockerd's attributes for the container (its labels, `image`
    /// and `name`, from the `container_actors` view the triggers use too) plus `extra`.
    /// Nothing is recorded for a container that is gone.
    static func recordContainerEvent(_ db: Database, id: String, action: String, extra: [String: String] = [:]) throws {
        try db.cachedStatement(sql: """
            INSERT INTO events(type, action, actor_id, attributes)
            SELECT 'container', ?, id, json_patch(attributes, ?) FROM container_actors WHERE id = ?
            """).execute(arguments: [action, try Self.json(extra), id])
    }

    /// Records an image's operation event (`load`, `pull`, `import`, `push`, `save`) as
    /// dockerd's `LogImageEvent`: the image's labels, then `name`.
    static func recordImageEvent(_ db: Database, action: String, actor: String, image: String, name: String) throws {
        try db.cachedStatement(sql: """
            INSERT INTO events(type, action, actor_id, attributes)
            VALUES ('image', ?, ?, json_patch(coalesce((SELECT labels FROM images WHERE id = ?), '{}'), json_object('name', ?)))
            """).execute(arguments: [action, actor, image, name])
    }

    /// One short write that records a container's operation event: an operation that is not a
    /// row's change (a signal sent, an attach, an exec) has no transaction of its own to join.
    package func recordContainerEvent(_ id: String, action: String, extra: [String: String] = [:]) async throws {
        try await write { db in try Self.recordContainerEvent(db, id: id, action: action, extra: extra) }
    }

    /// One short write that records an image's operation event (``recordImageEvent(_:action:actor:image:name:)``).
    package func recordImageEvents(_ events: [(action: String, actor: String, image: String, name: String)]) async throws {
        guard !events.isEmpty else { return }
        try await write { db in
            for e in events { try Self.recordImageEvent(db, action: e.action, actor: e.actor, image: e.image, name: e.name) }
        }
    }

    private static func json(_ attributes: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: attributes, options: [.sortedKeys]), as: UTF8.self)
    }
}
