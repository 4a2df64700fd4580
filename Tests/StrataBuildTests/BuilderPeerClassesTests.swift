import Foundation
import OCI
import Testing
@testable import Strata
@testable import StrataBuild

/// One context built by both `buildah bud --isolation chroot` and strata, compared: the
/// outcome (both build or both refuse), the whole runtime config and the root filesystem
/// (both unpacked by umoci: type, mode, owner, size, content, link target of every path).
struct PeerCase: Sendable, CustomStringConvertible {
    var name: String
    var files: [String: String] = [:]
    /// Shell run in the context directory before both builds (archives, modes, symlinks).
    var setup: String = ""
    var dockerfile: String
    var buildArgs: [String: String] = [:]
    var target: String?
    /// Config keys compared (all of them by default).
    var keys: [String] = PeerBuild.configKeys
    /// Paths (relative to the root) left out of the tree comparison, with the reason.
    var ignoredPaths: Set<String> = []
    /// `--secret id=ID,src=FILE` for both builders: id → the file's content.
    var secrets: [String: String] = [:]
    /// Both builders get `--ssh default=SOCK` and `--ssh a=SOCK` for a fresh ssh-agent.
    var sshAgent = false
    /// Both builders must refuse it (otherwise both must build it).
    var expectFailure = false
    /// Both building and both refusing (at the same step) agree: a generated case.
    var eitherOutcome = false
    /// buildah builds with `--format docker`, whose config keeps Healthcheck, Shell and
    /// OnBuild (an OCI config drops them); that config is compared.
    var dockerFormat = false
    var description: String { name }
}

enum PeerBuild {
    /// The whole runtime config as buildah writes it in an OCI image config. (Healthcheck,
    /// Shell and OnBuild are Docker-format only: buildah drops them from OCI configs.)
    static let configKeys = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal",
                             "Healthcheck", "Shell", "OnBuild"]

    /// What a build gave: the config fields and the tree, or the refusal.
    struct Outcome {
        var config: [String: String] = [:]
        var tree: [String: String] = [:]
        var failure: String?
    }

    /// Builds `c` with both builders and records every difference as an issue. Returns both
    /// outcomes so a test can check more.
    @discardableResult
    static func compare(_ c: PeerCase) async throws -> (buildah: Outcome, strata: Outcome)? {
        guard BuildPeer.canRun, BuildPeer.require("buildah", "umoci"), !c.sshAgent || BuildPeer.require("ssh-agent") else { return nil }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(c.files.merging(["Dockerfile": c.dockerfile]) { $1 }, in: "ctx")
        if !c.setup.isEmpty { try buildShell(c.setup, cwd: dir.file("ctx")) }

        // buildah: the same base rootfs, then bud with chroot isolation; export as an OCI layout.
        let b = "buildah --root '\(dir.file("bh-root"))' --runroot '\(dir.file("bh-run"))' --storage-driver vfs"
        defer { _ = try? buildShell("\(b) rm --all >/dev/null 2>&1; \(b) rmi --all --force >/dev/null 2>&1", check: false) }
        try buildShell("""
            c=$(\(b) from scratch)
            \(b) add "$c" '\(dir.file("base-rootfs.tar"))' / >/dev/null
            \(b) commit -q "$c" base:1 >/dev/null
            \(b) rm "$c" >/dev/null
            """)
        let argFlags = c.buildArgs.sorted { $0.key < $1.key }.map { "--build-arg '\($0.key)=\($0.value)'" }.joined(separator: " ")
        let targetFlag = c.target.map { "--target '\($0)'" } ?? ""
        var secretFiles: [String: String] = [:]
        for (id, content) in c.secrets {
            let path = dir.file("secret-\(id)")
            try Data(content.utf8).write(to: URL(fileURLWithPath: path))
            secretFiles[id] = path
        }
        var secretFlags = secretFiles.sorted { $0.key < $1.key }.map { "--secret 'id=\($0.key),src=\($0.value)'" }.joined(separator: " ")
        let agentSocket = dir.file("agent.sock")
        // ssh-agent in the foreground (-D), a child of this process stopped at the end: a
        // daemonised agent would inherit Foundation's process-watch socket and hang the wait.
        let agent = Process()
        if c.sshAgent {
            agent.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-agent")
            agent.arguments = ["-D", "-a", agentSocket]
            agent.standardInput = FileHandle.nullDevice
            agent.standardOutput = FileHandle.nullDevice
            agent.standardError = FileHandle.nullDevice
            try agent.run()
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: agentSocket) { try await Task.sleep(for: .milliseconds(25)) }
            #expect(FileManager.default.fileExists(atPath: agentSocket), "ssh-agent did not start")
            secretFlags += " --ssh default='\(agentSocket)' --ssh a='\(agentSocket)'"
        }
        // SIGKILL: in the test process SIGTERM can be ignored or blocked, which a child
        // inherits; terminate() left two agents running after every run of the suite.
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
        var theirs = Outcome()
        let bud = try buildShell("\(b) bud --isolation chroot -q \(c.dockerFormat ? "--format docker" : "") \(argFlags) \(targetFlag) \(secretFlags) -t out:1 '\(dir.file("ctx"))' >/dev/null", check: false)
        if bud.status != 0 {
            theirs.failure = bud.stderr
        } else {
            try buildShell("""
                \(b) push -q out:1 oci:'\(dir.file("bh-layout"))':out
                umoci unpack --image '\(dir.file("bh-layout"))':out '\(dir.file("bh-bundle"))' >/dev/null
                """)
            theirs.tree = try BuilderInteropTests.tree(dir.file("bh-bundle/rootfs"))
            theirs.config = try BuilderInteropTests.config(try Data(contentsOf: URL(fileURLWithPath: try BuilderInteropTests.configPath(dir.file("bh-layout")))))
            if c.dockerFormat {
                let inspect = try buildShell("\(b) inspect --type image out:1").stdout
                let docker = ((try JSONSerialization.jsonObject(with: Data(inspect.utf8)) as? [String: Any])?["Docker"] as? [String: Any]) ?? [:]
                theirs.config = try BuilderInteropTests.config(try JSONSerialization.data(withJSONObject: docker))
            }
        }

        var ours = Outcome()
        let log = BuildLog()
        do {
            var options = BuildOptions(tags: ["out:1"], buildArgs: c.buildArgs, target: c.target, log: { log.add($0) })
            options.secrets = secretFiles.mapValues { BuildSecret.file($0) }
            if c.sshAgent { options.sshAgents = ["default": agentSocket, "a": agentSocket] }
            let result = try await Builder(store: store).build(context: dir.file("ctx"), dockerfile: c.dockerfile, options: options)
            try await store.save(["out:1"], to: URL(fileURLWithPath: dir.file("st-layout")), format: .ociDirectory)
            let refName = try BuilderInteropTests.refName(dir.file("st-layout"))
            try buildShell("umoci unpack --image '\(dir.file("st-layout"))':'\(refName)' '\(dir.file("st-bundle"))' >/dev/null")
            ours.tree = try BuilderInteropTests.tree(dir.file("st-bundle/rootfs"))
            ours.config = try BuilderInteropTests.config(try await store.imageConfigData(result.imageID))
        } catch {
            ours.failure = "\(error)"
        }

        if (theirs.failure == nil) != (ours.failure == nil) {
            Issue.record("\(c.name): buildah \(theirs.failure.map { "refuses: \($0)" } ?? "builds"), strata \(ours.failure.map { "refuses: \($0)" } ?? "builds")")
            return (theirs, ours)
        }
        if let bh = theirs.failure {
            // Refused at the same instruction: buildah's `building at STEP "X"` is strata's last `Step n/m : X`.
            if let r = bh.range(of: "building at STEP \""), let end = bh[r.upperBound...].firstIndex(of: "\"") {
                let theirStep = String(bh[r.upperBound..<end])
                var ourStep: String?
                if let line = log.lines.last(where: { $0.hasPrefix("Step ") }), let sep = line.range(of: " : ") {
                    ourStep = Self.wordsForm(String(line[sep.upperBound...]))
                }
                // A WORKDIR naming a file: strata refuses at the WORKDIR, as BuildKit does (it
                // makes the directory there); buildah 1.28 makes it lazily and refuses at the
                // next step. A quirk the generated cases meet, not a difference.
                let lazyWorkdir = c.eitherOutcome && ourStep?.hasPrefix("WORKDIR ") == true
                    && (ours.failure ?? "").contains("is not a directory")
                #expect(ourStep == theirStep || lazyWorkdir, "\(c.name): buildah refuses at \(theirStep), strata at \(ourStep ?? "no step"): buildah: \(bh.suffix(300)) strata: \(ours.failure ?? "")")
            }
            if !c.expectFailure && !c.eitherOutcome { Issue.record("\(c.name): both refuse it: buildah \(theirs.failure ?? ""), strata \(ours.failure ?? "")") }
            return (theirs, ours)
        }
        if c.expectFailure { Issue.record("\(c.name): both build it, a refusal was expected") }
        for (path, entry) in theirs.tree.sorted(by: { $0.key < $1.key }) where ours.tree[path] != entry && !c.ignoredPaths.contains(path) {
            Issue.record("\(c.name): \(path): buildah \(entry), strata \(ours.tree[path] ?? "missing")")
        }
        for path in ours.tree.keys.sorted() where theirs.tree[path] == nil && !c.ignoredPaths.contains(path) {
            Issue.record("\(c.name): \(path): only in strata (\(ours.tree[path] ?? ""))")
        }
        for key in c.keys {
            #expect(ours.config[key] == theirs.config[key],
                    "\(c.name): config \(key): buildah \(theirs.config[key] ?? "nil"), strata \(ours.config[key] ?? "nil")")
        }
        return (theirs, ours)
    }

    /// An instruction as buildah names its step: the JSON form's strings as plain words
    /// (`COPY --chown=1 ["a", "b c"]` is `COPY --chown=1 a b c`); any other text as it is.
    static func wordsForm(_ step: String) -> String {
        guard let open = step.range(of: " ["), step.hasSuffix("]"),
              let words = try? JSONSerialization.jsonObject(with: Data(step[step.index(after: open.lowerBound)...].utf8)) as? [String]
        else { return step }
        return String(step[..<open.lowerBound]) + " " + words.joined(separator: " ")
    }
}

