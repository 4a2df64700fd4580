import ArgumentParser
import Foundation
import Strata
import StrataRegistry

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Find repositories in a registry, or list a repository's tags.",
        discussion: """
            Any OCI distribution registry is searched through /v2/_catalog (repositories whose
            name contains TERM) and /v2/NAME/tags/list; Docker Hub through its search API.

            Examples:
              strata search localhost:5000/app
              strata search --limit 100 --format json registry.example.com/team
              strata search --list-tags localhost:5000/team/app
              strata search --filter stars=100 --filter is-official=true nginx
            """)
    @OptionGroup var global: GlobalOptions  // accepted for symmetry; search needs no store
    @Option(name: .customLong("insecure-registry"), help: "Allow plain HTTP to this registry (host:port). Loopback always is.")
    var insecure: [String] = []
    @Option(help: "Most repositories to show.") var limit = 25
    @Option(help: "table or json.") var format: TableFormat = .table
    @Flag(name: .customLong("list-tags"), help: "List every tag of the repository REGISTRY/REPO instead.")
    var listTags = false
    @Flag(name: .customLong("no-trunc"), help: "Do not truncate descriptions.") var noTrunc = false
    @Option(name: [.customShort("f"), .long], help: "stars=N, is-official=true|false or is-automated=true|false (repeatable).")
    var filter: [String] = []
    @Argument(help: "REGISTRY/TERM, or REGISTRY/REPO with --list-tags.") var query: String

    func run() async throws {
        let options = RegistryOptions(insecureRegistries: Set(insecure))
        let filters = try SearchFilters(parsing: filter)
        if listTags {
            let tags = try await Registry.listTags(query, options: options)
            if format == .json { print(try Output.json(tags)) } else { tags.forEach { print($0) } }
            return
        }
        let found = try await Registry.search(query, limit: limit, options: options).filter(filters.matches)
        if format == .json { print(try Output.json(found)); return }
        let hub = found.contains { $0.stars != nil }
        let header = hub ? ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"] : ["NAME", "TAGS", "DESCRIPTION"]
        let rows: [[String]] = found.map { m in
            let description = (m.description ?? "").replacingOccurrences(of: "\n", with: " ")
            let shown = noTrunc ? description : Units.ellipsis(description, 45)
            if hub { return [m.name, shown, m.stars.map(String.init) ?? "", m.official == true ? "[OK]" : ""] }
            return [m.name, m.tags.map(String.init) ?? "-", shown]
        }
        print(Output.table(header, rows), terminator: "")
    }
}
