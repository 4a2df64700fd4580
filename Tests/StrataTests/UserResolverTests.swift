import Foundation
import Testing
@testable import Strata

/// A root filesystem in a temp directory, next to a host file it must never read.
private struct HostileRoot {
    let dir: TempDir
    let root: String
    /// A real host file outside the root, with a user `evil` 4242:4242.
    let outside: String

    init() throws {
        dir = try TempDir()
        root = dir.file("rootfs").path
        outside = dir.file("hostpasswd-outside").path
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "evil:x:4242:4242::/:/bin/sh\n".write(toFile: outside, atomically: true, encoding: .utf8)
    }

    func write(_ path: String, _ text: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    func link(_ path: String, to target: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: full)
        try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: target)
    }

    func resolver(walkOnly: Bool) -> UserResolver {
        var r = UserResolver(root: root)
        r.walkOnly = walkOnly
        return r
    }
}

/// The same users and groups as a typical image.
private func writeAccounts(_ h: HostileRoot) throws {
    try h.write("/etc/passwd", """
        root:x:0:0:root:/root:/bin/sh
        daemon:x:2:2::/:/bin/false

        app:x:1000:1000:app:/home/app:/bin/sh
        odd:x:1001:50::/:/bin/sh
        broken:x:notanumber:0::/:/bin/sh
        """)
    try h.write("/etc/group", """
        root:x:0:
        wheel:x:10:root
        staff:x:50:other,app
        audio:x:63:app
        app:x:1000:
        """)
}

