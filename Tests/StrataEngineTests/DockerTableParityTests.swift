import Foundation
import Testing

/// `strata images` and `strata history` print what the real docker CLI prints for the same
/// store, byte for byte.
///
/// The docker CLI, pointed at `strata serve`, renders its own table (Go's tabwriter, go-units
/// sizes, its own truncation and row order) from the JSON the server sends; strata's CLI
/// renders the same store through its own code. A store generated from a fixed seed by
/// `tools/table-parity --generate` (SplitMix64: 40-80 images with tags of every shape,
/// untagged and intermediate images, parent chains, sizes from 0 B to tens of MB, dates in
/// 2015-2022, an image with no date, CREATED BY texts around the 45-character cut, with
/// tabs and wide characters) is listed both ways with each flag set. `tools/table-parity
/// --seeds N` runs the same comparison for other seeds by hand.
@Suite(.serialized) struct DockerTableParityTests {
    /// The store's seed. Change it in a commit of its own, so that a failure has one cause.
    static let seed = 20_261_206
    static let tool = EngineHarness.repo.appendingPathComponent("tools/table-parity").path

    /// What the generator wrote next to the archive: images to ask the history of, and
    /// `reference=` patterns that match some of the generated tags.
    struct Plan: Decodable {
        var images: Int
        var history: [String]
        var references: [String]
    }

    /// Whether python3 (which writes the archive) is here: a skip on a user's machine, a
    /// failure under CI=true, as for the docker CLI.
    static func pythonAvailable() -> Bool {
        let found = ["/usr/bin/python3", "/usr/local/bin/python3"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        if !found, ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("CI=true but python3 is missing: run tools/setup")
        }
        return found
    }

