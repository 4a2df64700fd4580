import Testing
@testable import OCI

@Suite struct ReferenceTests {
    // Expected values are Docker's normalisation (distribution/reference ParseNormalizedNamed).
    @Test(arguments: [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1"),
        ("quay.io/org/sub/app:x", "quay.io/org/sub/app:x", "quay.io/org/sub/app:x"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("user/a.b-c__d", "docker.io/user/a.b-c__d:latest", "user/a.b-c__d:latest"),
    ])
    func normalises(_ input: String, _ full: String, _ familiar: String) throws {
        let r = try Reference(input)
        #expect(r.fullName == full)
        #expect(r.familiar == familiar)
        #expect(Reference.familiar(stored: r.fullName) == familiar)
    }

    /// The byte-level `familiar(stored:)` agrees with Docker's rule written plainly (drop
    /// `docker.io/`, then `library/` when the path has no other `/`) on every name built from
    /// the pieces that decide it.
    @Test func familiarOfStoredNamesFollowsTheRule() {
        func plain(_ name: String) -> String {
            guard name.hasPrefix("docker.io/") else { return name }
            let rest = name.dropFirst("docker.io/".count)
            if rest.hasPrefix("library/") {
                let short = rest.dropFirst("library/".count)
                let path = short.split(separator: ":", maxSplits: 1).first ?? short
                if !path.contains("/") { return String(short) }
            }
            return String(rest)
        }
        let registries = ["", "docker.io/", "docker.io", "quay.io/", "docker.iox/", "localhost:5000/"]
        let middles = ["", "library/", "library", "librar/", "user/", "library/sub/", "library/library/"]
        let names = ["", "busybox", "a/b", "app:1", "app:x/y", ":tag", "b\u{e9}b\u{e9}:1", "x@sha256:ab"]
        for r in registries { for m in middles { for n in names {
            let s = r + m + n
            #expect(Reference.familiar(stored: s) == plain(s), "\(s)")
        } } }
    }

    @Test func keepsDigest() throws {
        let d = "sha256:" + String(repeating: "c", count: 64)
        let r = try Reference("busybox@" + d)
        #expect(r.tag == nil)
        #expect(r.digest?.string == d)
        #expect(r.fullName == "docker.io/library/busybox@" + d)
    }

    @Test(arguments: [
        "", "Busybox", "busybox:", "busybox:-x", "bus//box", "/busybox", "busybox/", "bu$ybox",
        "busybox@sha256:123", "a:" + String(repeating: "t", count: 129), "-abc", "abc-", "a..b", "a_b.c/d",
    ])
    func rejects(_ input: String) {
        #expect(throws: StrataError.self) { try Reference(input) }
    }

    @Test func platformParsingAndMatching() throws {
        let p = try Platform(parsing: "linux/arm64")
        #expect(p.matches(Platform(os: "linux", architecture: "arm64", variant: "v8")))
        #expect(!p.matches(Platform(os: "linux", architecture: "amd64")))
        #expect(try Platform(parsing: "linux/arm/v7").variant == "v7")
        #expect(throws: StrataError.self) { try Platform(parsing: "linux") }
        #expect(throws: StrataError.self) { try Platform(parsing: "linux/amd64/v1/x") }
    }

    @Test func rfc3339AsGoWritesIt() throws {
        let d = try #require(RFC3339.parse("2024-01-02T03:04:05.123456789Z"))
        #expect(Int(d.timeIntervalSince1970) == 1704164645)
        let o = try #require(RFC3339.parse("2024-01-02T05:04:05+02:00"))
        #expect(Int(o.timeIntervalSince1970) == 1704164645)
        #expect(RFC3339.parse("2024-13-02T03:04:05Z") == nil)
        #expect(RFC3339.parse("yesterday") == nil)
        #expect(RFC3339.format(d) == "2024-01-02T03:04:05Z")
    }
}
