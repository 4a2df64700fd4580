import Foundation
import Testing
import OCI
@testable import StrataBuild
import TestSupport

@Suite struct ShellLexerTests {
    let lexer = ShellLexer()
    let env = ["FOO": "/bar", "EMPTY": "", "SP": "a  b", "X": "x"]

    func expand(_ word: String) throws -> String { try lexer.expand(word, env: env) }

    /// The "Environment replacement" section of the Dockerfile reference.
    @Test func documentedExpansions() throws {
        #expect(try expand("${FOO}") == "/bar")
        #expect(try expand("$FOO") == "/bar")
        #expect(try expand("\\$FOO") == "$FOO")
        #expect(try expand("\\${FOO}") == "${FOO}")
        #expect(try expand("${FOO:-word}") == "/bar")
        #expect(try expand("${NOPE:-word}") == "word")
        #expect(try expand("${EMPTY:-word}") == "word")
        #expect(try expand("${FOO:+word}") == "word")
        #expect(try expand("${NOPE:+word}") == "")
        #expect(try expand("${EMPTY:+word}") == "")
        // Without the colon only "unset" counts.
        #expect(try expand("${EMPTY-word}") == "")
        #expect(try expand("${NOPE-word}") == "word")
        #expect(try expand("${EMPTY+word}") == "word")
        #expect(try expand("${NOPE+word}") == "")
        #expect(try expand("${FOO?must be set}") == "/bar")
        #expect(try expand("${EMPTY?must be set}") == "")
        // Nested and recursive words.
        #expect(try expand("${NOPE:-${FOO}/x}") == "/bar/x")
        #expect(try expand("${NOPE:-$X$X}") == "xx")
        #expect(try expand("pre${FOO}post$X.") == "pre/barpostx.")
        #expect(try expand("$") == "$")
        #expect(try expand("a$/b") == "a$/b")
        #expect(try expand("$1x") == "x")
        #expect(try expand("${NOPE}") == "")
        // Prefix and suffix removal with shell patterns.
        let v = ["F": "/home/tux/book/book.tar.bz2", "V": "v1.2.3"]
        #expect(try lexer.expand("${F#*/}", env: v) == "home/tux/book/book.tar.bz2")
        #expect(try lexer.expand("${F##*/}", env: v) == "book.tar.bz2")
        #expect(try lexer.expand("${F%.*}", env: v) == "/home/tux/book/book.tar")
        #expect(try lexer.expand("${F%%.*}", env: v) == "/home/tux/book/book")
        #expect(try lexer.expand("${V#v}", env: v) == "1.2.3")
        #expect(try lexer.expand("${V#[a-z]}", env: v) == "1.2.3")
        #expect(try lexer.expand("${V%.[0-9]}", env: v) == "v1.2")
        #expect(try lexer.expand("${V#\\*}", env: v) == "v1.2.3")
        #expect(try lexer.expand("${V#'v1'}", env: v) == ".2.3")
        #expect(try lexer.expand("${NOPE#x}", env: v) == "")
        // Values are never split or re-processed.
        #expect(try lexer.expandWords("$SP \"$SP\"", env: env) == ["a  b", "a  b"])
        #expect(try lexer.expand("$Q", env: ["Q": "'\"$FOO\\"]) == "'\"$FOO\\")
    }

    @Test func quotesAndEscapes() throws {
        #expect(try expand("\"a b\"") == "a b")
        #expect(try expand("'$FOO \"x\"'") == "$FOO \"x\"")
        #expect(try expand("\"$FOO '$X'\"") == "/bar 'x'")
        #expect(try expand("\"\\$FOO \\\" \\\\ \\a\"") == "$FOO \" \\ \\a")
        #expect(try expand("a\\ b\\\"c\\'") == "a b\"c'")
        #expect(try expand("'a\\'") == "a\\")
        #expect(try expand("\"\"") == "")
        #expect(try expand("end\\") == "end")
        #expect(try expand("${NOPE:-'x  y'}") == "x  y")
        let tick = ShellLexer(escape: "`")
        #expect(try tick.expand("c:\\dir`$FOO `\"", env: env) == "c:\\dir$FOO \"")
        #expect(try tick.expand("\"`$FOO `\" \\\"", env: env) == "$FOO \" \\")
    }