    /// A harness whose store holds the seed's images, with `strata serve` running on it.
    static func store() throws -> (EngineHarness, Plan) {
        let h = try EngineHarness()
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "/usr/local/bin/python3"
        let gen = try h.run(python, [tool, "--generate", String(seed), h.file("gen")])
        guard gen.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "generator: \(gen.err)"]) }
        let load = try h.strata(["load", "-q", "-i", h.file("gen/images.tar")])
        guard load.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "load: \(load.err)"]) }
        let plan = try JSONDecoder().decode(Plan.self, from: Data(contentsOf: URL(fileURLWithPath: h.file("gen/plan.json"))))
        try h.start()
        return (h, plan)
    }

    /// Sorts each run of rows that share an IMAGE ID cell; nothing else changes.
    ///
    /// Docker's CLI groups an image's tags by repository in a Go map
    /// (`imageFormatTaggedAndDigest`), so the rows of an image tagged in several repositories
    /// come in a random order on every run: only that order is not compared. Rows of
    /// different images, column widths and every cell are.
    static func normalised(_ text: String) -> String {
        var lines = text.components(separatedBy: "\n")
        guard let header = lines.first, header.hasPrefix("REPOSITORY"), let at = header.range(of: "IMAGE ID")?.lowerBound else { return text }
        let offset = header.distance(from: header.startIndex, to: at)
        func key(_ line: String) -> Substring {
            line.dropFirst(offset).prefix { $0 != " " }
        }
        var k = 1
        while k < lines.count {
            var end = k + 1
            while end < lines.count, key(lines[end]) == key(lines[k]) { end += 1 }
            lines[k..<end].sort()
            k = end
        }
        return lines.joined(separator: "\n")
    }

    /// The two outputs, or where they first differ, for a failure message.
    static func difference(_ docker: String, _ strata: String) -> String {
        let d = docker.components(separatedBy: "\n"), s = strata.components(separatedBy: "\n")
        let k = (0..<min(d.count, s.count)).first { d[$0] != s[$0] } ?? min(d.count, s.count)
        let line = { (a: [String]) in k < a.count ? a[k] : "(no line)" }
        return "first difference at line \(k + 1):\n docker: \(line(d))\n strata: \(line(s))\n--- docker\n\(docker)--- strata\n\(strata)"
    }

    /// Runs `docker ARGS` and `strata ARGS` (with `env`, e.g. a time zone) and expects the
    /// same output and a zero status.
    static func expectSame(_ h: EngineHarness, _ args: [String], env: [String: String] = [:]) throws {
        let dockerExe = FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker") ? "/usr/local/bin/docker" : "/usr/bin/docker"
        let d = try h.run(dockerExe, args, env: ["DOCKER_HOST": "unix://" + h.socket, "DOCKER_CONFIG": h.file("docker-config")].merging(env) { $1 })
        let s = try h.run(EngineHarness.binary, args, env: ["STRATA_ROOT": h.root].merging(env) { $1 })
        #expect(d.status == 0, "docker \(args): \(d.err)")
        #expect(s.status == 0, "strata \(args): \(s.err)")
        #expect(!d.out.isEmpty || args.contains { $0.hasPrefix("dangling=") || $0.hasPrefix("reference=") }, "docker \(args) printed nothing")
        // Padding included: Table counts display columns as docker's tabwriter does (wide
        // and combining characters).
        #expect(normalised(d.out) == normalised(s.out), "\(args.joined(separator: " ")): \(difference(d.out, s.out))")
    }

    @Test func imagesTables() throws {
        guard EngineHarness.dockerAvailable(), Self.pythonAvailable() else { return }
        let (h, plan) = try Self.store()
        defer { h.stop() }
        #expect((40...80).contains(plan.images), "\(plan.images) images")
        let pattern = try #require(plan.references.first)
        let flagSets: [[String]] = [
            [], ["-a"], ["--no-trunc"], ["--digests"], ["-q"], ["-a", "-q"], ["-q", "--no-trunc"],
            ["-a", "--digests", "--no-trunc"], ["--filter", "dangling=true"], ["--filter", "dangling=false"],
            ["-a", "--filter", "dangling=true"],
        ] + plan.references.map { ["--filter", "reference=\($0)"] } + [["-a", "--filter", "reference=\(pattern)"]]
        for flags in flagSets {
            try Self.expectSame(h, ["images"] + flags)
        }
        // `images REPOSITORY`: the docker CLI sends it as a reference filter.
        let repos = plan.history.compactMap { ref -> String? in
            guard let colon = ref.lastIndex(of: ":"), !ref[colon...].contains("/") else { return nil }
            return String(ref[..<colon])
        }
        for repo in repos.prefix(3) {
            try Self.expectSame(h, ["images", repo])
        }
    }

    /// Repository digests (recorded by push): a repository with tags and a digest, one with
    /// a digest only (pushed by ID under another name), and an untagged image that has a
    /// digest (no longer dangling for docker).
    @Test func imagesTablesWithRepoDigests() throws {
        guard EngineHarness.dockerAvailable(), Self.pythonAvailable() else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but docker-registry is missing: run tools/setup") }
            return
        }
        let (h, _) = try Self.store()
        defer { h.stop() }
        let host = try h.startRegistry()
        let stored = try h.images()
        let tagged = stored.compactMap { ($0["tags"] as? [String])?.first }
        let untagged = stored.filter { ($0["tags"] as? [String])?.isEmpty == true && ($0["children"] as? Int) == 0 }.compactMap { $0["id"] as? String }
        let a = try #require(tagged.first), b = try #require(tagged.dropFirst().first), d = try #require(untagged.first)
        func push(_ args: [String]) throws {
            let r = try h.strata(["push", "-q", "--insecure-registry", host] + args)
            #expect(r.status == 0, "push \(args): \(r.err)")
        }
        #expect(try h.strata(["tag", a, "\(host)/parity/a:1"]).status == 0)
        #expect(try h.strata(["tag", a, "\(host)/parity/a:2"]).status == 0)
        try push(["\(host)/parity/a:1"])
        try push(["\(host)/parity/a:2"])
        try push([b, "\(host)/parity/b:1"])
        try push([d, "\(host)/parity/d:1"])
        let flagSets: [[String]] = [
            [], ["--digests"], ["-a", "--digests", "--no-trunc"], ["-q"], ["-q", "--digests"],
            ["--filter", "dangling=true"], ["--filter", "dangling=true", "--digests"], ["--filter", "reference=\(host)/*/*", "--digests"],
        ]
        for flags in flagSets {
            try Self.expectSame(h, ["images"] + flags)
        }
        let rows = try h.strata(["images", "--digests"]).out
        #expect(rows.contains("\(host)/parity/b   "), "no digest-only row: \(rows)")
    }

    /// What `strata serve` lists must be what moby would list for the store (the docker CLI
    /// prints it as it comes, so the parity above cannot see a wrong list).
    @Test func listSemanticsAsMoby() throws {
        guard EngineHarness.dockerAvailable(), Self.pythonAvailable() else { return }
        let (h, plan) = try Self.store()
        defer { h.stop() }
        let all = try h.images()
        let children = Dictionary(all.compactMap { i in (i["id"] as? String).map { ($0, i["children"] as? Int ?? 0) } }) { a, _ in a }

        // dangling=true is moby's "heads" without a reference: untagged images that no image
        // is built on (an intermediate image is not dangling).
        let dangling = try h.docker(["images", "-q", "--no-trunc", "--filter", "dangling=true"])
        #expect(dangling.status == 0, "\(dangling.err)")
        let parents = dangling.out.split(separator: "\n").filter { (children[String($0)] ?? 0) > 0 }
        #expect(dangling.out.split(separator: "\n").count > parents.count, "no dangling image in the store")
        #expect(parents.isEmpty, "listed as dangling but a parent: \(parents)")

        // reference=PATTERN keeps only the matching references of an image (moby filters each
        // reference), so every row's repository:tag or repository matches.
        for pattern in plan.references {
            let r = try h.docker(["images", "--filter", "reference=\(pattern)", "--format", "{{.Repository}}:{{.Tag}}"])
            #expect(r.status == 0, "\(r.err)")
            let stray = r.out.split(separator: "\n").map(String.init).filter { row in
                let name = row.lastIndex(of: ":").map { String(row[..<$0]) } ?? row
                return !Self.pathMatch(pattern, row) && !Self.pathMatch(pattern, name)
            }
            #expect(stray.isEmpty, "reference=\(pattern) lists \(stray)")
        }
    }

    /// Go's `path.Match` for `*` and `?` (neither matches `/`), as moby's reference filter.
    static func pathMatch(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.unicodeScalars), n = Array(name.unicodeScalars)
        func match(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == n.count }
            switch p[i] {
            case "*":
                var k = j
                while true {
                    if match(i + 1, k) { return true }
                    if k == n.count || n[k] == "/" { return false }
                    k += 1
                }
            case "?":
                return j < n.count && n[j] != "/" && match(i + 1, j + 1)
            default:
                return j < n.count && n[j] == p[i] && match(i + 1, j + 1)
            }
        }
        return match(0, 0)
    }

    @Test func historyTables() throws {
        guard EngineHarness.dockerAvailable(), Self.pythonAvailable() else { return }
        let (h, plan) = try Self.store()
        defer { h.stop() }
        let flagSets: [[String]] = [[], ["--no-trunc"], ["-q"], ["-q", "--no-trunc"], ["-H=false"], ["-H=false", "--no-trunc"]]
        for image in plan.history {
            for flags in flagSets {
                try Self.expectSame(h, ["history"] + flags + [image])
            }
        }
        // -H=false prints dates in the local time zone, as Go's time.Local has it.
        let first = try #require(plan.history.first)
        for zone in ["Asia/Kolkata", "America/St_Johns"] {
            try Self.expectSame(h, ["history", "-H=false", first], env: ["TZ": zone])
        }
    }
}
