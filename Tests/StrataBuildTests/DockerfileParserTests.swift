import Foundation
import Testing
import OCI
@testable import StrataBuild

/// Parses `FROM scratch` + `body` and returns the instructions after FROM.
private func body(_ body: String) throws -> [Instruction] {
    try Dockerfile.parse("FROM scratch\n" + body).stages[0].instructions
}

private func one(_ text: String) throws -> Instruction {
    let all = try body(text)
    guard all.count == 1 else { throw ShellOutputError("expected one instruction, got \(all.count): \(all)") }
    return all[0]
}

/// The message of the error parsing `text` throws (empty when it parses).
private func failure(_ text: String) -> String {
    do {
        _ = try Dockerfile.parse(text)
        return ""
    } catch let e as StrataError {
        return e.code == .dockerfileSyntax ? e.message : "wrong code \(e.code): \(e.message)"
    } catch {
        return "not a StrataError: \(error)"
    }
}

struct ShellOutputError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The Dockerfile reference's own examples (docs.docker.com/reference/dockerfile), with the
/// AST Docker's documented behaviour gives: exact arguments, flags, heredocs, lines.
@Suite struct DockerfileParserTests {
    // MARK: Comments, continuations, directives

    @Test func continuationsJoinLinesAndSkipCommentsAndEmptyLines() throws {
        let i = try one("RUN apt-get update && apt-get install -y \\\n  bzr \\\n  cvs\n")
        #expect(i.arguments == .shell("apt-get update && apt-get install -y   bzr   cvs"))
        #expect(i.original == "RUN apt-get update && apt-get install -y   bzr   cvs")
        #expect(i.line == 2)

        // The reference: "RUN echo hello \ / # comment / world" is "RUN echo hello world".
        let c = try one("RUN echo hello \\\n# comment\nworld\n")
        #expect(c.arguments == .shell("echo hello world"))

        // Empty and blank lines inside a continuation are skipped (BuildKit warns, accepts).
        let e = try body("RUN apk add \\\n\n    gnupg \\\n   \n    curl\nRUN next\n")
        #expect(e.map(\.arguments) == [.shell("apk add     gnupg     curl"), .shell("next")])
        #expect(e.map(\.line) == [2, 7])

        // An escaped escape at the end of a line is not a continuation.
        let d = try body("RUN echo a\\\\\nRUN b\n")
        #expect(d.map(\.arguments) == [.shell("echo a\\\\"), .shell("b")])

        // Blanks after the continuation character still continue the line.
        #expect(try one("RUN a \\  \t\nb\n").arguments == .shell("a b"))
    }

    @Test func commentsAndBlankLinesAreSkipped() throws {
        let f = try Dockerfile.parse("""
            # leading comment
              # indented comment

            FROM busybox
            \t# tab-indented comment
            RUN echo hi # not a comment: passed to the shell
            """)
        #expect(f.stages[0].from.line == 4)
        #expect(f.stages[0].instructions.map(\.arguments) == [.shell("echo hi # not a comment: passed to the shell")])
    }

    @Test func escapeDirectiveChangesContinuationAndEscape() throws {
        // The reference's Windows example.
        let f = try Dockerfile.parse("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n")
        #expect(f.escape == "`")
        #expect(f.stages[0].instructions.map(\.arguments) == [.words(["testfile.txt", "c:\\"]), .shell("dir c:\\")])
        let g = try Dockerfile.parse("# escape=`\nFROM a\nRUN echo a `\n  b\nENV X=a`\"b\n")
        #expect(g.stages[0].instructions[0].arguments == .shell("echo a   b"))
        #expect(g.stages[0].instructions[1].arguments == .keyValues([KeyValue(key: "X", value: "a`\"b")]))
    }

