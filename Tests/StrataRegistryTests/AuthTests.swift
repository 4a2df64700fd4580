import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Strata
import StrataRegistry

/// A bcrypt hash for htpasswd: Python's crypt module, else `htpasswd -nbB` (apache2-utils).
func bcrypt(_ password: String) throws -> String {
    let (status, out) = try run(["python3", "-W", "ignore", "-c", "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", password])
    if status == 0, out.hasPrefix("$2") { return out.trimmingCharacters(in: .whitespacesAndNewlines) }
    let (s2, o2) = try run(["htpasswd", "-nbB", "u", password])
    guard s2 == 0, let colon = o2.firstIndex(of: ":") else { throw CocoaError(.featureUnsupported) }
    return String(o2[o2.index(after: colon)...]).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A token server for docker-registry's `auth.token`: checks Basic credentials (argv user and
/// password), grants the requested scopes in an RS256 JWT signed (with `openssl dgst`) by a
/// key whose self-signed certificate is the registry's rootcertbundle, and logs each token
/// request as `TOKEN <scopes>`.
let tokenServerScript = #"""
import base64, http.server, json, subprocess, sys, time, uuid, urllib.parse
port, key, cert, user, password, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
der = base64.b64decode("".join(l for l in open(cert).read().splitlines() if "-----" not in l))
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path != "/token":
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers(); return
        q = urllib.parse.parse_qs(u.query)
        want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        if self.headers.get("Authorization") != want:
            self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers(); return
        scopes = q.get("scope", [])
        with open(log, "a") as f: f.write("TOKEN %s\n" % " ".join(scopes))
        access = []
        for s in scopes:
            t, name, actions = s.split(":")[0], ":".join(s.split(":")[1:-1]), s.split(":")[-1]
            access.append({"type": t, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": "strata-test-issuer", "sub": user, "aud": q.get("service", [""])[0], "exp": now + 600,
                  "nbf": now - 60, "iat": now - 60, "jti": str(uuid.uuid4()), "access": access}
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(), capture_output=True, check=True).stdout
        body = json.dumps({"token": signing + "." + b64(sig)}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""#

@Suite struct AuthTests {
    static let password = "s3cret-PASS-42"

    /// docker-registry with htpasswd Basic auth, driven through the CLI: a wrong password is
    /// refused and stores nothing; login stores Docker-format credentials (0600); push and pull
    /// work; logout removes them and the next push fails naming registry, repository and
    /// status. No output ever contains the password or its base64 form.
    @Test func htpasswdLoginPushPullLogout() async throws {
        guard require("docker-registry", "umoci", "curl", "python3") else { return }
        guard FileManager.default.isExecutableFile(atPath: StrataBinary.path) else {
            Issue.record("no strata binary at \(StrataBinary.path): run swift build --build-tests")
            return
        }
        let dir = try TestDir()
        try "alice:\(try bcrypt(Self.password))\n".write(to: dir.url.appendingPathComponent("htpasswd"), atomically: true, encoding: .utf8)
        let reg = try LocalRegistry(extraConfig: """
            auth:
              htpasswd:
                realm: strata-test
                path: \(dir.path)/htpasswd
            """)
        let layout = try RegistryTests.layout(dir.url)
        let env = ["DOCKER_CONFIG": dir.path + "/docker"]
        let root = dir.path + "/store"
        var outputs: [String] = []
        func strata(_ args: [String], stdin: String? = nil) throws -> (Int32, String, String) {
            let store = ["login", "logout"].contains(args[0]) ? [] : ["--root", root]
            let r = try StrataBinary.run(store + args, stdin: stdin, env: env)
            outputs += [r.1, r.2]
            return r
        }
        let configFile = dir.url.appendingPathComponent("docker/config.json")
        var r = try strata(["login", "-u", "alice", "--password-stdin", reg.host], stdin: "wrong-password\n")
        #expect(r.0 == 1 && r.2.hasPrefix("error: ") && r.2.contains("401"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: configFile.path))
        r = try strata(["login", "-u", "alice", "--password-stdin", reg.host], stdin: Self.password + "\n")
        #expect(r.0 == 0 && r.1 == "Login Succeeded\n", "\(r)")
        let mode = try FileManager.default.attributesOfItem(atPath: configFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(Credentials.lookup(reg.host, file: configFile)?.password == Self.password)
        r = try strata(["load", "-i", layout])
        #expect(r.0 == 0, "\(r)")
        let id = try strata(["images", "-q"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        r = try strata(["push", id, "\(reg.host)/secure/app:1"])
        #expect(r.0 == 0 && r.1.hasPrefix("1: digest: sha256:"), "\(r)")
        let r2 = try StrataBinary.run(["--root", dir.path + "/store2", "pull", "\(reg.host)/secure/app:1"], env: env)
        outputs += [r2.1, r2.2]
        #expect(r2.0 == 0, "\(r2)")
        r = try strata(["logout", reg.host])
        #expect(r.0 == 0)
        #expect(Credentials.lookup(reg.host, file: configFile) == nil)
        r = try strata(["push", id, "\(reg.host)/secure/app:2"])
        #expect(r.0 == 1 && r.2.contains(reg.host) && r.2.contains("secure/app") && r.2.contains("HTTP 401"), "\(r)")
        let secret = Data("alice:\(Self.password)".utf8).base64EncodedString()
        for o in outputs {
            #expect(!o.contains(Self.password) && !o.contains(secret))
        }
    }

    /// docker-registry behind a token server: push and pull with Bearer tokens, one token
    /// request per scope however many requests meet the challenge; wrong credentials are one
    /// clear error naming registry and repository.
    @Test func bearerTokensAreFetchedOncePerScope() async throws {
        guard require("docker-registry", "umoci", "curl", "python3", "openssl") else { return }
        let dir = try TestDir()
        let auth = try TokenAuthRegistry(in: dir, user: "alice", password: Self.password)
        let reg = auth.registry, log = auth.log
        defer { withExtendedLifetime(auth) {} }  // keeps the token server up to the end
        let layout = try RegistryTests.layout(dir.url)
        let credentials = dir.url.appendingPathComponent("config.json")
        try Credentials.store(Credentials(username: "alice", password: Self.password), for: reg.host, file: credentials)
        var options = RegistryOptions()
        options.credentialsFile = credentials
        let store = try await Store.open(at: dir.url.appendingPathComponent("store"))
        let image = try await store.load(from: URL(fileURLWithPath: layout))[0]
        let digest = try await Registry.push(image.id.string, to: "\(reg.host)/tok/app:1", from: store, options: options)
        #expect(digest == image.manifestDigest)
        // Three blobs HEADed and uploaded three at a time, then the manifest: one token request
        // per scope the registry challenged with.
        let pushRequests = blobGets(log)
        #expect(Set(pushRequests).count == pushRequests.count, "a scope was asked for twice: \(pushRequests)")
        #expect(pushRequests.contains("TOKEN repository:tok/app:pull,push"), "\(pushRequests)")
        try FileManager.default.removeItem(at: log)
        let other = try await Store.open(at: dir.url.appendingPathComponent("store2"))
        let pulled = try await Registry.pull("\(reg.host)/tok/app:1", into: other, options: options)
        #expect(pulled.image.id == image.id)
        #expect(blobGets(log) == ["TOKEN repository:tok/app:pull"])
        // Wrong credentials: one clear error.
        try Credentials.store(Credentials(username: "alice", password: "nope"), for: reg.host, file: credentials)
        await #expect {
            _ = try await Registry.pull("\(reg.host)/tok/app:1", into: try await Store.open(at: dir.url.appendingPathComponent("store3")), options: options)
        } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.code == .unauthorized && e.message.contains(reg.host) && e.message.contains("tok/app") && e.message.contains("401")
        }
    }

    /// A registry that is down fails at once, with the host named: a refused connection is
    /// not retried for the HTTP client's 90 s connect timeout on each of the four attempts
    /// (a `strata login` or `docker login` to a stopped registry took six minutes).
    @Test func unreachableRegistryFailsFast() async throws {
        // A port held bound and not listening: refused, and no other test's server can take
        // it meanwhile (a port merely found free could be, under a parallel run).
        let (fd, port) = LocalRegistry.boundLoopbackSocket()
        defer { close(fd) }
        let host = "127.0.0.1:\(port)"
        // Timed around the strata process: this process's own tasks can wait behind other
        // tests (a parallel run fills the cooperative pool), the child's cannot.
        guard FileManager.default.isExecutableFile(atPath: StrataBinary.path) else {
            Issue.record("no strata binary at \(StrataBinary.path): run swift build --build-tests")
            return
        }
        let dir = try TestDir()
        let start = Date()
        let r = try StrataBinary.run(["login", "-u", "u", "--password-stdin", host], stdin: "p\n", env: ["DOCKER_CONFIG": dir.path + "/docker"])
        let took = Date().timeIntervalSince(start)
        #expect(r.0 == 1 && r.2 == "error: cannot reach \(host) after 4 attempts: connection refused\n", "\(r)")
        #expect(took < 15, "a refused login took \(took) s")
        // The library says the same.
        do {
            try await Registry.login(host, Credentials(username: "u", password: "p"))
            Issue.record("login to \(host), where nothing listens, succeeded")
        } catch let e as StrataError {
            #expect(e.message == "cannot reach \(host) after 4 attempts: connection refused", "\(e.message)")
        }
    }
}
