import ArgumentParser
import Foundation
import Strata

struct ImagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "List images.",
        discussion: """
            Filters: dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE.

            Examples:
              strata images
              strata images -a --digests
              strata images --filter reference='busy*' -q
              strata images --format json
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Show all images (intermediate images are hidden by default).")
    var all = false
    @Flag(name: .shortAndLong, help: "Only show image IDs.")
    var quiet = false
    @Flag(help: "Show digests.")
    var digests = false
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.")
    var noTrunc = false
    @Option(name: .shortAndLong, help: "Filter output (key=value).")
    var filter: [String] = []
    @Option(help: "Output format: table or json.")
    var format: TableFormat = .table
    @Argument(help: "Only images in this repository (and tag).")
    var repository: String?

    func run() async throws {
        var byKey: [String: [String]] = [:]
        for f in filter {
            guard let eq = f.firstIndex(of: "=") else {
                throw StrataError(.invalidArgument, "invalid filter \"\(f)\": expected key=value")
            }
            byKey[String(f[..<eq]), default: []].append(String(f[f.index(after: eq)...]))
        }
        var filters = try ImageFilters(byKey)
        if let repository {
            let r = try Reference(repository, defaultTag: false)
            filters.references.append(r.tag.map { "\(r.familiarName):\($0)" } ?? r.familiarName)
        }
        let store = try await global.openStore()
        let images = try await store.images(all: all, filters: filters)
        if format == .json {
            print(try Output.json(images))
            return
        }
        if quiet {
            // One line per image (the list holds each image once), written at once.
            var out = ""
            out.reserveCapacity(images.count * (noTrunc ? 72 : 13))
            for k in images.indices {
                out += Units.shortID(images[k].id, noTrunc: noTrunc)
                out += "\n"
            }
            print(out, terminator: "")
            Output.endListing(keeping: (images, store))
            return
        }
        var header = ["REPOSITORY", "TAG"]
        if digests { header.append("DIGEST") }
        header += ["IMAGE ID", "CREATED", "SIZE"]
        var table = Table(header, rows: images.count)
        let now = Date()
        // By index, reading the fields each row needs: iterating would copy every summary.
        for k in images.indices {
            let id = Units.shortID(images[k].id, noTrunc: noTrunc)
            for (repo, tag) in Output.splitTags(images[k].tags) {
                table.add(repo)
                table.add(tag)
                if digests {
                    let d = images[k].repoDigests.first { $0.hasPrefix(repo + "@") }
                    table.add(d.flatMap { $0.split(separator: "@").last.map(String.init) } ?? "<none>")
                }
                table.add(id)
                table.add(Units.ago(images[k].created, now: now))
                table.add(Units.size(images[k].size))
                table.endRow()
            }
        }
        print(table.render(), terminator: "")
        Output.endListing(keeping: (images, table, store))
    }
}

struct TagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag",
        abstract: "Create a tag TARGET that refers to SOURCE.",
        discussion: "Example:\n  strata tag busybox:latest mybox:1")

    @OptionGroup var global: GlobalOptions
    @Argument var source: String
    @Argument var target: String

    func run() async throws {
        _ = try Reference(target)
        let store = try await global.openStore()
        try await store.tag(source, as: target)
    }
}

struct RmiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmi",
        abstract: "Remove images.",
        discussion: """
            Follows Docker's rules: removing a tag only untags while other tags remain; an \
            image that child images use, or that several repositories tag, needs -f when named \
            by ID; untagged parents that nothing else needs are removed too.

            Examples:
              strata rmi app:1
              strata rmi -f 5d4f8a3e1b2c
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Force removal.")
    var force = false
    @Argument var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("rmi needs at least one image") }
    }

    func run() async throws {
        let store = try await global.openStore()
        var failed = false
        for ref in images {
            do {
                for e in try await store.removeImage(ref, force: force) { print(e) }
            } catch let e as StrataError {
                Output.error(e.message)
                failed = true
            }
        }
        if failed { throw CommandFailed() }
    }
}