/// The classes of issue 15: each a behaviour of docker's builder that buildah 1.28 reproduces,
/// checked against buildah on a context of its own.
@Suite("BuilderPeerClasses", .serialized)
struct BuilderPeerClassesTests {
    /// Class 5: a line continuation at the very end of the file ends the instruction.
    @Test func continuationAtEndOfFile() async throws {
        try await PeerBuild.compare(PeerCase(name: "continuation-eof", dockerfile: "FROM base:1\nRUN echo hi > /hi \\"))
        try await PeerBuild.compare(PeerCase(name: "continuation-eof-blank", dockerfile: "FROM base:1\nLABEL a=b \\\n\n# c\n"))
    }

    /// Class 10: WORKDIR keeps an absolute path as written (trailing slash, `..`, `//`); a
    /// relative one is joined to the current directory and cleaned.
    @Test func workdirKeepsItsPathAsWritten() async throws {
        try await PeerBuild.compare(PeerCase(name: "workdir-trailing-slash", dockerfile: "FROM base:1\nWORKDIR /app/\nRUN touch here\n"))
        try await PeerBuild.compare(PeerCase(name: "workdir-unclean", dockerfile: "FROM base:1\nWORKDIR /a/b/../c//d/.\nRUN touch here\nCOPY Dockerfile rel/\n"))
        try await PeerBuild.compare(PeerCase(name: "workdir-relative", dockerfile: "FROM base:1\nWORKDIR /app/\nWORKDIR sub/x/../y/\nRUN touch here\n"))
    }

    /// A directory below COPY's destination that exists already takes the copied directory's
    /// owner, mode and times (BuildKit's copier and buildah's); the destination itself keeps
    /// its own. Found by BuildParityFuzzTests (seed 20261206, case 39).
    @Test func existingDirectoriesBelowTheDestinationTakeTheSources() async throws {
        try await PeerBuild.compare(PeerCase(name: "merge-nested-dir", files: ["d/sub/f": "f\n", "d/g": "g\n"], setup: "chmod 700 d/sub",
                                             dockerfile: """
            FROM base:1
            RUN mkdir -p /dst/sub/keep && chown 1000:50 /dst /dst/sub && chmod 777 /dst/sub && chmod 711 /dst
            COPY d /dst/
            COPY --chown=7:7 d /dst
            """))
    }

    /// Class 3: `--chown=UID` alone gives the same number as the group, even when /etc/passwd
    /// gives that uid another group; a name alone takes its /etc/passwd group.
    @Test func chownUIDAloneIsAlsoTheGroup() async throws {
        try await PeerBuild.compare(PeerCase(name: "chown-uid", files: ["f": "f\n", "d/g": "g\n"], dockerfile: """
            FROM base:1
            RUN echo "odd:x:1001:50::/:/bin/sh" >> /etc/passwd
            COPY --chown=1001 f /a
            COPY --chown=odd f /b
            COPY --chown=1001: f /c
            COPY --chown=odd:app f /e
            COPY --chown=7 f /g
            COPY --chown=1001 d /h/
            ADD --chown=1001 f /i
            """))
    }