private func expectError(_ code: StrataError.Code, containing needle: String, _ what: String = "", _ body: () throws -> Void,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("\(what): expected \(code) containing \"\(needle)\", got no error", sourceLocation: sourceLocation)
    } catch let e as StrataError {
        #expect(e.code == code, "\(what): \(e.code): \(e.message)", sourceLocation: sourceLocation)
        #expect(e.message.contains(needle), "\(what): \(e.message)", sourceLocation: sourceLocation)
        #expect(!e.message.contains("\n"), sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

/// Every test runs twice: with openat2(RESOLVE_IN_ROOT) and with the userspace walk.
@Suite struct UserResolverTests {
    @Test(arguments: [false, true])
    func specsFollowDocker(walkOnly: Bool) throws {
        let h = try HostileRoot()
        try writeAccounts(h)
        let r = h.resolver(walkOnly: walkOnly)
        let cases: [(String?, ResolvedUser)] = [
            (nil, ResolvedUser(uid: 0, gid: 0, additionalGids: [0])),
            ("", ResolvedUser(uid: 0, gid: 0, additionalGids: [0])),
            ("1234", ResolvedUser(uid: 1234, gid: 0, additionalGids: [0])),  // not in passwd: gid 0
            ("1000", ResolvedUser(uid: 1000, gid: 1000, additionalGids: [1000, 50, 63])),  // listed: its gid and groups
            ("app", ResolvedUser(uid: 1000, gid: 1000, additionalGids: [1000, 50, 63])),
            ("root", ResolvedUser(uid: 0, gid: 0, additionalGids: [0, 10])),
            ("app:staff", ResolvedUser(uid: 1000, gid: 50, additionalGids: [50])),  // an explicit group: no others
            ("app:77", ResolvedUser(uid: 1000, gid: 77, additionalGids: [77])),
            ("1234:staff", ResolvedUser(uid: 1234, gid: 50, additionalGids: [50])),
            ("1234:4321", ResolvedUser(uid: 1234, gid: 4321, additionalGids: [4321])),
            ("daemon:", ResolvedUser(uid: 2, gid: 2, additionalGids: [2])),
            (":staff", ResolvedUser(uid: 0, gid: 50, additionalGids: [50])),
        ]
        for (spec, want) in cases {
            #expect(try r.resolve(spec) == want, "USER \(spec ?? "nil")")
        }
        expectError(.userNotFound, containing: "unable to find user nosuchuser: no matching entries in passwd file") { _ = try r.resolve("nosuchuser") }
        expectError(.userNotFound, containing: "unable to find user nosuchuser") { _ = try r.resolve("nosuchuser:staff") }
        expectError(.userNotFound, containing: "unable to find group nogroup: no matching entries in group file") { _ = try r.resolve("app:nogroup") }
        expectError(.userNotFound, containing: "unable to find group nogroup") { _ = try r.resolve("1234:nogroup") }
        // A passwd line whose uid is not a number never matches (runc would read it as uid 0).
        expectError(.userNotFound, containing: "unable to find user broken") { _ = try r.resolve("broken") }
        expectError(.invalidArgument, containing: "out of range") { _ = try r.resolve("4294967296") }
        expectError(.invalidArgument, containing: "out of range") { _ = try r.resolve("app:2147483648") }
    }

    /// `--chown` keeps buildah's and BuildKit's rule for a lone uid: its number is the gid too.
    @Test(arguments: [false, true])
    func chownSpecs(walkOnly: Bool) throws {
        let h = try HostileRoot()
        try writeAccounts(h)
        let r = h.resolver(walkOnly: walkOnly)
        func owner(_ spec: String) throws -> [UInt32] {
            let o = try r.owner(spec)
            return [o.uid, o.gid]
        }
        #expect(try owner("1234") == [1234, 1234])
        #expect(try owner("1000") == [1000, 1000])
        #expect(try owner("app") == [1000, 1000])
        #expect(try owner("app:staff") == [1000, 50])
        #expect(try owner("1234:staff") == [1234, 50])
        #expect(try owner("") == [0, 0])
        // A lone uid is its own gid even when /etc/passwd gives it another group (buildah, BuildKit).
        #expect(try owner("1001") == [1001, 1001])
        #expect(try owner("odd") == [1001, 50])
        #expect(try owner("1001:") == [1001, 1001])
        #expect(try owner(":50") == [0, 50])
        expectError(.userNotFound, containing: "unable to find user nobody") { _ = try r.owner("nobody") }
    }

    @Test(arguments: [false, true])
    func missingFiles(walkOnly: Bool) throws {
        let h = try HostileRoot()
        try FileManager.default.removeItem(atPath: h.root + "/etc")
        let r = h.resolver(walkOnly: walkOnly)
        #expect(try r.resolve("1234") == ResolvedUser(uid: 1234, gid: 0, additionalGids: [0]))
        #expect(try r.resolve("1234:99") == ResolvedUser(uid: 1234, gid: 99, additionalGids: [99]))
        expectError(.userNotFound, containing: "unable to find user app: no matching entries in passwd file") { _ = try r.resolve("app") }
        expectError(.userNotFound, containing: "unable to find group staff") { _ = try r.resolve("1234:staff") }
    }

    /// /etc/passwd is an absolute symlink to a real host file: it is followed inside the root,
    /// where its target does not exist, so `evil` is unknown — never 4242 from the host.
    @Test(arguments: [false, true])
    func absoluteSymlinkOutIsResolvedInsideTheRoot(walkOnly: Bool) throws {
        let h = try HostileRoot()
        try h.link("/etc/passwd", to: h.outside)
        try h.link("/etc/group", to: h.outside)
        let r = h.resolver(walkOnly: walkOnly)
        expectError(.userNotFound, containing: "unable to find user evil: no matching entries in passwd file") { _ = try r.resolve("evil") }
        expectError(.userNotFound, containing: "unable to find group evil") { _ = try r.resolve("0:evil") }
        // The same absolute path inside the root is what the link means.
        try h.write(h.outside, "evil:x:1111:1111::/:/bin/sh\n")
        #expect(try r.resolve("evil") == ResolvedUser(uid: 1111, gid: 1111, additionalGids: [1111]))
    }

    /// Relative links that climb with `../..` stop at the root, through chains and through a
    /// symlinked directory; links that stay inside work.
    @Test(arguments: [false, true])
    func relativeEscapesStopAtTheRoot(walkOnly: Bool) throws {
        let escapes: [(String, (HostileRoot) throws -> Void)] = [
            ("direct", { h in try h.link("/etc/passwd", to: "../../hostpasswd-outside") }),
            ("deep", { h in try h.link("/etc/passwd", to: "../../../../../../../../../../" + h.outside) }),
            ("chain", { h in
                try h.link("/etc/passwd", to: "p1")
                try h.link("/etc/p1", to: "../lib/x/../p2")
                try FileManager.default.createDirectory(atPath: h.root + "/lib/x", withIntermediateDirectories: true)
                try h.link("/lib/p2", to: "../../../hostpasswd-outside")
            }),
            ("directory", { h in
                // /etc itself points up: /etc/passwd would be the host's <dir>/passwd.
                try FileManager.default.removeItem(atPath: h.root + "/etc")
                try h.link("/etc", to: "../")
                try "evil:x:4242:4242::/:/bin/sh\n".write(toFile: h.dir.file("passwd").path, atomically: true, encoding: .utf8)
            }),
            ("dotdot-in-absolute", { h in try h.link("/etc/passwd", to: "/../../../hostpasswd-outside") }),
        ]
        for (name, make) in escapes {
            let h = try HostileRoot()
            try make(h)
            expectError(.userNotFound, containing: "unable to find user evil", name) { _ = try h.resolver(walkOnly: walkOnly).resolve("evil") }
        }
        // Links that stay inside are followed.
        let h = try HostileRoot()
        try h.write("/usr/share/base/passwd", "app:x:1000:1000::/:/bin/sh\n")
        try h.link("/etc/passwd", to: "../usr/lib/../share/base/passwd")
        try h.link("/usr/lib", to: "/usr/share")  // a directory link on the way
        #expect(try h.resolver(walkOnly: walkOnly).resolve("app") == ResolvedUser(uid: 1000, gid: 1000, additionalGids: [1000]))
    }

    @Test(arguments: [false, true])
    func loopsAndOddFilesAreErrorsNotHangs(walkOnly: Bool) throws {
        let loop = try HostileRoot()
        try loop.link("/etc/passwd", to: "passwd2")
        try loop.link("/etc/passwd2", to: "/etc/passwd")
        expectError(.io, containing: "too many levels of symbolic links") { _ = try loop.resolver(walkOnly: walkOnly).resolve("app") }

        let fifo = try HostileRoot()
        #expect(mkfifo(fifo.root + "/etc/passwd", 0o644) == 0)
        expectError(.corruptData, containing: "not a regular file") { _ = try fifo.resolver(walkOnly: walkOnly).resolve("app") }

        let dir = try HostileRoot()
        try FileManager.default.createDirectory(atPath: dir.root + "/etc/passwd", withIntermediateDirectories: true)
        expectError(.corruptData, containing: "not a regular file") { _ = try dir.resolver(walkOnly: walkOnly).resolve("app") }
        // A numeric user needs no passwd, but a passwd that cannot be read is still an error.
        expectError(.corruptData, containing: "not a regular file") { _ = try dir.resolver(walkOnly: walkOnly).resolve("1234") }

        // /etc a regular file: nothing below it exists.
        let notDir = try HostileRoot()
        try FileManager.default.removeItem(atPath: notDir.root + "/etc")
        try "x".write(toFile: notDir.root + "/etc", atomically: true, encoding: .utf8)
        #expect(try notDir.resolver(walkOnly: walkOnly).resolve("7") == ResolvedUser(uid: 7, gid: 0, additionalGids: [0]))
    }

    @Test func linesAreReadInPiecesWithoutALimitOnTheFile() throws {
        let h = try HostileRoot()
        // 200,000 users before the one asked for: read in 64 kB pieces.
        var text = ""
        for i in 0..<200_000 { text += "u\(i):x:\(10_000 + i):100::/:/bin/sh\n" }
        text += "last:x:7:8::/:/bin/sh"  // no final newline
        try h.write("/etc/passwd", text)
        try h.write("/etc/group", "g:x:9:" + (0..<50_000).map { "m\($0)" }.joined(separator: ",") + ",last\n")
        #expect(try h.resolver(walkOnly: false).resolve("last") == ResolvedUser(uid: 7, gid: 8, additionalGids: [8, 9]))
        #expect(try h.resolver(walkOnly: true).resolve("u199999") == ResolvedUser(uid: 209_999, gid: 100, additionalGids: [100]))
    }
}

/// The `run` path: the runtime spec carries the user resolved in the container's root.
@Suite struct RunUserTests {
    /// An image from a busybox rootfs with the given extra files/links and a USER.
    static func image(_ store: Store, in dir: TempDir, user: String, setup: String) async throws -> String {
        let tar = dir.file("rootfs-\(UUID().uuidString.prefix(6)).tar").path
        _ = try bash("""
            r=$(mktemp -d "\(dir.path)/rootfs.XXXX")
            mkdir -p "$r/bin" "$r/etc" "$r/tmp"
            cp "$(command -v busybox || echo /bin/busybox)" "$r/bin/busybox"
            for a in sh id true; do ln -s busybox "$r/bin/$a"; done
            cd "$r"
            \(setup)
            tar --numeric-owner -C "$r" -cf "\(tar)" .
            """)
        let base = try await store.importRootfs(from: URL(fileURLWithPath: tar))
        let c = try await store.createContainer(from: base.id.string)
        let image = try await store.commit(c.id, options: CommitOptions(edits: [.user(user), .cmd(["id"])]))
        _ = try await store.removeContainer(c.id, force: true)
        return image.id.string
    }

    @Test func runtimeSpecCarriesTheResolvedUserAndGroups() async throws {
        let dir = try TempDir()
        let store = try await dir.store()
        let id = try await Self.image(store, in: dir, user: "app", setup: """
            printf 'root:x:0:0::/:/bin/sh\\napp:x:1000:1000::/:/bin/sh\\n' > etc/passwd
            printf 'root:x:0:\\nstaff:x:50:app\\napp:x:1000:\\n' > etc/group
            """)
        let c = try await store.createContainer(from: id)
        let spec = try await store.runtimeSpec(for: c, hostNetwork: false)
        let user = (spec["process"] as? [String: Any])?["user"] as? [String: Any]
        #expect(user?["uid"] as? UInt32 == 1000)
        #expect(user?["gid"] as? UInt32 == 1000)
        #expect(user?["additionalGids"] as? [UInt32] == [1000, 50])
        _ = try await store.removeContainer(c.id, force: true)
    }

    /// The hostile image of the report: /etc/passwd links to a real host file that has `evil`.
    /// `run --rm` fails on the user before runc starts, and leaves no container.
    @Test func hostilePasswdLinkFailsRunBeforeRuncAndLeavesNoContainer() async throws {
        let dir = try TempDir()
        let outside = dir.file("hostpasswd-outside").path
        try "evil:x:4242:4242::/:/bin/sh\n".write(toFile: outside, atomically: true, encoding: .utf8)
        let store = try await dir.store()
        let id = try await Self.image(store, in: dir, user: "evil", setup: "ln -s '\(outside)' etc/passwd")
        // The spec alone (what run builds before runc): the user is refused.
        let c = try await store.createContainer(from: id)
        await #expect {
            _ = try await store.runtimeSpec(for: c, hostNetwork: false)
        } throws: { e in
            (e as? StrataError)?.code == .userNotFound && "\(e)".contains("unable to find user evil")
        }
        _ = try await store.removeContainer(c.id, force: true)
        // Through run itself, where an OCI runtime is installed.
        guard (try? OCIRuntime.find()) != nil else { return }
        await #expect {
            _ = try await store.run(id, remove: true)
        } throws: { e in
            (e as? StrataError)?.code == .userNotFound && "\(e)".contains("unable to find user evil")
        }
        #expect(try await store.containers().isEmpty)
        let runtimeState = store.root.appendingPathComponent("runtime")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: runtimeState.path)) ?? []).isEmpty)
        // A numeric USER of that image is fine: 4242 is only what the host file says.
        let numeric = try await Self.image(store, in: dir, user: "1234", setup: "ln -s '\(outside)' etc/passwd")
        let c2 = try await store.createContainer(from: numeric)
        let spec = try await store.runtimeSpec(for: c2, hostNetwork: false)
        let user = (spec["process"] as? [String: Any])?["user"] as? [String: Any]
        #expect(user?["uid"] as? UInt32 == 1234 && user?["gid"] as? UInt32 == 0)
        _ = try await store.removeContainer(c2.id, force: true)
    }
}
