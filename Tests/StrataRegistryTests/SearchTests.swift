import Foundation
import Testing
import OCI
import Strata
import StrataRegistry

/// `strata search` against a real docker-registry holding more than 250 repositories, so
/// that `/v2/_catalog` pagination (`n=` and `Link`) is exercised; the ground truth is the set
/// of repositories and tags pushed, and `skopeo list-tags` for a repository's tags.
@Suite struct SearchTests {
    /// A registry holding `count` repositories `search/repo-NNN`, repository i with
    /// `i % 3 + 1` tags, `search/many` with 130 tags and `search/seed` (pushed by strata).
    /// - Parameters: `reg` (default: a plain registry), `options` for strata's push, and
    ///   `basic` (`user:password`) for the populating script on an htpasswd registry.
    static func populated(_ count: Int, in registry: LocalRegistry? = nil, options: RegistryOptions = RegistryOptions(progress: nil),
                          basic: String? = nil) async throws -> (LocalRegistry, Store) {
        let reg = try registry ?? LocalRegistry()
        let dir = reg.dir
        let (status, out) = try run(["bash", "-euo", "pipefail", "-c", """
            mkdir -p '\(dir.path)/r/etc' && echo hi > '\(dir.path)/r/etc/greeting' && tar -C '\(dir.path)/r' -cf '\(dir.path)/r.tar' .
            """])
        #expect(status == 0, "\(out)")
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        _ = try await store.importRootfs(from: dir.appendingPathComponent("r.tar"), reference: "tiny:1")
        // strata pushes one repository; the others get the same blobs by cross-repository
        // mount and the same manifest under each tag (one keep-alive connection: fast).
        try await Registry.push("tiny:1", to: "\(reg.host)/search/seed:1", from: store, options: options)
        var tags: [String: [String]] = [:]
        for i in 0..<count { tags["search/repo-\(String(format: "%03d", i))"] = (0...(i % 3)).map { "t\($0)" } }
        tags["search/many"] = (0..<130).map { "v\($0)" }
        let plan = try JSONSerialization.data(withJSONObject: tags)
        try plan.write(to: dir.appendingPathComponent("plan.json"))
        let script = """
            import base64, http.client, json, sys
            host, port = sys.argv[1].split(":")
            c = http.client.HTTPConnection(host, int(port))
            auth = {"Authorization": "Basic " + base64.b64encode(sys.argv[3].encode()).decode()} if len(sys.argv) > 3 else {}
            def req(method, path, body=None, headers={}):
                c.request(method, path, body=body, headers={**headers, **auth})
                r = c.getresponse(); data = r.read()
                if r.status >= 300: sys.exit(f"{method} {path}: {r.status} {data[:200]}")
                return data
            mt = "application/vnd.oci.image.manifest.v1+json"
            m = req("GET", "/v2/search/seed/manifests/1", headers={"Accept": mt})
            doc = json.loads(m)
            blobs = [doc["config"]["digest"]] + [l["digest"] for l in doc["layers"]]
            for repo, tags in json.load(open(sys.argv[2])).items():
                for d in blobs:
                    req("POST", f"/v2/{repo}/blobs/uploads/?mount={d}&from=search/seed", body=b"")
                for t in tags:
                    req("PUT", f"/v2/{repo}/manifests/{t}", body=m, headers={"Content-Type": mt})
            """
        try script.write(to: dir.appendingPathComponent("populate.py"), atomically: true, encoding: .utf8)
        let (status2, out2) = try run(["python3", dir.appendingPathComponent("populate.py").path, reg.host, dir.appendingPathComponent("plan.json").path] + (basic.map { [$0] } ?? []))
        #expect(status2 == 0, "\(out2)")
        return (reg, store)
    }

