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
        var filters = try ImageFilters(try FilterOption.byKey(filter))
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
            // The ID once per row the table would have, as docker prints it (an image with
            // three tags three times), written at once.
            var out = ""
            let noTrunc = self.noTrunc, digests = self.digests
            out.reserveCapacity(images.count * (noTrunc ? 72 : 13))
            for k in images.indices {
                let id = Units.shortID(images[k].id, noTrunc: noTrunc)
                let n = images[k].repoDigests.isEmpty ? max(1, images[k].tags.count)
                    : Self.rows(tags: images[k].tags, repoDigests: images[k].repoDigests, digests: digests).count
                for _ in 0..<n {
                    out += id
                    out += "\n"
                }
            }
            print(out, terminator: "")
            Output.endListing(keeping: (images, store))
            return
        }
        var header = ["REPOSITORY", "TAG"]
        if digests { header.append("DIGEST") }
        header += ["IMAGE ID", "CREATED", "SIZE"]
        // A long listing is laid out in two halves at once (the cells of 10,000 rows cost as
        // much as reading them), then written with widths common to both.
        let now = Date(), digests = self.digests, noTrunc = self.noTrunc
        let half = images.count > 2_000 ? images.count / 2 : images.count
        async let first = Self.rows(images, 0..<half, digests: digests, noTrunc: noTrunc, now: now, columns: header.count)
        async let second = Self.rows(images, half..<images.count, digests: digests, noTrunc: noTrunc, now: now, columns: header.count)
        let head = Table(header)
        let parts = [head, await first, await second]
        let widths = Table.widths(parts)
        async let firstText = parts[1].renderBytes(widths: widths)
        let secondText = parts[2].renderBytes(widths: widths)
        let headText = head.renderBytes(widths: widths)
        let text = await [headText, firstText, secondText]
        for t in text { Output.writeStandardOutput(t) }
        Output.endListing(keeping: (images, parts, store))
    }
}

extension ImagesCommand {
    /// The table rows of `images[range]`: a row per tag, reading only the fields shown
    /// (by index: iterating would copy every summary).
    static func rows(_ images: [ImageSummary], _ range: Range<Int>, digests: Bool, noTrunc: Bool, now: Date, columns: Int) -> Table {
        var table = Table(columns: columns, rows: range.count)
        var ago = Units.Ago(now: now)
        for k in range {
            let id = Units.shortID(images[k].id, noTrunc: noTrunc)
            // Docker lists an image with no date (the API's Created 0) as created in 1970.
            let created = ago(images[k].created ?? Date(timeIntervalSince1970: 0))
            let size = Units.size(images[k].size)
            if images[k].repoDigests.isEmpty {
                // Nearly every image: a row per tag, no digest to look up.
                Output.forEachSplitTag(images[k].tags) { repo, tag in
                    table.add(repo)
                    table.add(tag)
                    if digests { table.add("<none>") }
                    table.add(id)
                    table.add(created)
                    table.add(size)
                    table.endRow()
                }
                continue
            }
            for row in Self.rows(tags: images[k].tags, repoDigests: images[k].repoDigests, digests: digests) {
                table.add(row.repo)
                table.add(row.tag)
                if digests { table.add(row.digest) }
                table.add(id)
                table.add(created)
                table.add(size)
                table.endRow()
            }
        }
        return table
    }

    /// The rows `docker images` prints for an image (the docker CLI's
    /// `imageFormatTaggedAndDigest`): a row per tag, grouped by repository; with `digests`, a
    /// row per tag and digest of its repository; a repository that has digests but no tag gets
    /// `<none>` tag rows; an image with neither tags nor digests is one `<none>` row.
    ///
    /// ```swift
    /// ImagesCommand.rows(tags: ["app:1"], repoDigests: ["app@sha256:ab…", "lib@sha256:cd…"], digests: true)
    /// // [("app", "1", "sha256:ab…"), ("lib", "<none>", "sha256:cd…")]
    /// ```
    static func rows(tags: [String], repoDigests: [String], digests: Bool) -> [(repo: String, tag: String, digest: String)] {
        if tags.isEmpty && repoDigests.isEmpty { return [("<none>", "<none>", "<none>")] }
        var byRepo: [(repo: String, digests: [String])] = []
        for d in repoDigests {
            guard let at = d.lastIndex(of: "@") else { continue }
            let repo = String(d[..<at]), digest = String(d[d.index(after: at)...])
            if let k = byRepo.firstIndex(where: { $0.repo == repo }) {
                byRepo[k].digests.append(digest)
            } else {
                byRepo.append((repo, [digest]))
            }
        }
        var out: [(repo: String, tag: String, digest: String)] = []
        var tagged = Set<String>()
        for (repo, tag) in tags.isEmpty ? [] : Output.splitTags(tags) {
            tagged.insert(repo)
            let shown = digests ? byRepo.first { $0.repo == repo }?.digests ?? [] : []
            if shown.isEmpty {
                out.append((repo, tag, "<none>"))
            } else {
                for d in shown { out.append((repo, tag, d)) }
            }
        }
        for (repo, ds) in byRepo where !tagged.contains(repo) {
            if digests {
                for d in ds { out.append((repo, "<none>", d)) }
            } else {
                out.append((repo, "<none>", ""))
            }
        }
        return out
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
