import Foundation
import Testing

/// `strata dockerfile parse`, run as the real binary: output shapes, exit codes, one-line errors.
@Suite struct DockerfileCommandTests {
    static let binary: String = {
        // Tests/StrataBuildTests/<file> → package root → .build/debug/strata
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/strata").path
    }()

    static let sample = """
        # syntax=docker/dockerfile:1
        ARG BASE=busybox
        FROM $BASE AS build
        COPY --chown=1:1 app /app
        RUN <<EOF
        echo hi > /hello
        EOF
        FROM scratch
        COPY --from=build /hello /
        CMD ["/hello"]

        """

    func strata(_ args: [String], in dir: ParserTempDir, stdin: URL? = nil) throws -> ParserPeer.Output {
        let root = dir.url.appendingPathComponent("store").path
        if let stdin {
            return try ParserPeer.run(["sh", "-c", "exec \"$0\" \"$@\" < \"$STDIN_FILE\"", Self.binary] + args,
                                      env: ["STRATA_ROOT": root, "STDIN_FILE": stdin.path])
        }
        return try ParserPeer.run([Self.binary] + args, env: ["STRATA_ROOT": root])
    }

    @Test func tableListsEveryInstructionWithItsLineAndStage() throws {
        let dir = try ParserTempDir()
        let file = try dir.write("Dockerfile", Self.sample)
        let r = try strata(["dockerfile", "parse", file.path], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        // Columns laid out like Docker's tabwriter (Output.table: min width 10, padding 3).
        #expect(r.stdout == """
            LINE      STAGE       INSTRUCTION   FLAGS          ARGUMENTS
            2         -           ARG                          BASE=busybox
            3         0 (build)   FROM                         $BASE
            4         0 (build)   COPY          --chown=1:1    app /app
            5         0 (build)   RUN                          <<EOF [heredoc EOF: 1 line]
            8         1           FROM                         scratch
            9         1           COPY          --from=build   /hello /
            10        1           CMD                          ["/hello"]

            """)
        // --root is accepted like everywhere, before or after the command; the store is never touched.
        let rooted = try strata(["--root", dir.url.appendingPathComponent("store").path, "dockerfile", "parse", file.path], in: dir)
        #expect(rooted.status == 0 && rooted.stdout == r.stdout, "\(rooted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("store").path))
    }

    @Test func jsonHasFormsFlagsHeredocsAndStages() throws {
        let dir = try ParserTempDir()
        let file = try dir.write("Dockerfile", Self.sample)
        let r = try strata(["dockerfile", "parse", "--format", "json", file.path], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["syntax"] as? String == "docker/dockerfile:1")
        #expect(json?["escape"] as? String == "\\")
        let rows = json?["instructions"] as? [[String: Any]] ?? []
        #expect(rows.map { $0["keyword"] as? String ?? "?" } == ["ARG", "FROM", "COPY", "RUN", "FROM", "COPY", "CMD"])
        #expect(rows.map { $0["line"] as? Int ?? 0 } == [2, 3, 4, 5, 8, 9, 10])
        #expect(rows.map { $0["stage"] as? Int ?? -1 } == [-1, 0, 0, 0, 1, 1, 1])
        #expect(rows[2]["flags"] as? [[String: String]] == [["name": "chown", "value": "1:1"]])
        let heredoc = (rows[3]["heredocs"] as? [[String: Any]])?.first
        #expect(heredoc?["name"] as? String == "EOF" && heredoc?["content"] as? String == "echo hi > /hello\n")
        #expect(heredoc?["expand"] as? Bool == true && heredoc?["chomp"] as? Bool == false)
        let cmd = rows[6]["arguments"] as? [String: Any]
        #expect(cmd?["form"] as? String == "exec" && cmd?["values"] as? [String] == ["/hello"])
        let run = rows[3]["arguments"] as? [String: Any]
        #expect(run?["form"] as? String == "shell" && run?["command"] as? String == "<<EOF")
    }

    @Test func standardInput() throws {
        let dir = try ParserTempDir()
        let file = try dir.write("in", "FROM a\nRUN b\n")
        let r = try strata(["dockerfile", "parse", "-"], in: dir, stdin: file)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\n2         0         RUN                     b\n"), "\(r.stdout)")
    }

    @Test func errorsAreOneLineWithExitCodes() throws {
        let dir = try ParserTempDir()
        let bad = try dir.write("Dockerfile", "FROM a\n\nFORM b\n")
        let r = try strata(["dockerfile", "parse", bad.path], in: dir)
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "error: Dockerfile line 3: unknown instruction \"FORM\" (did you mean FROM?); instructions are ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR\n")

        let missing = try strata(["dockerfile", "parse", dir.url.appendingPathComponent("nope").path], in: dir)
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("error: cannot read Dockerfile ") && missing.stderr.split(separator: "\n").count == 1)

        #expect(missing.stderr.hasSuffix(": no such file\n"))
        let directory = try strata(["dockerfile", "parse", dir.url.path], in: dir)
        #expect(directory.status == 1 && directory.stderr.contains("it is a directory; name the file, e.g. "))
        let endless = try strata(["dockerfile", "parse", "/dev/zero"], in: dir)
        #expect(endless.status == 1 && endless.stderr == "error: Dockerfile /dev/zero is larger than 32 MiB; is it really a Dockerfile?\n")

        let binary = try dir.write("bin", "")
        try Data([0x46, 0x52, 0xff, 0xfe, 0x0a]).write(to: binary)
        let notText = try strata(["dockerfile", "parse", binary.path], in: dir)
        #expect(notText.status == 1 && notText.stderr.hasSuffix("is not UTF-8 text\n"))

        let usage = try strata(["dockerfile", "parse"], in: dir)
        #expect(usage.status == 2)
        let format = try strata(["dockerfile", "parse", "--format", "yaml", bad.path], in: dir)
        #expect(format.status == 2)
    }
}