    @Test func catalogSearchPaginatesAndCountsTags() async throws {
        guard require("docker-registry", "skopeo", "curl") else { return }
        let (reg, _) = try await Self.populated(260)
        // Everything: 260 + 1 repositories, across three catalog pages of 100.
        let all = try await Registry.search("\(reg.host)/", limit: 1000)
        var expected = (0..<260).map { "\(reg.host)/search/repo-\(String(format: "%03d", $0))" }
        expected += ["\(reg.host)/search/many", "\(reg.host)/search/seed"]
        #expect(all.map(\.name).sorted() == expected.sorted())
        for m in all where m.name.contains("repo-") {
            let i = Int(m.name.suffix(3)) ?? -1
            #expect(m.tags == i % 3 + 1, "\(m.name)")
        }
        #expect(all.first { $0.name.hasSuffix("/many") }?.tags == 130)
        // A term: names containing it, in catalog order, capped by the limit.
        let some = try await Registry.search("\(reg.host)/repo-25", limit: 25)
        #expect(some.map(\.name) == (250..<260).map { "\(reg.host)/search/repo-\($0)" })
        let capped = try await Registry.search("\(reg.host)/repo-2", limit: 7)
        #expect(capped.map(\.name) == (200..<207).map { "\(reg.host)/search/repo-\($0)" })
        #expect(try await Registry.search("\(reg.host)/no-such-thing").isEmpty)
        // Tags agree with skopeo's list-tags.
        let (status, out) = try run(["skopeo", "list-tags", "--tls-verify=false", "docker://\(reg.host)/search/many"])
        #expect(status == 0, "\(out)")
        struct Listed: Decodable { var Tags: [String] }
        let skopeoTags = try JSONDecoder().decode(Listed.self, from: Data(out.utf8)).Tags
        let ours = try await Registry.listTags("\(reg.host)/search/many")
        #expect(ours.sorted() == skopeoTags.sorted())
        #expect(ours.count == 130)
    }