    @Test func splitWordsKeepsQuoting() throws {
        #expect(lexer.splitWords(#"a="x y" b\ c  'd e'"#) == [#"a="x y""#, #"b\ c"#, "'d e'"])
        #expect(lexer.splitWords("  ") == [])
        #expect(lexer.splitWords("\"\" ''") == ["\"\"", "''"])
        #expect(try lexer.expandWords(#"MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog E="""#, env: [:])
                == ["MY_NAME=John Doe", "MY_DOG=Rex The Dog", "E="])
    }

    @Test func errorsAreActionable() throws {
        func message(_ w: String) -> String {
            do { _ = try expand(w); return "" } catch let e as StrataError { return "\(e.code.rawValue): \(e.message)" } catch { return "\(error)" }
        }
        #expect(message("\"abc") == "dockerfile-syntax: cannot expand \"\"abc\": unterminated double quote; add the closing \"")
        #expect(message("'abc") == "dockerfile-syntax: cannot expand \"'abc\": unterminated single quote; add the closing '")
        #expect(message("${FOO") == "dockerfile-syntax: cannot expand \"${FOO\": missing '}'")
        #expect(message("${FOO:-x") == "dockerfile-syntax: cannot expand \"${FOO:-x\": missing '}'")
        #expect(message("${}") == "dockerfile-syntax: cannot expand \"${}\": bad substitution")
        #expect(message("${:x}") == "dockerfile-syntax: cannot expand \"${:x}\": bad substitution")
        #expect(message("${FOO:*x}").hasPrefix("dockerfile-syntax: cannot expand \"${FOO:*x}\": unsupported modifier (*)"))
        #expect(message("${FOO!}").hasPrefix("dockerfile-syntax: cannot expand \"${FOO!}\": bad substitution"))
        #expect(message("${NOPE?please set NOPE}") == "invalid-argument: NOPE: please set NOPE (set it with ARG, ENV or --build-arg)")
        #expect(message("${NOPE:?}") == "invalid-argument: NOPE: is not set or empty (set it with ARG, ENV or --build-arg)")
        #expect(message("${EMPTY:?}") == "invalid-argument: EMPTY: is not set or empty (set it with ARG, ENV or --build-arg)")
        #expect(message("${NOPE?}") == "invalid-argument: NOPE: is not set (set it with ARG, ENV or --build-arg)")
    }

    @Test func heredocExpansionKeepsQuotes() throws {
        #expect(try lexer.expandHeredoc("echo \"$FOO\" '$X' \\$FOO \\\\ \\n\n", env: env) == "echo \"/bar\" 'x' $FOO \\ \\n\n")
        #expect(try lexer.expandHeredoc("${NOPE:-a 'b'}\\", env: env) == "a 'b'\\")
    }
}

/// Ground truth: the same words through busybox `sh` (POSIX quoting and parameter
/// expansion), for the part of the language Docker and sh share.
@Suite struct ShellLexerAgainstShTests {
    /// Deterministic generator of words both languages read the same way.
    struct Gen {
        var rng: SplitMix

        mutating func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        mutating func chance(_ n: UInt64) -> Bool { rng.next() % n == 0 }

        static let names = ["A", "B", "EMPTY", "UNSET", "P1", "lower_x"]
        static let plain = Array("abcxyz019_./,=:@%+-^*?[]!")

        mutating func param(depth: Int) -> String {
            let name = pick(Self.names)
            switch rng.next() % 5 {
            case 0: return "$" + name + (chance(2) ? "" : ".")
            case 1: return "${\(name)}"
            case 2:
                let op = pick(["#", "##", "%", "%%"])
                let pieces = ["*", "?", "a", "l", "p", "h", "/", "b", "c", "[a-c]", "[!a]", "*/", "\\*", "${P1}", "x"]
                return "${\(name)\(op)\((0..<Int(rng.next() % 4)).map { _ in pick(pieces) }.joined())}"
            default:
                let op = pick([":-", ":+", "-", "+"])
                return "${\(name)\(op)\(inner(depth: depth + 1))}"
            }
        }

