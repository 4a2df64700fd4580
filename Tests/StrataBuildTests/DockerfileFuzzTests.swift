import Foundation
import Testing
import OCI
@testable import StrataBuild
import TestSupport

/// Property tests: random and mutated inputs never crash the parser, the lexer or the
/// `.dockerignore` matcher, and every failure is a one-line `StrataError` naming a real line.
@Suite struct DockerfileFuzzTests {
    static let fragments: [String] = [
        "FROM ", "FROM scratch", "from", "RUN ", "COPY ", "ADD ", "ENV ", "ARG ", "LABEL ", "CMD ", "ENTRYPOINT ",
        "HEALTHCHECK ", "ONBUILD ", "SHELL ", "WORKDIR ", "USER ", "EXPOSE ", "VOLUME ", "STOPSIGNAL ", "MAINTAINER ",
        "NONE", " CMD ", "AS ", " as ", "x", "busybox", "/dst/", "a=b", "K=\"v w\"", "=", "==", "\n", "\n", "\n", "\r\n",
        "\r", " ", "  ", "\t", "\\", "\\\n", "`", "`\n", "#", "# escape=`\n", "# escape=\\\n", "# syntax=x\n", "#check=a\n",
        "[", "]", "[\"a\"]", "[\"a\", 1]", "[[[[", "{", "}", "\"", "'", "--", "--from=", "--link", "--chown=1", "--mount=x",
        "--interval=1s", "--retries=", "<<", "<<EOF", "<<-EOF", "<<\"EOF\"", "<<'E F'", "EOF", "\tEOF", "$", "${", "${A:-",
        "$A", "${A:+b}", "${A?}", "é", "e\u{301}", "\u{0}", "\u{FEFF}", "🧱", "\u{202E}", "\u{0B}", "\u{0C}", "0", "99999999999",
    ]

    static let corpus = """
        # syntax=docker/dockerfile:1
        # escape=\\
        ARG BASE=busybox
        FROM --platform=$BUILDPLATFORM ${BASE} AS build
        ENV A=1 B="x y" \\
            # comment inside
            C='z'
        RUN --mount=type=cache,target=/c echo "$A" && \\

            echo done
        COPY --from=build --chown=1:1 --link ["a b", "/dst/"]
        COPY <<EOF <<-"X" /etc/
        hello $A
        EOF
        \tquoted
        \tX
        HEALTHCHECK --interval=5s --retries=3 CMD ["true"]
        ONBUILD RUN <<EOF
        trigger
        EOF
        LABEL "a b"="c d" e=f
        EXPOSE 80 443/udp
        FROM scratch
        CMD ["/app"]
        """

    static func check(_ text: String) {
        let lineCount = max(text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).count, 1)
        do {
            let file = try Dockerfile.parse(text)
            #expect(!file.stages.isEmpty)
            for s in file.stages {
                for i in [s.from] + s.instructions { #expect((1...lineCount).contains(i.line), "line \(i.line) of \(lineCount)") }
            }
            if let data = try? JSONEncoder().encode(file) {
                #expect((try? JSONDecoder().decode(Dockerfile.self, from: data)) == file)
            }
        } catch let e as StrataError {
            #expect(e.code == .dockerfileSyntax)
            #expect(e.message.hasPrefix("Dockerfile line "), "\(e.message)")
            #expect(!e.message.contains("\n"), "\(e.message)")
            let n = e.message.dropFirst("Dockerfile line ".count).prefix { $0.isNumber }
            #expect(Int(n).map { (1...lineCount).contains($0) } == true, "\(e.message) for \(lineCount) lines")
        } catch {
            Issue.record("not a StrataError: \(error)")
        }
    }

    @Test func randomFragmentSoupNeverCrashes() {
        var rng = SplitMix(seed: 1)
        for _ in 0..<4000 {
            var text = ""
            for _ in 0..<Int(rng.next() % 40) { text += Self.fragments[Int(rng.next() % UInt64(Self.fragments.count))] }
            Self.check(text)
        }
    }