    @Test func directivesOnlyAtTheTop() throws {
        let f = try Dockerfile.parse("# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n# check=skip=all\nFROM a\n")
        #expect(f.syntax == "docker/dockerfile:1.7")
        #expect(f.escape == "`")
        // After a comment, a blank line or an instruction, "directives" are comments.
        #expect(try Dockerfile.parse("# About my dockerfile\n# escape=`\nFROM a\n").escape == "\\")
        #expect(try Dockerfile.parse("\n# escape=`\nFROM a\n").escape == "\\")
        #expect(try Dockerfile.parse("FROM a\n# escape=`\n").escape == "\\")
        #expect(try Dockerfile.parse("# unknowndirective=value\n# escape=`\nFROM a\n").escape == "\\")
        #expect(try Dockerfile.parse("# direc \\\n# tive=value\n# escape=`\nFROM a\n").escape == "\\")
        #expect(try Dockerfile.parse("FROM a\n# syntax=x\n").syntax == nil)
        // Repeated or invalid directives are errors with the line.
        #expect(failure("# escape=\\\n# escape=`\nFROM a\n").hasPrefix("Dockerfile line 2: the escape parser directive is given twice"))
        #expect(failure("# escape=x\nFROM a\n").hasPrefix("Dockerfile line 1: invalid escape character \"x\""))
    }

    @Test func lineEndingsAndByteOrderMark() throws {
        let f = try Dockerfile.parse("\u{FEFF}FROM a\r\nRUN echo hi \\\r\n  there\r\nCMD x\r\n")
        #expect(f.stages[0].instructions.map(\.arguments) == [.shell("echo hi   there"), .shell("x")])
        #expect(try Dockerfile.parse("FROM a\nRUN b").stages[0].instructions[0].arguments == .shell("b"))
        #expect(try Dockerfile.parse("\u{FEFF}# escape=`\nFROM a\n").escape == "`")
    }

    // MARK: Exec and shell forms