        /// Text inside ${V:-...}: plain characters, escapes and parameters (no quotes).
        mutating func inner(depth: Int) -> String {
            var s = ""
            for _ in 0..<Int(rng.next() % 4) {
                switch rng.next() % 5 {
                case 0 where depth < 3: s += param(depth: depth)
                // Only \$ and \\: inside double quotes sh keeps other backslashes, Docker does not.
                case 1: s += "\\" + String(pick(Array("$\\")))
                default: s += String(pick(Array("abcxyz019_./,=:@")))
                }
            }
            return s
        }

        mutating func word() -> String {
            var s = ""
            for _ in 0..<(1 + Int(rng.next() % 6)) {
                switch rng.next() % 7 {
                case 0: s += param(depth: 0)
                case 1: s += "'" + String((0..<Int(rng.next() % 5)).map { _ in pick(Array("ab $\"\\{}")) }) + "'"
                case 2:
                    var q = "\""
                    for _ in 0..<Int(rng.next() % 5) {
                        switch rng.next() % 4 {
                        case 0: q += param(depth: 0)
                        case 1: q += "\\" + String(pick(Array("$\"\\ab")))
                        default: q += String(pick(Array("ab '{}#;&|<>()")))
                        }
                    }
                    s += q + "\""
                case 3: s += "\\" + String(pick(Array("$\"'\\ ;&ab#")))
                default: s += String(pick(Self.plain))
                }
            }
            // A leading "#" or "~" means something else to sh.
            if s.hasPrefix("#") || s.hasPrefix("~") { s = "a" + s }
            return s
        }
    }

    @Test func randomWordsExpandLikeSh() throws {
        guard ParserPeer.require("busybox") else { return }
        let env = ["A": "alpha", "B": "b/c", "EMPTY": "", "P1": "1", "lower_x": "lx"]
        var gen = Gen(rng: SplitMix(seed: 0x5eed))
        let words = (0..<1500).map { _ in gen.word() }
        // One sh run: each word printed between markers, on its own line.
        var script = "set -f\nunset UNSET\n"
        for w in words { script += "printf '<%s>\\n' \(w)\n" }
        let out = try ParserPeer.run(["busybox", "sh", "-c", script], env: env)
        let lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(out.status == 0, "sh failed: \(out.stderr)")
        let lexer = ShellLexer()
        var mismatches: [String] = []
        for (i, w) in words.enumerated() {
            let ours = try lexer.expand(w, env: env)
            let theirs = i < lines.count ? lines[i] : "<missing>"
            if "<\(ours)>" != theirs { mismatches.append("\(w)  ours=<\(ours)> sh=\(theirs)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(words.count) differ, e.g.:\n\(mismatches.prefix(10).joined(separator: "\n"))")
    }

    @Test func requiredVariablesFailLikeSh() throws {
        guard ParserPeer.require("busybox") else { return }
        let env = ["SET": "v", "EMPTY": ""]
        for w in ["${SET?x}", "${EMPTY?x}", "${UNSET?x}", "${SET:?x}", "${EMPTY:?x}", "${UNSET:?x}"] {
            let sh = try ParserPeer.run(["busybox", "sh", "-c", "unset UNSET; printf '%s' \(w)"], env: env)
            let ours = Result { try ShellLexer().expand(w, env: env) }
            switch ours {
            case .success(let v): #expect(sh.status == 0 && sh.stdout == v, "\(w): sh \(sh.status) \(sh.stdout)")
            case .failure: #expect(sh.status != 0, "\(w): sh accepted it")
            }
        }
    }

    @Test func heredocBodiesExpandLikeSh() throws {
        guard ParserPeer.require("busybox") else { return }
        let env = ["A": "alpha", "EMPTY": ""]
        let body = """
            plain "double $A" 'single $A' \\$A \\\\ \\a ${A:-x} ${UNSET:-d e} ${EMPTY:+no} ${A:+yes}
            tabs\tand # hash ; & | < > ( ) { } $ at end $
            path ${A}/x/$A.y "${UNSET-'q'}"

            """
        let script = "unset UNSET\ncat <<EOF\n\(body)EOF\n"
        let sh = try ParserPeer.run(["busybox", "sh", "-c", script], env: env)
        #expect(sh.status == 0)
        #expect(try ShellLexer().expandHeredoc(body, env: env) == sh.stdout)
    }
}