    /// Class 11: the automatic platform ARGs have BuildKit's values once a stage declares
    /// them (undeclared, a stage does not see them); a meta ARG declaration gets the value
    /// too; a default or --build-arg wins.
    @Test func automaticPlatformArgs() async throws {
        try await PeerBuild.compare(PeerCase(name: "platform-args", dockerfile: """
            ARG TARGETARCH
            ARG BASE=base
            FROM $BASE:1
            RUN echo "undeclared: [$TARGETARCH] [$BUILDPLATFORM]" > /u
            ARG TARGETARCH
            ARG BUILDPLATFORM
            ARG BUILDOS
            ARG BUILDARCH
            ARG BUILDVARIANT
            ARG TARGETPLATFORM
            ARG TARGETOS
            ARG TARGETVARIANT
            RUN echo "$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$BUILDVARIANT|$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT" > /p
            LABEL arch=$TARGETARCH plat=$TARGETPLATFORM os=$TARGETOS variant=$TARGETVARIANT build=$BUILDPLATFORM
            ENV ARCH=$TARGETARCH
            """))
        try await PeerBuild.compare(PeerCase(name: "platform-args-defaults", dockerfile: """
            FROM base:1
            ARG TARGETARCH=foo
            ARG TARGETOS
            LABEL arch=$TARGETARCH os=$TARGETOS
            """, buildArgs: ["TARGETOS": "bar"]))
    }

