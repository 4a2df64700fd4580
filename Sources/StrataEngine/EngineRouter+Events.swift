import Foundation
import NIOCore
import Strata

/// `docker events`: the store's events (``Store/events(since:until:filters:poll:)``), which
/// the store records in the transaction of each change, so the CLI's changes show too.
extension EngineRouter {
    /// `GET /events?since=&until=&filters=`: a stream of dockerd's event messages, one JSON
    /// object a line, from `since` (else from now) until `until` (else until the client
    /// goes). Filters: ``EventFilters/init(_:)`` (an unknown key is a 400, as dockerd).
    func events(_ req: EngineRequest, _ res: EngineResponse) async throws {
        // `--since 0` is 1970, every event kept (for logs 0 is "not set", the same thing there).
        let since = req.string("since") == "0" ? Date(timeIntervalSince1970: 0) : try Self.logTime(req.string("since"), "since")
        let until = try Self.logTime(req.string("until"), "until")
        let f = try EventFilters(try req.filters())
        try await res.startStream(contentType: "application/json")
        let events = store.events(since: since, until: until, filters: f)
        let channel = res.channel
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await e in events {
                    try await res.message(e.dockerJSON())
                }
            }
            // The client going away ends the stream, even while no event comes to write; so
            // does the server's shutdown (it waits for every request in flight).
            let runner = self.runner
            group.addTask {
                while channel?.isActive ?? true, await !runner.isStopping { try await Task.sleep(for: .milliseconds(250)) }
            }
            try await group.next()
            group.cancelAll()
        }
        try await res.finish()
    }
}
