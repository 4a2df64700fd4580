import ArgumentParser
import Foundation
import Strata

/// `strata events`: the store's events (``Store/events(since:until:filters:poll:)``), as
/// `docker events` prints them.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Show the store's events: tags, deletes, loads and pulls, containers' lives, volumes.",
        discussion: """
            Every change to the store records its event in the same transaction, whichever \
            process made it (this CLI, strata serve, prune). Without --since, only events from \
            now on are shown; without --until, it goes on until interrupted. A time is a Unix \
            timestamp, an RFC 3339 date, or a duration back from now (10m, 1h30m). Filters: \
            type, event, container, image, volume, label, as docker's.

            Examples:
              strata events --since 1h --until 0s
              strata events --filter type=container --filter event=die
              strata events --format json
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Show events since this time.")
    var since: String?
    @Option(help: "Stop at this time.")
    var until: String?
    @Option(name: [.short, .long], help: "Filter output (KEY=VALUE), repeatable.")
    var filter: [String] = []
    @Option(help: "Output format: table (docker's lines) or json (one message a line).")
    var format: TableFormat = .table

    func run() async throws {
        let filters = try EventFilters(try FilterOption.byKey(filter))
        let since = try since.map { try Self.time($0, "--since") }
        let until = try until.map { try Self.time($0, "--until") }
        let store = try await global.openStore()
        for try await e in store.events(since: since, until: until, filters: filters) {
            if format == .json {
                let data = try JSONSerialization.data(withJSONObject: e.dockerJSON(), options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(e.dockerLine)
            }
            fflush(nil)  // each event as it comes, also into a pipe
        }
    }

    /// A Unix timestamp (`1700000000`, `1700000000.5`), an RFC 3339 date, or a duration back
    /// from now (`10m`), as the docker CLI reads `--since` and `--until`.
    static func time(_ value: String, _ option: String) throws -> Date {
        if let seconds = Double(value), value.first?.isNumber == true, !value.contains(where: \.isLetter) {
            return Date(timeIntervalSince1970: seconds)
        }
        if let date = RFC3339.parse(value) { return date }
        if let back = try? Durations.parse(value) { return Date().addingTimeInterval(-back) }
        throw StrataError(.invalidArgument, "\(option) \(value): expected a Unix timestamp, an RFC 3339 date or a duration (10m)")
    }
}