    /// The CLI: table, JSON, --list-tags, and errors naming the registry and status.
    @Test func cliSearchAndErrors() async throws {
        guard require("docker-registry", "curl") else { return }
        let (reg, _) = try await Self.populated(5)
        let table = try run([Self.strata, "search", "\(reg.host)/repo-00"])
        #expect(table.0 == 0, "\(table.1)")
        let lines = table.1.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true && lines.first?.contains("TAGS") == true)
        #expect(lines.count == 6)  // header + repo-000…004
        #expect(lines.contains { $0.hasPrefix("\(reg.host)/search/repo-002 ") && $0.contains(" 3") })
        let json = try run([Self.strata, "search", "--format", "json", "--limit", "2", "\(reg.host)/search"])
        #expect(json.0 == 0, "\(json.1)")
        let decoded = try JSONDecoder().decode([RepositoryMatch].self, from: Data(json.1.utf8))
        #expect(decoded.count == 2)
        let tags = try run([Self.strata, "search", "--list-tags", "\(reg.host)/search/repo-004"])
        #expect(tags.1.split(separator: "\n").sorted() == ["t0", "t1"])
        let missing = try run([Self.strata, "search", "--list-tags", "\(reg.host)/search/nope"])
        #expect(missing.0 == 1)
        #expect(missing.1.hasPrefix("error: ") && missing.1.contains("404") && missing.1.contains(reg.host))
    }

    /// A registry without a catalog but with Docker Hub's search API (`/v1/search?q=&n=`):
    /// its results are used, with descriptions, stars and the official flag.
    @Test func hubSearchApiIsUsedWhereOffered() async throws {
        guard require("python3", "curl") else { return }
        let dir = try TestDir("strata-hubsearch")
        let script = """
            import http.server, json, sys, urllib.parse
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    u = urllib.parse.urlparse(self.path); q = urllib.parse.parse_qs(u.query)
                    if u.path == "/v1/search":
                        n = int(q["n"][0]); term = q["q"][0]
                        hits = [{"name": "library/%s%d" % (term, i), "description": "the %s image #%d" % (term, i),
                                 "star_count": 100 - i, "is_official": i == 0} for i in range(40)][:n]
                        body = json.dumps({"query": term, "num_results": len(hits), "results": hits}).encode()
                        self.send_response(200); self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body); return
                    self.send_response(200 if u.path in ("/", "/v2/") else 404); self.send_header("Content-Length", "0"); self.end_headers()
                def log_message(self, *a): pass
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """
        let server = try PythonServer(script: script, in: dir.url)
        defer { withExtendedLifetime(server) {} }
        let found = try await Registry.search("127.0.0.1:\(server.port)/nginx", limit: 5)
        #expect(found.map(\.name) == (0..<5).map { "library/nginx\($0)" })
        #expect(found.first?.description == "the nginx image #0" && found.first?.stars == 100 && found.first?.official == true)
        #expect(found.allSatisfy { $0.tags == nil })
    }

    /// A registry with neither /v2/_catalog nor /v1/search says so; a 500 names the status.
    @Test func unsupportedAndFailingRegistries() async throws {
        let dir = try TestDir("strata-search")
        let script = """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    code = 500 if self.path.startswith("/v2/broken") else (200 if self.path == "/" else 404)
                    self.send_response(code); self.send_header("Content-Length", "0"); self.end_headers()
                def log_message(self, *a): pass
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """
        let server = try PythonServer(script: script, in: dir.url)
        defer { withExtendedLifetime(server) {} }
        let port = server.port
        await #expect { _ = try await Registry.search("127.0.0.1:\(port)/x") } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.code == .notSupported && e.message.contains("127.0.0.1:\(port) does not support search") && e.message.contains("404")
        }
        await #expect { _ = try await Registry.listTags("127.0.0.1:\(port)/broken") } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.message.contains("127.0.0.1:\(port)") && e.message.contains("HTTP 500")
        }
        let cli = try run([Self.strata, "search", "127.0.0.1:\(port)/x"])
        #expect(cli.0 == 1 && cli.1.hasPrefix("error: ") && cli.1.split(separator: "\n").count == 1, "\(cli.1)")
    }

    /// Behind htpasswd Basic auth: without credentials one clear error (registry, status);
    /// with `strata login`-style credentials the same paginated catalog and tag lists.
    @Test func searchWithBasicAuth() async throws {
        guard require("docker-registry", "curl", "python3") else { return }
        let dir = try TestDir()
        // bcrypt at cost 4 (Python: rounds=16): the registry checks it on every one of the
        // ~1,500 requests below, which at the default cost takes minutes.
        let (hs, hash) = try run(["python3", "-W", "ignore", "-c",
                                  "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))", AuthTests.password])
        #expect(hs == 0 && hash.hasPrefix("$2b$04$"), "\(hash)")
        try "alice:\(hash.trimmingCharacters(in: .whitespacesAndNewlines))\n".write(to: dir.url.appendingPathComponent("htpasswd"), atomically: true, encoding: .utf8)
        let reg = try LocalRegistry(extraConfig: """
            auth:
              htpasswd:
                realm: strata-test
                path: \(dir.path)/htpasswd
            """)
        let credentials = dir.url.appendingPathComponent("config.json")
        try Credentials.store(Credentials(username: "alice", password: AuthTests.password), for: reg.host, file: credentials)
        var options = RegistryOptions(progress: nil)
        options.credentialsFile = credentials
        _ = try await Self.populated(260, in: reg, options: options, basic: "alice:\(AuthTests.password)")
        var anonymous = RegistryOptions(progress: nil)
        anonymous.credentialsFile = dir.url.appendingPathComponent("none.json")
        await #expect { _ = try await Registry.search("\(reg.host)/repo", options: anonymous) } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.message.contains(reg.host) && e.message.contains("401") && !e.message.contains("\n")
        }
        let all = try await Registry.search("\(reg.host)/", limit: 1000, options: options)
        #expect(all.count == 262)
        #expect(all.first { $0.name.hasSuffix("/repo-101") }?.tags == 3)
        #expect(try await Registry.listTags("\(reg.host)/search/many", options: options).count == 130)
    }

    /// Behind a token server: the catalog is read with a Bearer token for `registry:catalog:*`.
    @Test func searchWithBearerToken() async throws {
        guard require("docker-registry", "curl", "python3", "openssl") else { return }
        let dir = try TestDir()
        let auth = try TokenAuthRegistry(in: dir, user: "alice", password: AuthTests.password)
        let reg = auth.registry, log = auth.log
        defer { withExtendedLifetime(auth) {} }  // keeps the token server up to the end
        let credentials = dir.url.appendingPathComponent("config.json")
        try Credentials.store(Credentials(username: "alice", password: AuthTests.password), for: reg.host, file: credentials)
        var options = RegistryOptions(progress: nil)
        options.credentialsFile = credentials
        let store = try await Store.open(at: dir.url.appendingPathComponent("store"))
        try "x".write(to: dir.url.appendingPathComponent("f"), atomically: true, encoding: .utf8)
        let (s2, o2) = try run(["tar", "-C", dir.path, "-cf", dir.path + "/r.tar", "f"])
        #expect(s2 == 0, "\(o2)")
        _ = try await store.importRootfs(from: dir.url.appendingPathComponent("r.tar"), reference: "tiny:1")
        for name in ["tok/app", "tok/api", "other/app"] {
            try await Registry.push("tiny:1", to: "\(reg.host)/\(name):1", from: store, options: options)
        }
        let found = try await Registry.search("\(reg.host)/app", options: options)
        #expect(found.map(\.name) == ["\(reg.host)/other/app", "\(reg.host)/tok/app"])
        #expect(found.allSatisfy { $0.tags == 1 })
        let requests = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(requests.contains("TOKEN registry:catalog:*"), "\(requests)")
    }

    /// The debug build of the CLI: Tests/StrataRegistryTests/SearchTests.swift → root → .build/debug/strata.
    static var strata: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/strata").path
    }
}