    /// Class 11, where buildah 1.28 is wrong: BuildKit makes the platform ARGs available to
    /// FROM without a declaration (docs: "automatic platform ARGs in the global scope");
    /// buildah 1.28 expands them to nothing there and fails with "invalid reference format".
    @Test func platformArgsInFromWithoutDeclaration() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir, reference: "base:\(Platform.host.architecture)")
        try dir.write(["Dockerfile": "FROM base:$TARGETARCH\nARG TARGETOS\nLABEL os=$TARGETOS\n"], in: "ctx")
        let r = try await Builder(store: store).build(dir.file("ctx"), "FROM base:$TARGETARCH\nARG TARGETOS\nLABEL os=$TARGETOS\n", log: BuildLog())
        let config = try BuilderInteropTests.config(try await store.imageConfigData(r.imageID))
        #expect(config["Labels"] == "{\"os\":\"\(Platform.host.os)\"}")
        // buildah 1.28 (the peer): refuses it, the known bug.
        if BuildPeer.require("buildah") {
            let b = "buildah --root '\(dir.file("bh-root"))' --runroot '\(dir.file("bh-run"))' --storage-driver vfs"
            let out = try buildShell("\(b) bud --isolation chroot -q '\(dir.file("ctx"))'", check: false)
            _ = try? buildShell("\(b) rm --all >/dev/null 2>&1; \(b) rmi --all --force >/dev/null 2>&1", check: false)
            if out.status == 0 { Issue.record("buildah now builds FROM base:$TARGETARCH: compare with it instead") }
        }
    }

    /// Class 12: the directories WORKDIR creates belong to the USER in effect (resolved in the
    /// image as for RUN); existing ones keep their owner. An unknown user gives root (buildah).
    @Test func workdirDirectoriesBelongToUser() async throws {
        try await PeerBuild.compare(PeerCase(name: "workdir-owner", dockerfile: """
            FROM base:1
            USER app
            WORKDIR /w/x/y
            USER 1234:50
            WORKDIR /tmp/z
            USER nobody
            WORKDIR /o
            WORKDIR /etc
            USER app:staff
            WORKDIR /g
            USER 4321
            WORKDIR /n
            """))
    }

    /// Class 1: RUN has no tmpfs on /tmp: what it writes there stays in the layer, and /tmp
    /// keeps the image's mode unless the step changes it.
    @Test func runWritesUnderTmpStay() async throws {
        try await PeerBuild.compare(PeerCase(name: "run-tmp", dockerfile: """
            FROM base:1
            RUN echo t > /tmp/kept && mkdir -p /tmp/d/e && set -- $(ls -ld /tmp) && echo $1 > /tmp/mode
            RUN rm /tmp/kept
            RUN echo again > /tmp/again && chmod 1777 /tmp
            """))
    }

    /// Class 4: a wildcard that matches nothing is skipped when another source of the same
    /// COPY matches; alone (or with only other empty wildcards) it fails, as a missing plain
    /// path always does.
    @Test func unmatchedGlobIsSkippedWhenOthersMatch() async throws {
        let files = ["a.txt": "a\n", "b.md": "b\n", "d/x": "x\n"]
        try await PeerBuild.compare(PeerCase(name: "glob-skip", files: files, dockerfile: """
            FROM base:1
            COPY *.txt *.nomatch /d/
            COPY *.nomatch d /e/
            COPY [ "no*", "*.md", "/f/" ]
            ADD *.none a.txt /g/
            """))
        for df in ["FROM base:1\nCOPY *.nomatch /d/\n", "FROM base:1\nCOPY *.nomatch *.none /d/\n", "FROM base:1\nCOPY missing a.txt /d/\n"] {
            let r = try await PeerBuild.compare(PeerCase(name: "glob-fail", files: files, dockerfile: df, expectFailure: true))
            if let r { #expect(r.strata.failure != nil && r.buildah.failure != nil, "\(df.debugDescription) should fail") }
        }
    }

    /// Class 2: COPY --from keeps the source's owner (unless --chown) and setuid, setgid and
    /// sticky bits.
    @Test func copyFromKeepsOwnerAndSpecialBits() async throws {
        try await PeerBuild.compare(PeerCase(name: "copy-from-metadata", dockerfile: """
            FROM base:1 AS src
            RUN mkdir -p /s/sub /s/sticky && echo x > /s/f && echo y > /s/sub/g && chown -R 1000:50 /s && chmod 4755 /s/f && chmod 2750 /s/sub && chmod 6711 /s/sub/g && chmod 1777 /s/sticky && ln -s f /s/l && chown -h 7:8 /s/l && echo z > /z && chown 5:6 /z && chmod 4700 /z
            FROM base:1
            COPY --from=src /s /a
            COPY --from=src /s/ /b/
            COPY --from=src /z /s/f /c/
            COPY --from=src --chown=app /s /d
            COPY --from=src /z /zz
            """))
    }

    /// Class 2, where buildah 1.28 differs from docker: a context COPY of a setuid file.
    /// docker (classic: "chown must happen before chmod, as that can modify the file mode";
    /// BuildKit likewise) keeps 4755; buildah 1.28 chowns to 0:0 after setting the mode, so
    /// the kernel clears the bit. strata follows docker; the test shows buildah still differs.
    @Test func contextCopyKeepsSetuidLikeDocker() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["su": "s\n", "sg": "g\n"], in: "ctx")
        try buildShell("chmod 4755 su && chmod 2711 sg", cwd: dir.file("ctx"))
        let r = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nCOPY su sg /x/\nCOPY --chown=app su /y\n", log: BuildLog())
        #expect(try await BuildFixtures.stat(store, image: r.imageID, path: "/x/su").map { [$0.0, $0.1, $0.2] } == [0o4755, 0, 0])
        #expect(try await BuildFixtures.stat(store, image: r.imageID, path: "/x/sg").map { [$0.0, $0.1, $0.2] } == [0o2711, 0, 0])
        #expect(try await BuildFixtures.stat(store, image: r.imageID, path: "/y").map { [$0.0, $0.1, $0.2] } == [0o4755, 1000, 1000])
        let found = try await PeerBuild.compare(PeerCase(name: "context-setuid-buildah", files: ["su": "s\n"], setup: "chmod 4755 su",
                                                         dockerfile: "FROM base:1\nCOPY su /su\n", ignoredPaths: ["su"]))
        if let bh = found?.buildah.tree["su"], bh.hasPrefix("file 4755") {
            Issue.record("buildah now keeps setuid on a context COPY: compare su with it again")
        }
    }

    /// Class 9: an excluded directory stays out whole unless an exception pattern starts with
    /// its path (`!dir/keep`); `!**/keep` does not bring its children back (docker, buildah).
    @Test func dockerignoreExcludedDirectoryStaysOut() async throws {
        let files = ["dir/keep": "k\n", "dir/other": "o\n", "dir/sub/keep": "k2\n", "src/x": "x\n", "src/keep": "y\n", "keep": "top\n"]
        for (n, ignore) in ["dir\n!**/keep\n", "dir\n!dir/keep\n", "dir\n!dir/sub\n", "*\n!src/x\n!Dockerfile\n", "dir\n!*/keep\n", "dir\n!di?/keep\n",
                            "**/keep\n!src/keep\n", "dir\n!dir/sub/keep\n"].enumerated() {
            try await PeerBuild.compare(PeerCase(name: "dockerignore-\(n)", files: files.merging([".dockerignore": ignore]) { $1 },
                                                 dockerfile: "FROM base:1\nCOPY . /c/\n"))
        }
        // The context docker and buildah refuse: the directory itself is out.
        let r = try await PeerBuild.compare(PeerCase(name: "dockerignore-copy-dir", files: files.merging([".dockerignore": "dir\n!**/keep\n"]) { $1 },
                                                     dockerfile: "FROM base:1\nCOPY dir /c/\n", expectFailure: true))
        if let r { #expect(r.strata.failure != nil) }
    }

    /// A symlink in the context cannot reach what `.dockerignore` keeps out: the peers resolve
    /// a source in the context they were sent, so a link to an excluded file is a missing
    /// source, and a link to a directory brings only what is in the context of it. Found by
    /// BuildParityFuzzTests (seed 9, cases 1 and 58); strata used to copy the excluded bytes.
    @Test func symlinksCannotReachExcludedFiles() async throws {
        let files = ["secret.txt": "s\n", "d/keep": "k\n", "d/hidden.txt": "h\n", "other": "o\n",
                     ".dockerignore": "secret.txt\nd/hidden.txt\nskipped\n"]
        let setup = "ln -s secret.txt link; ln -s d linkd; ln -s ../secret.txt d/up; mkdir skipped; echo x > skipped/f; ln -s skipped/f via-skipped"
        try await PeerBuild.compare(PeerCase(name: "ignore-link-dir", files: files, setup: setup, dockerfile: "FROM base:1\nCOPY linkd /viadir/\nCOPY linkd/keep /k\n"))
        for (n, source) in ["link", "via-skipped", "d/up"].enumerated() {
            let r = try await PeerBuild.compare(PeerCase(name: "ignore-link-\(n)", files: files, setup: setup,
                                                         dockerfile: "FROM base:1\nCOPY \(source) /x\n", expectFailure: true))
            if let r { #expect(r.strata.failure != nil, "COPY \(source)") }
        }
        // Where buildah 1.28 departs from docker (as in class 9, it checks the path as written
        // against the patterns): `linkd/hidden.txt` is d/hidden.txt, which docker never sends;
        // buildah copies it. strata follows docker.
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(files, in: "ctx")
        try buildShell(setup, cwd: dir.file("ctx"))
        await #expect(throws: StrataError.self) {
            _ = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nCOPY linkd/hidden.txt /x\n", log: BuildLog())
        }
    }

    /// A wildcard's match that is a symlink leading nowhere (dangling, or to an excluded file)
    /// fails the COPY, in the context and in another stage, even beside other matches: the
    /// peers follow every match. strata used to skip it. Found by BuildParityFuzzTests (seed 9,
    /// case 52).
    @Test func wildcardMatchingADanglingLinkFails() async throws {
        let files = ["lfile": "f\n", "secret": "s\n", ".dockerignore": "secret\n"]
        for (n, setup) in ["ln -s nowhere ldangling", "ln -s secret lsecret"].enumerated() {
            let r = try await PeerBuild.compare(PeerCase(name: "glob-dangling-\(n)", files: files, setup: setup,
                                                         dockerfile: "FROM base:1\nCOPY l* /d/\n", expectFailure: true))
            if let r { #expect(r.strata.failure != nil) }
        }
        let stage = "FROM base:1 AS build\nRUN mkdir /out && echo f > /out/f && ln -s /nowhere /out/dangling\nFROM base:1\nCOPY --from=build /out/* /d/\n"
        let r = try await PeerBuild.compare(PeerCase(name: "glob-dangling-stage", dockerfile: stage, expectFailure: true))
        if let r { #expect(r.strata.failure != nil) }
        // Without the dangling link, the same COPY builds (and follows a link that leads somewhere).
        try await PeerBuild.compare(PeerCase(name: "glob-link-stage", dockerfile: stage.replacingOccurrences(of: "ln -s /nowhere /out/dangling", with: "ln -s f /out/l")))
    }

    /// A file COPY/ADD whose destination is a symlink writes through it, dangling or not, and
    /// the link stays: BuildKit's copier and the classic builder resolve the destination
    /// inside the root, final link included (fsutil's `Copy` and moby's `createDestInfo`).
    /// buildah 1.28 departs: it replaces a link to a file, and makes a dangling link's target
    /// a directory holding the file (the README's table has the row). strata used to replace
    /// the link. Found by BuildParityFuzzTests (seed 12, case 3).
    @Test func fileDestinationThatIsASymlinkIsWrittenThrough() async throws {
        guard BuildPeer.canRun, BuildPeer.require("umoci") else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["a.txt": "new\n"], in: "ctx")
        let dockerfile = """
            FROM base:1
            RUN ln -s /nowhere /dangling && ln -s /deep/er/file /deeplink && echo old > /f && ln -s f /lf && mkdir /d && ln -s d /ld && ln -s nowhere2 /reladd && mkdir /e && echo old > /g && ln -s ../g /e/up
            COPY a.txt /dangling
            COPY a.txt /deeplink
            COPY a.txt /lf
            COPY a.txt /ld
            ADD a.txt /reladd
            COPY a.txt /e/up

            """
        _ = try await Builder(store: store).build(context: dir.file("ctx"), dockerfile: dockerfile, options: BuildOptions(tags: ["out:1"]))
        try await store.save(["out:1"], to: URL(fileURLWithPath: dir.file("layout")), format: .ociDirectory)
        try buildShell("umoci unpack --image '\(dir.file("layout"))':'\(try BuilderInteropTests.refName(dir.file("layout")))' '\(dir.file("bundle"))' >/dev/null")
        let tree = try BuilderInteropTests.tree(dir.file("bundle/rootfs"))
        let copied = "file 644 0:0 4 " + (try SourceTree.fileHash(dir.file("ctx/a.txt")))
        #expect(tree["dangling"] == "symlink 777 0:0 -> /nowhere")
        #expect(tree["nowhere"] == copied)
        #expect(tree["deeplink"] == "symlink 777 0:0 -> /deep/er/file")
        #expect(tree["deep/er/file"] == copied)
        #expect(tree["lf"] == "symlink 777 0:0 -> f")
        #expect(tree["f"] == copied)
        #expect(tree["ld"] == "symlink 777 0:0 -> d")
        #expect(tree["d/a.txt"] == copied)
        #expect(tree["reladd"] == "symlink 777 0:0 -> nowhere2")
        #expect(tree["nowhere2"] == copied)
        #expect(tree["e/up"] == "symlink 777 0:0 -> ../g")
        #expect(tree["g"] == copied)
    }

    /// Class 9, where buildah 1.28 differs from docker: a file named directly by COPY inside a
    /// directory the context walk skips whole. docker (classic and BuildKit) never sends it
    /// (the walk skips the directory, so `COPY dir/keep` finds nothing); buildah 1.28 checks
    /// the path against the patterns alone (`!**/keep` re-includes it) and copies it. strata
    /// follows docker, so one context keeps one answer whatever the COPY names. Likewise
    /// `dir` + `!dir*/keep`: docker's test is a string prefix (`dir*/keep/` does not start with
    /// `dir/`, so `dir` is skipped); buildah 1.28 walks in and copies `dir/keep`.
    @Test func dockerignoreFileInsideSkippedDirectoryFollowsDocker() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["dir/keep": "k\n", ".dockerignore": "dir\n!**/keep\n"], in: "ctx")
        await #expect(throws: StrataError.self) {
            _ = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nCOPY dir/keep /c/\n", log: BuildLog())
        }
        // With an exception that starts with the directory's path, it is in the context.
        try dir.write([".dockerignore": "dir\n!dir/keep\n"], in: "ctx")
        let r = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nCOPY dir/keep /c/\n", log: BuildLog())
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/c/keep") == "k\n")
        try dir.write([".dockerignore": "dir/\n!dir*/keep\n", "other": "o\n"], in: "ctx")
        let all = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nCOPY . /c/\n", log: BuildLog())
        #expect(try await BuildFixtures.read(store, image: all.imageID, path: "/c/dir/keep") == nil)
        #expect(try await BuildFixtures.read(store, image: all.imageID, path: "/c/other") == "o\n")
    }

    /// Class 8: after VOLUME, what a RUN changes under the volume is discarded (content, new
    /// files, removals, the mount point's own mode); COPY into it stays; a RUN creates the
    /// mount point when it is missing. Volumes of the base image count too.
    @Test func volumeChangesByRunAreDiscarded() async throws {
        try await PeerBuild.compare(PeerCase(name: "volume-run", files: ["f": "f\n"], dockerfile: """
            FROM base:1
            RUN mkdir -p /v/pre && echo pre > /v/pre/file
            VOLUME /v
            RUN echo run > /v/new && rm /v/pre/file && echo x > /outside && mkdir /v/dd
            COPY f /v/copied
            RUN echo again >> /v/copied; chmod 700 /v
            VOLUME ["/w/x"]
            RUN echo w > /w/x/file; echo y > /w/y
            VOLUME /only /a/../b/./c
            RUN echo > /b/c/lost
            ENV AFTER=volume
            """))
        try await PeerBuild.compare(PeerCase(name: "volume-base", dockerfile: """
            FROM base:1 AS withvolume
            VOLUME /data
            FROM withvolume
            RUN echo lost > /data/file && echo kept > /kept
            """))
    }

    /// Class 8, a buildah 1.28 quirk: VOLUME followed by metadata steps or COPY creates no
    /// mount point in buildah or docker, but buildah creates it when VOLUME is the very last
    /// instruction. strata follows docker's classic builder (VOLUME is metadata only).
    @Test func volumeAloneCreatesNoDirectory() async throws {
        try await PeerBuild.compare(PeerCase(name: "volume-then-env", files: ["f": "f\n"], dockerfile: "FROM base:1\nVOLUME /vol\nCOPY f /f\nENV A=b\n"))
        let r = try await PeerBuild.compare(PeerCase(name: "volume-last", dockerfile: "FROM base:1\nVOLUME /vol\n", ignoredPaths: ["vol"]))
        if let r {
            #expect(r.strata.tree["vol"] == nil)
            if r.buildah.tree["vol"] == nil { Issue.record("buildah no longer creates /vol for a final VOLUME: compare the tree again") }
        }
    }

    /// A tar written by python's tarfile from `entries` (name, type d/f/l, data or link
    /// target, octal mode), in order: archives no tar(1) command line produces.
    static func archiveScript(_ file: String, _ entries: [(String, String, String, Int)]) -> String {
        let list = entries.map { "(\"\($0.0)\", \"\($0.1)\", \"\($0.2)\", 0o\(String($0.3, radix: 8)))" }.joined(separator: ", ")
        return """
            python3 - <<'PY'
            import io, tarfile
            with tarfile.open("\(file)", "w", format=tarfile.GNU_FORMAT) as t:
                for name, kind, value, mode in [\(list)]:
                    ti = tarfile.TarInfo(name); ti.mode = mode; ti.mtime = 1600000000
                    data = None
                    if kind == "d": ti.type = tarfile.DIRTYPE
                    elif kind == "l": ti.type = tarfile.SYMTYPE; ti.linkname = value
                    else: data = value.encode() + b"\\n"; ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data) if data is not None else None)
            PY
            """
    }

    /// Class 6: ADD of a local archive applies entries below a symlink the archive itself
    /// created (relative, absolute, climbing: resolved with the destination directory as the
    /// root, as docker's chrootarchive and buildah's copier do) and a file that replaces a
    /// populated directory (the archive's or the image's). Nothing lands outside.
    @Test func addArchiveThroughItsOwnSymlinksAndOverDirectories() async throws {
        let entries: [(String, String, String, Int)] = [
            ("sub/", "d", "", 0o755), ("l", "l", "sub", 0o777), ("l/file", "f", "via link", 0o644),
            ("abs", "l", "/sub", 0o777), ("abs/newfile", "f", "abs", 0o600),
            ("up", "l", "../../../../..", 0o777), ("up/escaped", "f", "top", 0o644),
            ("d/", "d", "", 0o755), ("d/x", "f", "x", 0o644), ("d", "f", "now a file", 0o755),
            ("pop", "f", "replaces the image's directory", 0o644),
            ("nested/", "d", "", 0o750), ("nested/in", "l", "../sub", 0o777), ("nested/in/deep/f", "f", "deep", 0o640),
        ]
        try await PeerBuild.compare(PeerCase(name: "add-archive-links", setup: Self.archiveScript("a.tar", entries), dockerfile: """
            FROM base:1
            RUN mkdir -p /x/pop/deep && echo a > /x/pop/deep/a
            ADD a.tar /x/
            ADD a.tar /y
            """))

        // Law 5: symlinks pointing at host paths (absolute, or climbing) take nothing out of the
        // destination directory: the writes land inside it.
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        let probe = "strata-escape-probe-\(UUID().uuidString.prefix(8))"
        try dir.write(["Dockerfile": "FROM base:1\nADD e.tar /e/\n"], in: "ctx")
        try buildShell(Self.archiveScript("e.tar", [("abs", "l", "/tmp/\(probe)", 0o777), ("abs/f", "f", "a", 0o644),
                                                    ("dots", "l", "../../../../../../../tmp/\(probe)-2", 0o777), ("dots/g", "f", "g", 0o644)]),
                       cwd: dir.file("ctx"))
        let r = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nADD e.tar /e/\n", log: BuildLog())
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(probe)"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(probe)-2"))
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/e/tmp/\(probe)/f") == "a\n")
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/e/tmp/\(probe)-2/g") == "g\n")
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/tmp/\(probe)/f") == nil)
    }

    /// Class 7: `RUN --mount` type=cache (survives between steps, uid/gid/mode on creation),
    /// type=bind (the context, read-only; a stage's path), type=tmpfs. No mount's content and
    /// no mount point the step created reaches the layer. Cache ids are unique per run:
    /// buildah keeps its cache mounts on the host (/var/tmp/buildah-cache), not in --root.
    @Test func runMountsCacheBindTmpfs() async throws {
        let id = "strata-test-\(UUID().uuidString.prefix(8))"
        defer {  // buildah's cache mounts of this test (host-wide, under /var/tmp/buildah-cache)
            for name in [id, id + "-2"] { try? FileManager.default.removeItem(atPath: "/var/tmp/buildah-cache/" + name) }
        }
        try await PeerBuild.compare(PeerCase(name: "run-mounts", files: ["f": "ctxfile\n", "d/g": "g\n"], dockerfile: """
            FROM base:1 AS src
            RUN mkdir /s && echo fromstage > /s/f
            FROM base:1
            RUN --mount=type=cache,target=/cache,id=\(id) echo one >> /cache/a && cat /cache/a > /seen1
            RUN --mount=type=cache,target=/cache,id=\(id) cat /cache/a > /seen2
            RUN --mount=type=bind,target=/ctx cat /ctx/f /ctx/d/g > /copied && (echo w > /ctx/new || echo ro > /ro)
            RUN --mount=type=bind,source=d,target=/dd,rw cat /dd/g > /dcopied && echo w > /dd/new
            RUN --mount=type=bind,from=src,source=/s,target=/mnt/x cat /mnt/x/f > /fromstage
            RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/y && ls /scratch > /tmpfs-listing
            RUN --mount=type=cache,target=/var/cache/x,uid=1000,gid=50,mode=0700,id=\(id)-2 set -- $(ls -lnd /var/cache/x) && echo $1 $3 $4 > /cperm
            """))
    }

    /// Class 7, strata's own rules (BuildKit's): a cache mount lives in the store, persists
    /// between builds, shows in `builder du` and goes with `builder prune`; its content is
    /// neither in the layer nor in the cache key; a change in a bind's context source
    /// invalidates the step.
    @Test func cacheMountLivesInTheStoreAndBindSourceIsInTheKey() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["src/v": "1\n"], in: "ctx")
        let df = """
            FROM base:1
            RUN --mount=type=cache,target=/c echo run >> /c/log && cat /c/log > /count
            RUN --mount=type=bind,source=src,target=/src cat /src/v > /v
            """
        let builder = Builder(store: store)
        let first = try await builder.build(dir.file("ctx"), df, log: BuildLog())
        #expect(try await BuildFixtures.read(store, image: first.imageID, path: "/count") == "run\n")
        #expect(try await BuildFixtures.read(store, image: first.imageID, path: "/c/log") == nil)
        #expect(try await BuildFixtures.stat(store, image: first.imageID, path: "/c") == nil)
        let mounts = try await store.buildCacheEntries().filter { $0.resultImageID.isEmpty }
        #expect(mounts.map(\.instruction) == ["RUN --mount=type=cache,id=/c"])
        #expect(mounts.first?.size == 4)
        // Cached: same image; the cache's content is not in the key.
        let log = BuildLog()
        let again = try await builder.build(dir.file("ctx"), df, log: log)
        #expect(again.imageID == first.imageID)
        #expect(log.cachedSteps == [false, true, true])
        // A changed bind source reruns that step only.
        try dir.write(["src/v": "2\n"], in: "ctx")
        let changed = try await builder.build(dir.file("ctx"), df, log: log)
        #expect(try await BuildFixtures.read(store, image: changed.imageID, path: "/v") == "2\n")
        // Without the cache, the mount keeps what earlier runs wrote.
        let fresh = try await builder.build(dir.file("ctx"), df, log: BuildLog(), noCache: true)
        #expect(try await BuildFixtures.read(store, image: fresh.imageID, path: "/count") == "run\nrun\n")
        // prune removes it.
        let report = try await store.pruneBuildCache(BuildCachePruneOptions(all: true))
        #expect(report.removed.contains(mounts.first?.key ?? "-"))
        #expect(try await store.buildCacheEntries().filter { $0.resultImageID.isEmpty }.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("store") + "/build-mounts").isEmpty)
        // `system prune` (all build cache) takes cache mounts too.
        _ = try await builder.build(dir.file("ctx"), df, log: BuildLog(), noCache: true)
        #expect(try await store.buildCacheEntries().contains { $0.resultImageID.isEmpty })
        _ = try await store.pruneBuildCache()
        #expect(try await store.buildCacheEntries().isEmpty)
    }

    /// Class 7, type=secret: the secret is readable at /run/secrets/ID (0400 root) or at a
    /// target with uid/mode, gone afterwards, never in a layer; a missing optional secret is
    /// skipped, a required one fails. The history and the stored cache key never hold it.
    @Test func runMountSecret() async throws {
        let secret = "s3cr3t-\(UUID().uuidString.prefix(8))"
        try await PeerBuild.compare(PeerCase(name: "run-secret", dockerfile: """
            FROM base:1
            RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len && set -- $(ls -ln /run/secrets/tok) && echo $1 $3 $4 > /perm
            RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=1000 set -- $(ls -ln /etc/tok) && echo $1 $3 $4 > /perm2
            RUN --mount=type=secret,id=missing test ! -e /run/secrets/missing && echo skipped > /missing
            """, secrets: ["tok": secret]))
        try await PeerBuild.compare(PeerCase(name: "run-secret-required", dockerfile: "FROM base:1\nRUN --mount=type=secret,id=nope,required=true true\n",
                                             expectFailure: true))

        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["s": secret], in: "secrets")
        try dir.write(["Dockerfile": "x"], in: "ctx")
        var options = BuildOptions(tags: ["s:1"])
        options.secrets = ["tok": .file(dir.file("secrets/s"))]
        let r = try await Builder(store: store).build(context: dir.file("ctx"), dockerfile: "FROM base:1\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null\n", options: options)
        try await store.save(["s:1"], to: URL(fileURLWithPath: dir.file("saved.tar")), format: .ociArchive)
        let everything = try buildShell("cat '\(dir.file("saved.tar"))' | tar -xOf - 2>/dev/null | grep -a -c '\(secret)' || true").stdout
        #expect(everything.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        let found = try buildShell("grep -r -a -l '\(secret)' '\(dir.file("store"))' || true").stdout
        #expect(found.isEmpty, "the secret is in the store: \(found)")
        #expect(try await BuildFixtures.stat(store, image: r.imageID, path: "/run/secrets/tok") == nil)
    }

    /// Class 7, type=ssh: the agent's socket at /run/buildkit/ssh_agent.N or a target,
    /// SSH_AUTH_SOCK naming the first, the mount point gone afterwards; an agent that was not
    /// given is skipped unless required.
    @Test func runMountSSH() async throws {
        try await PeerBuild.compare(PeerCase(name: "run-ssh", dockerfile: """
            FROM base:1
            RUN --mount=type=ssh echo "$SSH_AUTH_SOCK" > /s && test -S /run/buildkit/ssh_agent.0 && echo sock >> /s
            RUN --mount=type=ssh,target=/agent.sock echo "$SSH_AUTH_SOCK" > /t && test -S /agent.sock && echo ok >> /t
            RUN --mount=type=ssh,id=a --mount=type=ssh echo "$SSH_AUTH_SOCK" > /u && ls /run/buildkit >> /u
            RUN --mount=type=ssh,id=notgiven test ! -e /run/buildkit/ssh_agent.0 && echo skipped > /v
            """, sshAgent: true))
        try await PeerBuild.compare(PeerCase(name: "run-ssh-required", dockerfile: "FROM base:1\nRUN --mount=type=ssh,id=nope,required=true true\n",
                                             sshAgent: true, expectFailure: true))
    }

    /// A broader ground truth: one feature per context, the whole config compared (Docker
    /// format, so Healthcheck, Shell and OnBuild count) and the rootfs tree.
    static let broad: [PeerCase] = [
        PeerCase(name: "cmd-entrypoint-shell-form", dockerfile: "FROM base:1\nCMD echo hi\nENTRYPOINT [\"/bin/sh\"]\n"),
        PeerCase(name: "entrypoint-then-cmd", dockerfile: "FROM base:1\nENTRYPOINT echo a\nCMD [\"b\"]\n"),
        PeerCase(name: "cmd-kept-by-later-entrypoint-stage", dockerfile: "FROM base:1\nCMD [\"x\"]\nFROM base:1\nENTRYPOINT [\"y\"]\n"),
        // buildah 1.28 bug: a shell-form CMD ignores SHELL (docker: "SHELL … affects the shell
        // form of RUN, CMD and ENTRYPOINT"): Cmd is checked against docker's rule below.
        PeerCase(name: "shell-instruction", dockerfile: "FROM base:1\nSHELL [\"/bin/sh\", \"-ec\"]\nRUN echo $0 > /shell\nCMD echo x\n",
                 keys: PeerBuild.configKeys.filter { $0 != "Cmd" }),
        PeerCase(name: "healthcheck", dockerfile: "FROM base:1\nHEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD [\"true\"]\n"),
        PeerCase(name: "healthcheck-none", dockerfile: "FROM base:1\nHEALTHCHECK CMD true\nHEALTHCHECK NONE\n"),
        PeerCase(name: "onbuild-stored", dockerfile: "FROM base:1\nONBUILD RUN echo hi > /onbuild\nONBUILD COPY a /a\n"),
        PeerCase(name: "onbuild-triggered", files: ["a": "a\n"], dockerfile: "FROM base:1 AS parent\nONBUILD COPY a /from-trigger\nFROM parent\nRUN cat /from-trigger > /seen\n"),
        PeerCase(name: "env-forms", dockerfile: "FROM base:1\nENV A=1 B=\"two words\" C=${A}x\nENV LEGACY legacy value\nRUN echo \"$A $B $C $LEGACY\" > /env\n"),
        PeerCase(name: "arg-scoping", dockerfile: "ARG V=meta\nFROM base:1\nARG V\nRUN echo $V > /v1\nFROM base:1\nRUN echo \"[$V]\" > /v2\nARG V=stage\nRUN echo $V > /v3\n"),
        PeerCase(name: "build-arg-override", dockerfile: "FROM base:1\nARG X=default\nENV Y=$X\nRUN echo $X > /x\n", buildArgs: ["X": "given"]),
        PeerCase(name: "env-shadows-arg", dockerfile: "FROM base:1\nARG X=arg\nENV X=env\nRUN echo $X > /x\n", buildArgs: ["X": "cli"]),
        PeerCase(name: "target-stage", dockerfile: "FROM base:1 AS one\nRUN echo 1 > /one\nFROM base:1 AS two\nRUN echo 2 > /two\n", target: "one"),
        PeerCase(name: "copy-from-index", dockerfile: "FROM base:1\nRUN echo a > /a\nFROM base:1\nCOPY --from=0 /a /b\n"),
        PeerCase(name: "copy-from-image", dockerfile: "FROM base:1\nCOPY --from=base:1 /etc/passwd /p\n"),
        PeerCase(name: "user-workdir-run", dockerfile: "FROM base:1\nUSER app\nWORKDIR /home/app/w\nRUN touch mine\nUSER root\nRUN touch theirs\n"),
        PeerCase(name: "user-uid-gid", dockerfile: "FROM base:1\nRUN mkdir /o && chmod 777 /o\nUSER 1234:50\nRUN touch /o/f\n"),
        // (Heredocs: buildah 1.28 has none — it runs `<<EOF` lines as instructions; they are
        // checked against busybox sh in ShellLexerTests and BuilderTests instead.)
        // buildah 1.28 bug: EXPOSE keeps a range as one key ("8000-8002/udp"); docker and
        // BuildKit expand it (nat.ParsePortSpecs): ExposedPorts is checked below.
        PeerCase(name: "expose-ranges", dockerfile: "FROM base:1\nEXPOSE 80 8000-8002/udp 53/tcp\n",
                 keys: PeerBuild.configKeys.filter { $0 != "ExposedPorts" }),
        PeerCase(name: "labels-quoted", dockerfile: "FROM base:1\nLABEL a=1 \"b c\"=\"d e\" f=g\\ h\nLABEL a=2\n"),
        PeerCase(name: "stopsignal-maintainer", dockerfile: "FROM base:1\nSTOPSIGNAL SIGTERM\nMAINTAINER someone\n"),
        PeerCase(name: "copy-dir-contents-and-trailing", files: ["d/a": "a\n", "d/s/b": "b\n"], dockerfile: "FROM base:1\nCOPY d /x\nCOPY d/ /y/\nCOPY d/s /z/\nCOPY d/a /file\nCOPY d/a /dir/\n"),
        PeerCase(name: "copy-chmod-chown-dir", files: ["d/a": "a\n", "d/s/b": "b\n"], dockerfile: "FROM base:1\nCOPY --chown=app:staff --chmod=750 d /x\n"),
        // More than one source and no trailing slash: a directory (buildah, BuildKit; the
        // classic builder refuses it).
        PeerCase(name: "copy-many-sources-no-slash", files: ["a": "a\n", "b": "b\n", "dd/z": "z\n"],
                 dockerfile: "FROM base:1\nCOPY a b /d\nCOPY dd a /g\nWORKDIR /w\nCOPY a b .\nCOPY a b sub\n"),
        PeerCase(name: "copy-over-existing", files: ["passwd": "x:0:0\n"], dockerfile: "FROM base:1\nCOPY passwd /etc/passwd2\nCOPY passwd /bin/\n"),
        PeerCase(name: "copy-symlink-in-context", files: ["t": "t\n"], setup: "ln -s t link && mkdir d && ln -s ../t d/up", dockerfile: "FROM base:1\nCOPY link /l\nCOPY d /d\n"),
        PeerCase(name: "add-tar-gz-bz2", files: ["t/a": "a\n"], setup: "tar -C t -czf a.tgz . && tar -C t -cjf b.tar.bz2 . && rm -rf t", dockerfile: "FROM base:1\nADD a.tgz /g/\nADD b.tar.bz2 /b\n"),
        PeerCase(name: "add-plain-file-not-extracted", files: ["notatar.gz": "plain text\n"], dockerfile: "FROM base:1\nADD notatar.gz /n\n"),
        PeerCase(name: "run-exec-form", dockerfile: "FROM base:1\nRUN [\"/bin/sh\", \"-c\", \"echo exec > /e\"]\n"),
        PeerCase(name: "run-fails", dockerfile: "FROM base:1\nRUN false\n", expectFailure: true),
        PeerCase(name: "copy-missing", dockerfile: "FROM base:1\nCOPY nothere /x\n", expectFailure: true),
        PeerCase(name: "unknown-stage-target", dockerfile: "FROM base:1 AS a\nRUN true\n", target: "b", expectFailure: true),
        PeerCase(name: "run-deletes-base-files", dockerfile: "FROM base:1\nRUN rm /etc/group && rm -r /root && mkdir -p /root/new\n"),
        PeerCase(name: "workdir-env-expansion", dockerfile: "FROM base:1\nENV D=/data\nWORKDIR $D/sub\nWORKDIR ${D}2\nRUN pwd > /pwd\n"),
        PeerCase(name: "volume-json-and-multi", dockerfile: "FROM base:1\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nRUN touch /a/x /e\n"),
    ]

    @Test(arguments: broad)
    func broadGroundTruth(_ c: PeerCase) async throws {
        var c = c
        c.dockerFormat = true
        guard let r = try await PeerBuild.compare(c) else { return }
        // Where buildah 1.28 is wrong, docker's documented result.
        switch c.name {
        case "shell-instruction": #expect(r.strata.config["Cmd"] == #"["\/bin\/sh","-ec","echo x"]"#)
        case "expose-ranges": #expect(r.strata.config["ExposedPorts"] == #"{"53\/tcp":{},"80\/tcp":{},"8000\/udp":{},"8001\/udp":{},"8002\/udp":{}}"#)
        default: break
        }
    }
}
