import Foundation
import Testing
@testable import Strata
@testable import StrataBuild

@Suite("Builder")
struct BuilderTests {
    @Test func classicOutputHistoryAndParentChain() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        let base = try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["app/main.txt": "hello\n"], in: "ctx")
        let log = BuildLog()
        let result = try await Builder(store: store).build(dir.file("ctx"), """
            FROM base:1
            RUN echo hi > /hello
            COPY app /app
            ENV A=b
            WORKDIR /app
            CMD ["sh"]
            """, log: log, tags: ["app:latest"])
        let lines = log.lines
        #expect(lines.first == "Step 1/6 : FROM base:1")
        #expect(lines[1] == " ---> \(base.shortHex)")
        #expect(lines[2] == "Step 2/6 : RUN echo hi > /hello")
        #expect(lines[3].hasPrefix(" ---> Running in ") && lines[3].count == " ---> Running in ".count + 12)
        #expect(lines[4].hasPrefix(" ---> ") && lines[4].count == 18)
        #expect(lines[5] == "Removing intermediate container " + lines[3].dropFirst(" ---> Running in ".count))
        #expect(lines[6] == "Step 3/6 : COPY app /app")
        #expect(lines.suffix(2) == ["Successfully built \(result.imageID.shortHex)", "Successfully tagged app:latest"])
        #expect(try await store.resolve("app:latest") == result.imageID)

        // History: Docker's created_by, empty_layer for metadata-only steps.
        let cfg = try ImageConfig.decode(try await store.imageConfigData(result.imageID))
        let steps = Array((cfg.history ?? []).dropFirst())
        let expected = ["/bin/sh -c echo hi > /hello", "/bin/sh -c #(nop) COPY dir:", "/bin/sh -c #(nop) ENV A=b",
                        "/bin/sh -c #(nop) WORKDIR /app", "/bin/sh -c #(nop) CMD [\"sh\"]"]
        #expect(steps.count == expected.count)
        for (c, e) in zip(steps.map { $0.createdBy ?? "" }, expected) { #expect(c.hasPrefix(e)) }
        #expect(steps[1].createdBy?.hasSuffix(" in /app ") == true)
        #expect(steps.map { $0.emptyLayer ?? false } == [false, false, true, true, true])
        #expect(cfg.rootfs.diffIDs.count == 3)
        #expect(cfg.config?.Env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=b"])
        #expect(cfg.config?.WorkingDir == "/app")
        #expect(cfg.config?.Cmd == ["sh"])

        // One image per step, chained by parent links.
        var chain: [Digest] = []
        var cursor: Digest? = result.imageID
        while let c = cursor {
            chain.append(c)
            let info = try await store.inspect(c.string)
            cursor = info.parent
        }
        #expect(chain.count == 6)
        #expect(chain.last == base)

        #expect(try await BuildFixtures.read(store, image: result.imageID, path: "/hello") == "hi\n")
        #expect(try await BuildFixtures.read(store, image: result.imageID, path: "/app/main.txt") == "hello\n")
        // No temporary container is left behind, and no runtime mount point leaked into a layer.
        #expect(try await store.containers().isEmpty)
        #expect(try await BuildFixtures.stat(store, image: result.imageID, path: "/proc") == nil)
    }

    @Test func cacheRebuildsExactlyTheChangedStepAndAfter() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["a.txt": "one\n", "b.txt": "two\n"], in: "ctx")
        let ctx = dir.file("ctx")
        func dockerfile(_ label: String = "x") -> String {
            """
            FROM base:1
            ARG V=1
            COPY a.txt /a.txt
            LABEL l=\(label)
            RUN echo $V > /v
            COPY b.txt /b.txt
            CMD ["sh"]
            """
        }
        let builder = Builder(store: store)
        let log = BuildLog()
        let first = try await builder.build(ctx, dockerfile(), log: log)
        #expect(log.cachedSteps == [false, false, false, false, false, false, false])

        // Unchanged: every step from the cache, the same image ID.
        log.clear()
        let again = try await builder.build(ctx, dockerfile(), log: log)
        #expect(again.imageID == first.imageID)
        #expect(log.cachedSteps == [false, true, true, true, true, true, true])

        // mtime alone changes nothing.
        try buildShell("touch -d @1700000000 '\(ctx)/a.txt'")
        log.clear()
        #expect(try await builder.build(ctx, dockerfile(), log: log).imageID == first.imageID)
        #expect(log.cachedSteps == [false, true, true, true, true, true, true])

        // A changed instruction: that step and every later one.
        log.clear()
        _ = try await builder.build(ctx, dockerfile("y"), log: log)
        #expect(log.cachedSteps == [false, true, true, false, false, false, false])

        // A changed file: the COPY of it and after.
        try dir.write(["b.txt": "three\n"], in: "ctx")
        log.clear()
        _ = try await builder.build(ctx, dockerfile(), log: log)
        #expect(log.cachedSteps == [false, true, true, true, true, false, false])

        // A changed mode is a changed file too.
        try buildShell("chmod 600 '\(ctx)/a.txt'")
        log.clear()
        _ = try await builder.build(ctx, dockerfile(), log: log)
        #expect(log.cachedSteps == [false, true, false, false, false, false, false])

        // A changed build-arg: the first step that uses it (the RUN) and after.
        log.clear()
        let withArg = try await builder.build(context: ctx, dockerfile: dockerfile(), options: BuildOptions(buildArgs: ["V": "2"], log: { log.add($0) }))
        #expect(log.cachedSteps == [false, true, true, true, false, false, false])
        #expect(try await BuildFixtures.read(store, image: withArg.imageID, path: "/v") == "2\n")
        let cfg = try ImageConfig.decode(try await store.imageConfigData(withArg.imageID))
        #expect(cfg.history?.contains { $0.createdBy == "|1 V=2 /bin/sh -c echo $V > /v" } == true)

        // --no-cache rebuilds everything.
        log.clear()
        _ = try await builder.build(ctx, dockerfile(), log: log, noCache: true)
        #expect(log.cachedSteps == [false, false, false, false, false, false, false])

        // Entries carry use counts and last use.
        let entries = try await store.buildCacheEntries()
        #expect(entries.contains { $0.uses > 1 })
        #expect(entries.allSatisfy { Date().timeIntervalSince($0.lastUsed) < 3600 })
    }

    @Test func reproducibleWithATimestampAcrossStoresAndDirectories() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let dockerfile = """
            FROM base:1
            COPY . /src
            RUN mkdir /out && cat /src/f > /out/g
            ENV X=1
            """
        var ids: [Digest] = []
        for n in 0..<2 {
            // Two fresh stores, two directories written at different times with the same files.
            let store = try await dir.store("store\(n)")
            try await BuildFixtures.busyboxBase(store, in: dir)
            try dir.write(["f": "same\n", "sub/h": "x\n"], in: "ctx\(n)")
            ids.append(try await Builder(store: store).build(dir.file("ctx\(n)"), dockerfile, log: BuildLog(), timestamp: 1_700_000_000).imageID)
            if n == 0 { try await Task.sleep(nanoseconds: 1_100_000_000) }
        }
        #expect(ids[0] == ids[1])
        let store = try await dir.store("store0")
        let cfg = try ImageConfig.decode(try await store.imageConfigData(ids[0]))
        #expect(cfg.created == "2023-11-14T22:13:20Z")
        #expect(cfg.history?.last?.created == "2023-11-14T22:13:20Z")
        // Without a timestamp two builds differ (creation times), and a cached rebuild does not.
        let a = try await Builder(store: store).build(dir.file("ctx0"), dockerfile, log: BuildLog(), noCache: true).imageID
        let b = try await Builder(store: store).build(dir.file("ctx0"), dockerfile, log: BuildLog()).imageID
        #expect(a != ids[0])
        #expect(a == b)
    }

    @Test func dockerignoreAndEscapesStayInsideTheContext() async throws {
        let dir = try BuildTestDir()
        let store = try await dir.store()
        let base = try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["keep.txt": "k\n", "debug.log": "d\n", "important.log": "i\n", "node_modules/x/y.js": "n\n",
                       ".dockerignore": "*.log\n!important.log\nnode_modules\n"], in: "ctx")
        try buildShell("ln -s /etc/passwd '\(dir.file("ctx"))/escape'; ln -s ../../../../../etc '\(dir.file("ctx"))/up'")
        let builder = Builder(store: store)
        let result = try await builder.build(dir.file("ctx"), "FROM base:1\nCOPY . /app/\n", log: BuildLog())
        #expect(try await BuildFixtures.read(store, image: result.imageID, path: "/app/keep.txt") == "k\n")
        #expect(try await BuildFixtures.read(store, image: result.imageID, path: "/app/important.log") == "i\n")
        #expect(try await BuildFixtures.stat(store, image: result.imageID, path: "/app/debug.log") == nil)
        #expect(try await BuildFixtures.stat(store, image: result.imageID, path: "/app/node_modules") == nil)

        let imagesBefore = try await store.images(all: true).count
        // `..` above the context, a symlink to a host file, a symlink climbing out: all refused or
        // resolved inside the context (where the target does not exist).
        // (Source symlinks are followed inside the context, as Docker does.)
        for df in ["FROM base:1\nCOPY ../x /x\n", "FROM base:1\nCOPY escape /x\n", "FROM base:1\nCOPY escape/ /x\n",
                   "FROM base:1\nCOPY up/passwd /x\n", "FROM base:1\nCOPY debug.log /x\n", "FROM base:1\nCOPY *.md /x\n",
                   "FROM base:1\nADD http://example.com/a /a\n",
                   "FROM base:1\nCOPY --chmod=999 keep.txt /x\n"] {
            await #expect(throws: StrataError.self, "\(df)") { try await builder.build(dir.file("ctx"), df, log: BuildLog()) }
        }
        // A directory copy keeps symlinks as symlinks (resolved later inside the image, never on the host).
        let copied = try await BuildFixtures.stat(store, image: result.imageID, path: "/app/escape")
        #expect(copied != nil)
        #expect(try await store.images(all: true).count == imagesBefore)
        #expect(try await store.containers().isEmpty)
        _ = base
    }

    @Test func addExtractsArchivesAndRefusesHostileOnes() async throws {
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        let ctx = dir.file("ctx")
        try dir.write(["t/a/one": "1\n", "t/two": "2\n"], in: "ctx")
        try buildShell("""
            cd '\(ctx)'
            tar -C t -czf plain.tar.gz .
            tar -C t -cf - . | zstd -q -o zst.tar.zst
            mkdir evil && cd evil && printf x > f && tar -cf ../evil.tar --transform 's,^,../../,' f
            """)
        let builder = Builder(store: store)
        let r = try await builder.build(ctx, """
            FROM base:1
            ADD plain.tar.gz /g/
            ADD zst.tar.zst /z
            ADD t/two /copied
            """, log: BuildLog())
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/g/a/one") == "1\n")
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/z/two") == "2\n")
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/copied") == "2\n")
        await #expect(throws: StrataError.self) { try await builder.build(ctx, "FROM base:1\nADD evil.tar /e/\n", log: BuildLog()) }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/f"))
        #expect(try await store.containers().isEmpty)
    }

    @Test func copyChownChmodAndMetadataInstructions() async throws {
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["f": "x\n", "d/g": "y\n"], in: "ctx")
        let r = try await Builder(store: store).build(dir.file("ctx"), """
            FROM base:1
            ARG USERNAME=app
            ENV HOME=/home/$USERNAME P="a b"
            COPY --chown=${USERNAME}:staff --chmod=640 f d /dst/
            USER $USERNAME
            EXPOSE 80 53/udp 8000-8001
            VOLUME ["/data", "/cache"]
            LABEL a=1 "b c"="d e"
            STOPSIGNAL SIGTERM
            SHELL ["/bin/sh", "-ec"]
            HEALTHCHECK --interval=30s --retries=3 CMD ["true"]
            ENTRYPOINT ["/bin/sh"]
            ONBUILD RUN echo triggered > /t
            """, log: BuildLog())
        let st = try await BuildFixtures.stat(store, image: r.imageID, path: "/dst/f")
        #expect(st?.0 == 0o640 && st?.1 == 1000 && st?.2 == 50)
        #expect(try await BuildFixtures.stat(store, image: r.imageID, path: "/dst/g")?.1 == 1000)
        let raw = try JSONSerialization.jsonObject(with: try await store.imageConfigData(r.imageID)) as? [String: Any]
        let c = raw?["config"] as? [String: Any] ?? [:]
        #expect(c["Env"] as? [String] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/app", "P=a b"])
        #expect(c["User"] as? String == "app")
        #expect((c["ExposedPorts"] as? [String: Any]).map { Set($0.keys) } == ["80/tcp", "53/udp", "8000/tcp", "8001/tcp"])
        #expect((c["Volumes"] as? [String: Any]).map { Set($0.keys) } == ["/data", "/cache"])
        #expect(c["Labels"] as? [String: String] == ["a": "1", "b c": "d e"])
        #expect(c["StopSignal"] as? String == "SIGTERM")
        #expect(c["Shell"] as? [String] == ["/bin/sh", "-ec"])
        #expect(c["Entrypoint"] as? [String] == ["/bin/sh"])
        #expect(c["Cmd"] == nil)
        let hc = c["Healthcheck"] as? [String: Any]
        #expect(hc?["Test"] as? [String] == ["CMD", "true"])
        #expect(hc?["Interval"] as? Int == 30_000_000_000 && hc?["Retries"] as? Int == 3)
        #expect(c["OnBuild"] as? [String] == ["RUN echo triggered > /t"])
        let history = ((raw?["history"] as? [[String: Any]]) ?? []).compactMap { $0["created_by"] as? String }
        #expect(history.contains("/bin/sh -c #(nop) EXPOSE 80 53/udp 8000-8001"))
        #expect(history.contains("/bin/sh -c #(nop) VOLUME [/data /cache]"))
        #expect(history.contains("/bin/sh -ec #(nop) ENTRYPOINT [\"/bin/sh\"]"))
        #expect(history.contains("/bin/sh -c #(nop) ARG USERNAME=app"))

        // An unknown --chown user is an error, as in Docker.
        await #expect(throws: StrataError.self) {
            try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nCOPY --chown=nobody f /f\n", log: BuildLog())
        }
    }

    @Test func onbuildTriggersRunWhenUsedAsABase() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try FileManager.default.createDirectory(atPath: dir.file("ctx"), withIntermediateDirectories: true)
        let builder = Builder(store: store)
        _ = try await builder.build(dir.file("ctx"), "FROM base:1\nONBUILD RUN echo triggered > /t\n", log: BuildLog(), tags: ["parent:1"])
        let log = BuildLog()
        let child = try await builder.build(dir.file("ctx"), "FROM parent:1\nENV C=1\n", log: log)
        #expect(log.lines.contains("# Executing 1 build trigger"))
        #expect(try await BuildFixtures.read(store, image: child.imageID, path: "/t") == "triggered\n")
        let cfg = try JSONSerialization.jsonObject(with: try await store.imageConfigData(child.imageID)) as? [String: Any]
        #expect((cfg?["config"] as? [String: Any])?["OnBuild"] == nil)
    }

    @Test func heredocsForRunAndCopy() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try FileManager.default.createDirectory(atPath: dir.file("ctx"), withIntermediateDirectories: true)
        let r = try await Builder(store: store).build(dir.file("ctx"), """
            FROM base:1
            ARG WHO=world
            COPY <<EOF /greeting
            hello $WHO
            EOF
            RUN <<EOF
            echo script > /h
            echo $WHO >> /h
            EOF
            RUN cat > /q <<'END'
            $WHO stays
            END
            """, log: BuildLog())
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/greeting") == "hello world\n")
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/h") == "script\nworld\n")
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/q") == "$WHO stays\n")
    }

    @Test func multiStageWithTargetAndCopyFrom() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try FileManager.default.createDirectory(atPath: dir.file("ctx"), withIntermediateDirectories: true)
        let df = """
            ARG BASE=base:1
            FROM $BASE AS build
            RUN mkdir -p /out && echo built > /out/artifact
            FROM scratch AS final
            COPY --from=build /out/artifact /artifact
            COPY --from=base:1 /etc/passwd /passwd
            """
        let builder = Builder(store: store)
        let log = BuildLog()
        let final = try await builder.build(dir.file("ctx"), df, log: log)
        #expect(log.lines.first == "Step 1/6 : ARG BASE=base:1")
        #expect(log.lines.contains("Step 4/6 : FROM scratch AS final"))
        let cfg = try ImageConfig.decode(try await store.imageConfigData(final.imageID))
        #expect(cfg.rootfs.diffIDs.count == 2)
        #expect(try await BuildFixtures.read(store, image: final.imageID, path: "/artifact") == "built\n")
        #expect(try await BuildFixtures.read(store, image: final.imageID, path: "/passwd")?.hasPrefix("root:") == true)

        let tlog = BuildLog()
        let build = try await builder.build(dir.file("ctx"), df, log: tlog, target: "build")
        #expect(tlog.lines.filter { $0.hasPrefix("Step ") }.last == "Step 3/3 : RUN mkdir -p /out && echo built > /out/artifact")
        #expect(try await BuildFixtures.read(store, image: build.imageID, path: "/out/artifact") == "built\n")
        await #expect(throws: StrataError.self) { try await builder.build(dir.file("ctx"), df, log: BuildLog(), target: "nope") }
    }

    @Test func failingRunLeavesNoContainerAndNamesTheCommand() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try FileManager.default.createDirectory(atPath: dir.file("ctx"), withIntermediateDirectories: true)
        do {
            _ = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nRUN exit 3\n", log: BuildLog(), tags: ["never:1"])
            Issue.record("the build should fail")
        } catch let e as StrataError {
            #expect(e.code == .buildStepFailed)
            #expect(e.message == "The command '/bin/sh -c exit 3' returned a non-zero code: 3")
        }
        #expect(try await store.containers().isEmpty)
        await #expect(throws: StrataError.self) { try await store.resolve("never:1") }
    }

    /// RUN resolves USER in the image's own /etc/passwd and /etc/group (the same resolver as
    /// `strata run`): an explicit group, and a passwd that links out to a host file.
    @Test func runResolvesUserInsideTheImage() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try FileManager.default.createDirectory(atPath: dir.file("ctx"), withIntermediateDirectories: true)
        let builder = Builder(store: store)
        let r = try await builder.build(dir.file("ctx"), """
            FROM base:1
            RUN mkdir /out && chmod 777 /out
            USER app:staff
            RUN id -u > /out/u && id -g >> /out/u && id -G >> /out/u
            """, log: BuildLog())
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/out/u") == "1000\n50\n50\n")

        let outside = dir.file("hostpasswd-outside")
        try "evil:x:4242:4242::/:/bin/sh\n".write(toFile: outside, atomically: true, encoding: .utf8)
        do {
            _ = try await builder.build(dir.file("ctx"), """
                FROM base:1
                RUN rm /etc/passwd && ln -s \(outside) /etc/passwd
                USER evil
                RUN id -u > /evil
                """, log: BuildLog(), tags: ["never:1"])
            Issue.record("the build should fail")
        } catch let e as StrataError {
            #expect(e.code == .userNotFound)
            #expect(e.message == "unable to find user evil: no matching entries in passwd file")
        }
        #expect(try await store.containers().isEmpty)
    }

    @Test func contextFromATarStream() async throws {
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["Dockerfile": "FROM base:1\nCOPY f /f\n", "f": "from tar\n"], in: "ctx")
        try buildShell("tar -C '\(dir.file("ctx"))' -czf '\(dir.file("ctx.tgz"))' .")
        let log = BuildLog()
        let r = try await Builder(store: store).build(contextTar: dir.file("ctx.tgz"), options: BuildOptions(
            buildArgs: ["NOPE": "1", "HTTP_PROXY": "http://proxy:3128"], log: { log.add($0) }))
        #expect(try await BuildFixtures.read(store, image: r.imageID, path: "/f") == "from tar\n")
        // Unconsumed build-args are reported (Docker's predefined proxy args never are).
        #expect(r.unusedBuildArgs == ["NOPE"])
        #expect(log.lines.contains("[Warning] One or more build-args [NOPE] were not consumed"))
        // A missing base names the pull command.
        try Data("FROM nothere:1\n".utf8).write(to: URL(fileURLWithPath: dir.file("Dockerfile.only")))
        do {
            _ = try await Builder(store: store).build(contextTar: dir.file("Dockerfile.only"), options: BuildOptions())
            Issue.record("expected an error")
        } catch let e as StrataError {
            #expect(e.message == "image nothere:1 not found locally; run strata pull nothere:1")
        }
        // Nothing of the context is left in the store.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.root.appendingPathComponent("ingest").path).isEmpty)
    }
}