    @Test func execFormAndInvalidJSONFallsBackToShell() throws {
        #expect(try one(#"ENTRYPOINT ["/usr/sbin/apache2ctl", "-D", "FOREGROUND"]"#).arguments
                == .exec(["/usr/sbin/apache2ctl", "-D", "FOREGROUND"]))
        // No expansion in the exec form.
        #expect(try one(#"CMD [ "echo", "$HOME" ]"#).arguments == .exec(["echo", "$HOME"]))
        #expect(try one(#"RUN ["c:\\windows\\system32\\tasklist.exe"]"#).arguments == .exec(["c:\\windows\\system32\\tasklist.exe"]))
        // The reference: single backslashes are invalid JSON, so this is the shell form.
        #expect(try one(#"RUN ["c:\windows\system32\tasklist.exe"]"#).arguments == .shell(#"["c:\windows\system32\tasklist.exe"]"#))
        #expect(try one("CMD ['single', 'quotes']").arguments == .shell("['single', 'quotes']"))
        #expect(try one(#"CMD ["unterminated""#).arguments == .shell(#"["unterminated""#))
        #expect(try one("CMD []").arguments == .exec([]))
        #expect(try one("CMD echo \"$HOME\"").arguments == .shell("echo \"$HOME\""))
        #expect(try one("RUN [ \"a\" , \"b\" ]   ").arguments == .exec(["a", "b"]))
        // Docker's decoder reads the first JSON value and ignores what follows (buildah agrees).
        #expect(try one(#"CMD ["a"] trailing"#).arguments == .exec(["a"]))
        #expect(try one(#"CMD ["\u00e9\n"]"#).arguments == .exec(["é\n"]))
        #expect(failure("FROM a\nCMD [\"a\", 1]\n").hasPrefix("Dockerfile line 2: CMD in JSON (exec) form takes only strings"))
        #expect(failure("FROM a\nRUN [true]\n").hasPrefix("Dockerfile line 2: RUN in JSON (exec) form takes only strings"))
        // CMD/ENTRYPOINT without arguments are accepted (they reset), RUN is not.
        #expect(try one("CMD").arguments == .shell(""))
        #expect(failure("FROM a\nRUN\n") == "Dockerfile line 2: RUN needs a command, e.g. RUN echo hello")
    }

    @Test func shellNeedsJSON() throws {
        #expect(try one(#"SHELL ["powershell", "-command"]"#).arguments == .exec(["powershell", "-command"]))
        #expect(failure("FROM a\nSHELL /bin/sh -c\n").hasPrefix("Dockerfile line 2: SHELL takes a JSON array"))
        #expect(failure("FROM a\nSHELL []\n").hasPrefix("Dockerfile line 2: SHELL needs at least one element"))
    }

    // MARK: Instructions

    @Test func fromStagesAndMetaArgs() throws {
        let f = try Dockerfile.parse("""
            ARG  CODE_VERSION=latest
            ARG user1 buildno=1
            FROM base:${CODE_VERSION}
            CMD  /code/run-app

            FROM --platform=linux/amd64 extras:${CODE_VERSION} AS Builder
            RUN make
            from busybox as b2
            """)
        #expect(f.metaArgs.map(\.arguments) == [
            .keyValues([KeyValue(key: "CODE_VERSION", value: "latest")]),
            .keyValues([KeyValue(key: "user1", value: nil), KeyValue(key: "buildno", value: "1")]),
        ])
        #expect(f.stages.map(\.index) == [0, 1, 2])
        #expect(f.stages.map(\.name) == [nil, "builder", "b2"])
        #expect(f.stages.map(\.from.arguments) == [.words(["base:${CODE_VERSION}"]), .words(["extras:${CODE_VERSION}"]), .words(["busybox"])])
        #expect(f.stages[1].from.flags == [Flag(name: "platform", value: "linux/amd64")])
        #expect(f.stages[1].from.original == "FROM --platform=linux/amd64 extras:${CODE_VERSION} AS Builder")
        #expect(f.stages.map { $0.from.line } == [3, 6, 8])
        #expect(f.stages.map(\.instructions.count) == [1, 1, 0])
        #expect(f.stage(named: "BUILDER")?.index == 1)
        #expect(f.stage(named: "0")?.index == 0)
        #expect(f.stage(named: "nope") == nil)
        #expect(f.stepCount == 7)  // 2 meta ARGs + 3 FROMs + 2 instructions, as Docker counts

        #expect(failure("FROM a b\n").hasPrefix("Dockerfile line 1: FROM takes an image and an optional AS name"))
        #expect(failure("FROM\n").hasPrefix("Dockerfile line 1: FROM takes an image"))
        #expect(failure("FROM a AS 1st\n").hasPrefix("Dockerfile line 1: invalid stage name \"1st\""))
        #expect(failure("FROM a AS x\nFROM b AS X\n").hasPrefix("Dockerfile line 2: the stage name \"x\" is already used on line 1"))
    }

    @Test func envLabelAndArgKeepValuesRaw() throws {
        let env = try body("""
            ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\
                MY_CAT=fluffy
            ENV MY_VAR my-value with   spaces
            ENV EMPTY="" Q='a b'
            """)
        #expect(env.map(\.arguments) == [
            .keyValues([KeyValue(key: "MY_NAME", value: "\"John Doe\""), KeyValue(key: "MY_DOG", value: "Rex\\ The\\ Dog"),
                        KeyValue(key: "MY_CAT", value: "fluffy")]),
            .keyValues([KeyValue(key: "MY_VAR", value: "my-value with   spaces")]),
            .keyValues([KeyValue(key: "EMPTY", value: "\"\""), KeyValue(key: "Q", value: "'a b'")]),
        ])
        let labels = try body("""
            LABEL "com.example.vendor"="ACME Incorporated"
            LABEL com.example.label-with-value="foo"
            LABEL description="This text illustrates \\
            that label-values can span multiple lines."
            LABEL multi.label1="value1" multi.label2="value2" other="value3"
            """)
        #expect(labels.map(\.arguments) == [
            .keyValues([KeyValue(key: "\"com.example.vendor\"", value: "\"ACME Incorporated\"")]),
            .keyValues([KeyValue(key: "com.example.label-with-value", value: "\"foo\"")]),
            .keyValues([KeyValue(key: "description", value: "\"This text illustrates that label-values can span multiple lines.\"")]),
            .keyValues([KeyValue(key: "multi.label1", value: "\"value1\""), KeyValue(key: "multi.label2", value: "\"value2\""),
                        KeyValue(key: "other", value: "\"value3\"")]),
        ])
        #expect(try one("ARG a=\"x y\" b").arguments == .keyValues([KeyValue(key: "a", value: "\"x y\""), KeyValue(key: "b", value: nil)]))
        #expect(failure("FROM a\nENV ONLY\n").hasPrefix("Dockerfile line 2: ENV ONLY has no value"))
        #expect(failure("FROM a\nENV A=1 B\n").hasPrefix("Dockerfile line 2: ENV: \"B\" has no ="))
        #expect(failure("FROM a\nLABEL =x\n").hasPrefix("Dockerfile line 2: LABEL: \"=x\" has an empty name"))
        #expect(failure("FROM a\nENV\n").hasPrefix("Dockerfile line 2: ENV needs at least one KEY=value"))
        #expect(failure("FROM a\nARG\n").hasPrefix("Dockerfile line 2: ARG needs a name"))
    }

    @Test func copyAddFlagsAndForms() throws {
        let c = try body("""
            COPY --chown=55:mygroup files* /somedir/
            COPY --chmod=644 hom?.txt /mydir/
            COPY --from=build --link /app /app
            COPY --link=false --parents ./x/ /y/
            COPY ["a b.txt", "/dst dir/"]
            COPY "--chown=a b" c d
            ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /
            ADD --keep-git-dir=true --exclude=*.md --exclude=*.txt src/ /dst/
            """)
        #expect(c.map(\.flags) == [
            [Flag(name: "chown", value: "55:mygroup")],
            [Flag(name: "chmod", value: "644")],
            [Flag(name: "from", value: "build"), Flag(name: "link")],
            [Flag(name: "link", value: "false"), Flag(name: "parents")],
            [],
            [],
            [Flag(name: "checksum", value: "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d")],
            [Flag(name: "keep-git-dir", value: "true"), Flag(name: "exclude", value: "*.md"), Flag(name: "exclude", value: "*.txt")],
        ])
        #expect(c.map(\.arguments) == [
            .words(["files*", "/somedir/"]), .words(["hom?.txt", "/mydir/"]), .words(["/app", "/app"]),
            .words(["./x/", "/y/"]), .exec(["a b.txt", "/dst dir/"]), .words(["\"--chown=a", "b\"", "c", "d"]),
            .words(["https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz", "/"]),
            .words(["src/", "/dst/"]),
        ])
        #expect(c[2].flag("from") == "build" && c[2].isFlagSet("link") && !c[3].isFlagSet("link") && c[3].isFlagSet("parents"))
        #expect(c[7].flagValues("exclude") == ["*.md", "*.txt"])
        // Quotes in flag values are removed, as Docker does; "--" ends the flags.
        #expect(try one("COPY --chown=\"a b\" -- --x /y").flags == [Flag(name: "chown", value: "a b")])
        #expect(try one("COPY --chown=\"a b\" -- --x /y").arguments == .words(["--x", "/y"]))

        #expect(failure("FROM a\nCOPY onlyone\n").hasPrefix("Dockerfile line 2: COPY needs at least one source and a destination"))
        #expect(failure("FROM a\nADD [\"x\"]\n").hasPrefix("Dockerfile line 2: ADD needs at least one source and a destination"))
        #expect(failure("FROM a\nCOPY --from build a b\n") == "Dockerfile line 2: --from needs a value, e.g. --from=build")
        #expect(failure("FROM a\nADD --from=b a b\n").hasPrefix("Dockerfile line 2: ADD does not take the flag --from; it takes --checksum, --chmod, --chown"))
        #expect(failure("FROM a\nRUN --chown=1 ls\n").hasPrefix("Dockerfile line 2: RUN does not take the flag --chown; it takes --mount, --network, --security"))
        #expect(failure("FROM a\nENV --x=1 A=b\n") == "Dockerfile line 2: ENV takes no flags; remove --x")
        #expect(failure("FROM a\nCOPY --link=maybe a b\n") == "Dockerfile line 2: --link takes true or false, not \"maybe\"")
        #expect(failure("FROM a\nCOPY --from=a --from=b a b\n") == "Dockerfile line 2: --from is given twice; keep one")
        #expect(failure("FROM --foo=x a\n").hasPrefix("Dockerfile line 1: FROM does not take the flag --foo"))
    }

    @Test func runFlags() throws {
        let r = try one("RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/tmp --network=none make")
        #expect(r.flags == [Flag(name: "mount", value: "type=cache,target=/root/.cache"), Flag(name: "mount", value: "type=tmpfs,target=/tmp"),
                            Flag(name: "network", value: "none")])
        #expect(r.arguments == .shell("make"))
        #expect(try one("RUN --network=host [\"a\"]").arguments == .exec(["a"]))
    }

    @Test func otherInstructions() throws {
        let all = try body("""
            EXPOSE 80/udp 80/tcp
            VOLUME ["/data"]
            VOLUME /var/log /var/db
            USER patrick
            USER 1000:1000
            WORKDIR /path/to/work dir
            STOPSIGNAL SIGKILL
            MAINTAINER Jane Doe <jane@example.com>
            HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1
            HEALTHCHECK --start-period=1m30s --retries=3 CMD ["/bin/check", "--fast"]
            HEALTHCHECK NONE
            ONBUILD ADD . /app/src
            ONBUILD RUN --network=none /usr/local/bin/python-build --dir /app/src
            """)
        #expect(all.map(\.keyword) == ["EXPOSE", "VOLUME", "VOLUME", "USER", "USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER",
                                       "HEALTHCHECK", "HEALTHCHECK", "HEALTHCHECK", "ONBUILD", "ONBUILD"])
        #expect(Array(all.map(\.arguments).prefix(11)) == [
            .words(["80/udp", "80/tcp"]), .exec(["/data"]), .words(["/var/log", "/var/db"]), .words(["patrick"]),
            .words(["1000:1000"]), .words(["/path/to/work dir"]), .words(["SIGKILL"]), .words(["Jane Doe <jane@example.com>"]),
            .shell("curl -f http://localhost/ || exit 1"), .exec(["/bin/check", "--fast"]), .words(["NONE"]),
        ])
        #expect(all[8].flags == [Flag(name: "interval", value: "5m"), Flag(name: "timeout", value: "3s")])
        #expect(all[11].arguments == .onbuild(Instruction(keyword: "ADD", arguments: .words([".", "/app/src"]),
                                                          original: "ADD . /app/src", line: 13)))
        #expect(all[12].arguments == .onbuild(Instruction(
            keyword: "RUN", flags: [Flag(name: "network", value: "none")],
            arguments: .shell("/usr/local/bin/python-build --dir /app/src"),
            original: "RUN --network=none /usr/local/bin/python-build --dir /app/src", line: 14)))
        #expect(all[12].original == "ONBUILD RUN --network=none /usr/local/bin/python-build --dir /app/src")

        #expect(failure("FROM a\nHEALTHCHECK CMD\n").hasPrefix("Dockerfile line 2: HEALTHCHECK CMD needs a command"))
        #expect(failure("FROM a\nHEALTHCHECK\n").hasPrefix("Dockerfile line 2: HEALTHCHECK needs CMD <command> or NONE"))
        #expect(failure("FROM a\nHEALTHCHECK RUN x\n").hasPrefix("Dockerfile line 2: unknown HEALTHCHECK type \"RUN\""))
        #expect(failure("FROM a\nHEALTHCHECK NONE x\n") == "Dockerfile line 2: HEALTHCHECK NONE takes no arguments")
        #expect(failure("FROM a\nHEALTHCHECK --interval=5 CMD x\n").hasPrefix("Dockerfile line 2: --interval=5 is not a duration"))
        #expect(failure("FROM a\nHEALTHCHECK --timeout=0s CMD x\n") == "Dockerfile line 2: --timeout cannot be less than 1ms")
        #expect(failure("FROM a\nHEALTHCHECK --retries=0 CMD x\n").hasPrefix("Dockerfile line 2: --retries must be a whole number of at least 1"))
        #expect(failure("FROM a\nEXPOSE\n").hasPrefix("Dockerfile line 2: EXPOSE needs at least one port"))
        #expect(failure("FROM a\nVOLUME [\"\"]\n").hasPrefix("Dockerfile line 2: VOLUME has an empty path"))
        #expect(failure("FROM a\nWORKDIR\n") == "Dockerfile line 2: WORKDIR needs exactly one argument, e.g. WORKDIR /app")
        #expect(failure("FROM a\nONBUILD ONBUILD RUN x\n").hasPrefix("Dockerfile line 2: ONBUILD ONBUILD is not allowed"))
        #expect(failure("FROM a\nONBUILD FROM x\n") == "Dockerfile line 2: FROM is not allowed as an ONBUILD trigger")
        #expect(failure("FROM a\nONBUILD\n").hasPrefix("Dockerfile line 2: ONBUILD needs an instruction"))
        #expect(failure("FROM a\nONBUILD RUN --from=x y\n").hasPrefix("Dockerfile line 2: RUN does not take the flag --from"))
    }

    @Test func keywordsAreCaseInsensitive() throws {
        let f = try Dockerfile.parse("from busybox\nrun echo hi\nCopy a b\n")
        #expect(f.stages[0].instructions.map(\.keyword) == ["RUN", "COPY"])
        #expect(f.stages[0].instructions[0].original == "run echo hi")
    }

    // MARK: Heredocs

    @Test func heredocs() throws {
        let all = try body("""
            RUN <<EOF
            apt-get update
            apt-get install -y curl
            EOF
            RUN <<EOT bash
              set -ex
              apt-get install -y vim
            EOT
            RUN python3 <<EOF
            with open("/hello", "w") as f:
                print("Hello", file=f)
            EOF
            COPY <<EOF greeting.txt
            hello world
            EOF
            RUN <<FILE1 cat > file1 && <<FILE2 cat > file2
            I am
            first
            FILE1
            I am
            second
            FILE2
            RUN <<-EOT
            \techo tabs
            \t\tnested
            \tEOT
            COPY <<"EOF" <<'E F' /dst/
            $NOT_EXPANDED
            EOF
            E F
            RUN cat <<EMPTY
            EMPTY
            ONBUILD RUN <<EOF
            echo triggered
            EOF
            RUN echo "<<EOF" done
            RUN ["sh", "-c", "cat <<EOF"]
            CMD done
            """)
        #expect(all.map(\.keyword) == ["RUN", "RUN", "RUN", "COPY", "RUN", "RUN", "COPY", "RUN", "ONBUILD", "RUN", "RUN", "CMD"])
        #expect(all.map(\.line) == [2, 6, 10, 14, 17, 24, 28, 32, 34, 37, 38, 39])
        #expect(all[0].arguments == .shell("<<EOF"))
        #expect(all[0].heredocs == [Heredoc(name: "EOF", content: "apt-get update\napt-get install -y curl\n")])
        #expect(all[1].arguments == .shell("<<EOT bash"))
        #expect(all[1].heredocs == [Heredoc(name: "EOT", content: "  set -ex\n  apt-get install -y vim\n")])
        #expect(all[2].heredocs[0].content == "with open(\"/hello\", \"w\") as f:\n    print(\"Hello\", file=f)\n")
        #expect(all[3].arguments == .words(["<<EOF", "greeting.txt"]))
        #expect(all[3].heredocs == [Heredoc(name: "EOF", content: "hello world\n")])
        #expect(all[3].heredoc(forWord: "<<EOF")?.content == "hello world\n")
        #expect(all[3].heredoc(forWord: "greeting.txt") == nil)
        #expect(all[4].heredocs == [Heredoc(name: "FILE1", content: "I am\nfirst\n"), Heredoc(name: "FILE2", content: "I am\nsecond\n")])
        #expect(all[5].heredocs == [Heredoc(name: "EOT", content: "echo tabs\nnested\n", expand: true, chomp: true)])
        #expect(all[6].heredocs == [Heredoc(name: "EOF", content: "$NOT_EXPANDED\n", expand: false),
                                    Heredoc(name: "E F", content: "", expand: false)])
        #expect(all[7].heredocs == [Heredoc(name: "EMPTY", content: "")])
        guard case .onbuild(let trigger) = all[8].arguments else { Issue.record("not onbuild"); return }
        #expect(trigger.heredocs == [Heredoc(name: "EOF", content: "echo triggered\n")])
        #expect(all[9].heredocs.isEmpty && all[9].arguments == .shell("echo \"<<EOF\" done"))
        #expect(all[10].heredocs.isEmpty)

        // Partly quoted delimiters are not expanded; the name loses its quotes.
        #expect(try one("RUN <<E\"O\"F\nx\nEOF").heredocs == [Heredoc(name: "EOF", content: "x\n", expand: false)])
        #expect(failure("FROM a\nRUN <<EOF\necho never ends\n")
                == "Dockerfile line 2: unterminated heredoc <<EOF: end its body with a line containing only EOF")
        #expect(failure("FROM a\nCOPY <<A <<B /x\nbody\nA\n").hasPrefix("Dockerfile line 2: unterminated heredoc <<B"))
        #expect(failure("FROM a\nCOPY x <<EOF\nEOF\n").hasPrefix("Dockerfile line 2: COPY cannot take a heredoc as its destination"))
        #expect(Heredoc.marker("<<-'X'")! == ("X", false, true))
        #expect(Heredoc.marker("2<<X")! == ("X", true, false))
        #expect(Heredoc.marker("<<") == nil && Heredoc.marker("<<<X") == nil && Heredoc.marker("a<<X") == nil)
    }

    // MARK: Errors

    @Test func errorsNameTheLineAndTheFix() throws {
        #expect(failure("FROM a\n\nFORM b\n").hasPrefix("Dockerfile line 3: unknown instruction \"FORM\" (did you mean FROM?)"))
        #expect(failure("FROM a\nCOPPY a b\n").hasPrefix("Dockerfile line 2: unknown instruction \"COPPY\" (did you mean COPY?)"))
        #expect(failure("FROM a\nfoo\n").hasPrefix("Dockerfile line 2: unknown instruction \"foo\"; instructions are ADD, ARG"))
        #expect(failure("").hasPrefix("Dockerfile line 1: the Dockerfile has no instructions"))
        #expect(failure("# just a comment\n\n").hasPrefix("Dockerfile line 2: the Dockerfile has no instructions"))
        #expect(failure("ARG A=1\nARG B\n").hasPrefix("Dockerfile line 2: no FROM instruction: add FROM <image>"))
        #expect(failure("ARG A\nRUN echo\nFROM a\n").hasPrefix("Dockerfile line 2: RUN comes before the first FROM"))
    }

    /// A continuation that runs into the end of the file (even through blank lines and
    /// comments) ends the instruction there, as docker and buildah do.
    @Test func continuationAtTheEndOfTheFileEndsTheInstruction() throws {
        for (text, last) in [("FROM a\nRUN echo \\\n", "RUN echo"), ("FROM a\nRUN echo \\", "RUN echo"),
                             ("FROM a\nRUN echo \\\n  more \\\n\n\n", "RUN echo   more"),
                             ("FROM a\nRUN echo \\\n# comment\n", "RUN echo"), ("FROM a\nLABEL a=b\n\\\n", "LABEL a=b")] {
            let file = try Dockerfile.parse(text)
            #expect(file.stages.last?.instructions.last?.original == last, "\(text.debugDescription)")
        }
    }

    // MARK: A real-world file

    /// The Go template `docker init` writes: multi-stage, RUN mounts over continuations,
    /// ARGs in and before stages, quoted words in shell form, exec form with spaces.
    @Test func dockerInitGoTemplate() throws {
        let f = try Dockerfile.parse("""
            # syntax=docker/dockerfile:1

            ARG GO_VERSION=1.22
            FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
            WORKDIR /src

            # Download dependencies as a separate step to take advantage of Docker's caching.
            RUN --mount=type=cache,target=/go/pkg/mod/ \\
                --mount=type=bind,source=go.sum,target=go.sum \\
                --mount=type=bind,source=go.mod,target=go.mod \\
                go mod download -x

            ARG TARGETARCH
            RUN --mount=type=cache,target=/go/pkg/mod/ \\
                --mount=type=bind,target=. \\
                CGO_ENABLED=0 GOARCH=$TARGETARCH go build -o /bin/server .

            FROM alpine:latest AS final
            RUN --mount=type=cache,target=/var/cache/apk \\
                apk --update add \\
                    ca-certificates \\
                    tzdata \\
                    && \\
                    update-ca-certificates
            ARG UID=10001
            RUN adduser \\
                --disabled-password \\
                --gecos "" \\
                --uid "${UID}" \\
                appuser
            USER appuser
            COPY --from=build /bin/server /bin/
            EXPOSE 8080
            ENTRYPOINT [ "/bin/server" ]
            """)
        #expect(f.syntax == "docker/dockerfile:1")
        #expect(f.metaArgs == [Instruction(keyword: "ARG", arguments: .keyValues([KeyValue(key: "GO_VERSION", value: "1.22")]),
                                           original: "ARG GO_VERSION=1.22", line: 3)])
        #expect(f.stages.map(\.name) == ["build", "final"])
        #expect(f.stages[0].from == Instruction(keyword: "FROM", flags: [Flag(name: "platform", value: "$BUILDPLATFORM")],
                                                 arguments: .words(["golang:${GO_VERSION}"]),
                                                 original: "FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build", line: 4))
        let build = f.stages[0].instructions
        #expect(build.map(\.keyword) == ["WORKDIR", "RUN", "ARG", "RUN"])
        #expect(build.map(\.line) == [5, 8, 13, 14])
        #expect(build[1].flags == [Flag(name: "mount", value: "type=cache,target=/go/pkg/mod/"),
                                   Flag(name: "mount", value: "type=bind,source=go.sum,target=go.sum"),
                                   Flag(name: "mount", value: "type=bind,source=go.mod,target=go.mod")])
        #expect(build[1].arguments == .shell("go mod download -x"))
        #expect(build[1].original == ["RUN --mount=type=cache,target=/go/pkg/mod/ ", "    --mount=type=bind,source=go.sum,target=go.sum ",
                                      "    --mount=type=bind,source=go.mod,target=go.mod ", "    go mod download -x"].joined())
        #expect(build[2].arguments == .keyValues([KeyValue(key: "TARGETARCH", value: nil)]))
        #expect(build[3].arguments == .shell("CGO_ENABLED=0 GOARCH=$TARGETARCH go build -o /bin/server ."))
        let final = f.stages[1].instructions
        #expect(final.map(\.keyword) == ["RUN", "ARG", "RUN", "USER", "COPY", "EXPOSE", "ENTRYPOINT"])
        #expect(final[0].flags == [Flag(name: "mount", value: "type=cache,target=/var/cache/apk")])
        #expect(final[0].arguments == .shell(["apk --update add ", "        ca-certificates ", "        tzdata ",
                                              "        && ", "        update-ca-certificates"].joined()))
        #expect(final[2].arguments == .shell(["adduser ", "    --disabled-password ", "    --gecos \"\" ",
                                              "    --uid \"${UID}\" ", "    appuser"].joined()))
        #expect(final[3].arguments == .words(["appuser"]))
        #expect(final[4].flags == [Flag(name: "from", value: "build")] && final[4].arguments == .words(["/bin/server", "/bin/"]))
        #expect(final[5].arguments == .words(["8080"]))
        #expect(final[6].arguments == .exec(["/bin/server"]))
        #expect(f.stepCount == 14)  // 1 meta ARG + 2 FROMs + 4 + 7
    }

    // MARK: Codable

    @Test func jsonRoundTrip() throws {
        let f = try Dockerfile.parse("# syntax=x\nARG A\nFROM a AS b\nCOPY <<EOF --x /y\nhi\nEOF\nONBUILD RUN [\"a\"]\nENV K=V\n".replacingOccurrences(of: "--x ", with: ""))
        let data = try JSONEncoder().encode(f)
        #expect(try JSONDecoder().decode(Dockerfile.self, from: data) == f)
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let stage = (json?["stages"] as? [[String: Any]])?.first
        let copy = (stage?["instructions"] as? [[String: Any]])?.first
        #expect((copy?["arguments"] as? [String: Any])?["form"] as? String == "words")
    }
}