    @Test func mutatedCorpusNeverCrashes() {
        var rng = SplitMix(seed: 2)
        let base = Array(Self.corpus.unicodeScalars)
        Self.check(Self.corpus)
        for _ in 0..<3000 {
            var s = base
            for _ in 0...Int(rng.next() % 4) {
                let at = Int(rng.next() % UInt64(s.count + 1))
                switch rng.next() % 5 {
                case 0:  // delete a run
                    let n = min(Int(rng.next() % 12), s.count - at)
                    s.removeSubrange(at..<(at + n))
                case 1:  // insert a fragment
                    s.insert(contentsOf: Self.fragments[Int(rng.next() % UInt64(Self.fragments.count))].unicodeScalars, at: at)
                case 2:  // duplicate a run
                    let n = min(Int(rng.next() % 30), s.count - at)
                    s.insert(contentsOf: Array(s[at..<(at + n)]), at: at)
                case 3:  // truncate
                    s.removeSubrange(at...)
                default:  // replace one scalar
                    if at < s.count { s[at] = Unicode.Scalar(UInt8(rng.next() % 128)) }
                }
            }
            Self.check(String(String.UnicodeScalarView(s)))
        }
    }

    /// Deep nesting is refused, not recursed into until the stack runs out.
    @Test func deepNestingIsAnErrorNotACrash() throws {
        #expect(failure("FROM a\n" + String(repeating: "ONBUILD ", count: 100_000) + "RUN x\n")
                .hasPrefix("Dockerfile line 2: ONBUILD ONBUILD is not allowed"))
        #expect(failure("FROM a\nCMD " + String(repeating: "[", count: 100_000) + "\n") == "")
        let deep = String(repeating: "${A:-", count: 100_000) + String(repeating: "}", count: 100_000)
        #expect(throws: StrataError.self) { try ShellLexer().expand(deep, env: [:]) }
        #expect(throws: StrataError.self) { try ShellLexer().expand("\"" + deep + "\"", env: [:]) }
        #expect(throws: StrataError.self) { try ShellLexer().expandHeredoc(deep, env: [:]) }
        let fine = String(repeating: "${A:-", count: 60) + "x" + String(repeating: "}", count: 60)
        #expect(try ShellLexer().expand(fine, env: [:]) == "x")
        let patterns = "${A#" + String(repeating: "${A#", count: 100_000)
        #expect(throws: StrataError.self) { try ShellLexer().expand(patterns, env: ["A": "a"]) }
        Self.check(String(repeating: "RUN <<EOF\n", count: 2000))
        Self.check("FROM a\nRUN " + String(repeating: "<<A ", count: 5000) + "\n" + String(repeating: "A\n", count: 5000))
    }

    func failure(_ text: String) -> String {
        do { _ = try Dockerfile.parse(text); return "" } catch let e as StrataError { return e.message } catch { return "\(error)" }
    }

    @Test func lexerNeverCrashes() {
        var rng = SplitMix(seed: 3)
        let pieces = ["$", "{", "}", ":", "-", "+", "?", "\"", "'", "\\", "`", "A", "B", " ", "\n", "${A", "${A:-", "$1", "$@", "é", "}}"]
        let env = ["A": "a", "B": ""]
        for escape in ["\\", "`"] {
            let lexer = ShellLexer(escape: escape)
            for _ in 0..<3000 {
                let word = (0..<Int(rng.next() % 16)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
                for f in [{ try lexer.expand(word, env: env) }, { try lexer.expandHeredoc(word, env: env) },
                          { try lexer.expandWords(word, env: env).joined() }] {
                    do { _ = try f() } catch let e as StrataError {
                        #expect(e.code == .dockerfileSyntax || e.code == .invalidArgument)
                    } catch { Issue.record("not a StrataError: \(error)") }
                }
            }
        }
    }

    @Test func dockerIgnoreNeverCrashes() {
        var rng = SplitMix(seed: 4)
        let pieces = ["*", "**", "?", "[", "]", "^", "-", "\\", "/", "!", "a", "b", ".", "..", "#", " ", "\n", "é", "[a-", "z]"]
        for _ in 0..<3000 {
            let text = (0..<Int(rng.next() % 20)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            let path = (0..<Int(rng.next() % 10)).map { _ in ["a", "b", "/", ".", "..", "é", "*", "["][Int(rng.next() % 8)] }.joined()
            do {
                let ignore = try DockerIgnore(text)
                _ = ignore.isExcluded(path)
            } catch let e as StrataError {
                #expect(e.code == .dockerfileSyntax && e.message.hasPrefix(".dockerignore line "))
            } catch { Issue.record("not a StrataError: \(error)") }
        }
        // Long inputs stay linear: no backtracking blow-up.
        let ignore = try? DockerIgnore(String(repeating: "*a", count: 200) + "b")
        #expect(ignore?.isExcluded(String(repeating: "a", count: 5000)) == false)
    }
}
