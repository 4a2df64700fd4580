import Foundation
import Testing
import OCI
@testable import StrataBuild

/// `.dockerignore` against the examples of Docker's documentation
/// (docs.docker.com/build/concepts/context/#dockerignore-files).
@Suite struct DockerIgnoreTests {
    func excluded(_ rules: String, _ paths: [String]) throws -> [String] {
        let ignore = try DockerIgnore(rules)
        return paths.filter { ignore.isExcluded($0) }
    }

    @Test func documentedExamples() throws {
        let tree = ["somedir/temporary.txt", "somedir/temp", "somedir/subdir/temporary.txt", "tempa", "tempb", "temp",
                    "tempab", "temp.txt", "a/temp", "x/y/z/temp1"]
        // # comment / */temp* / */*/temp* / temp?
        let rules = "# comment\n*/temp*\n*/*/temp*\ntemp?\n"
        #expect(try excluded(rules, tree) == ["somedir/temporary.txt", "somedir/temp", "somedir/subdir/temporary.txt",
                                              "tempa", "tempb", "a/temp"])
        #expect(try excluded("*/temp*", ["somedir/temporary.txt", "somedir/temp", "temp", "a/b/temp"]) == ["somedir/temporary.txt", "somedir/temp"])
        #expect(try excluded("*/*/temp*", ["somedir/subdir/temporary.txt", "somedir/temp"]) == ["somedir/subdir/temporary.txt"])
        #expect(try excluded("temp?", ["tempa", "tempb", "temp", "tempab", "d/tempa"]) == ["tempa", "tempb"])
        #expect(try excluded("**/*.go", ["main.go", "a/b/c.go", "a/go", "a.gox"]) == ["main.go", "a/b/c.go"])
    }

    @Test func exceptionsAndLastMatchWins() throws {
        let md = ["README.md", "CHANGES.md", "README-secret.md", "docs/README.md", "a.txt"]
        #expect(try excluded("*.md\n!README.md\n", md) == ["CHANGES.md", "README-secret.md"])
        // "No markdown files except README files other than README-secret.md."
        #expect(try excluded("*.md\n!README*.md\nREADME-secret.md\n", md) == ["CHANGES.md", "README-secret.md"])
        // "All of the README files are included. The middle line has no effect."
        #expect(try excluded("*.md\nREADME-secret.md\n!README*.md\n", md) == ["CHANGES.md"])
        #expect(try DockerIgnore("*.md\n!README.md\n").hasExceptions)
        #expect(try !DockerIgnore("*.md\n").hasExceptions)
    }

    @Test func directoriesExcludeTheirContentsUnlessReincluded() throws {
        let tree = ["build", "build/a.o", "build/keep/me.txt", "build/keep", "src/build/x", "buildx"]
        #expect(try excluded("build", tree) == ["build", "build/a.o", "build/keep/me.txt", "build/keep"])
        #expect(try excluded("build\n!build/keep\n", tree) == ["build", "build/a.o"])
        #expect(try excluded("**/build", tree) == ["build", "build/a.o", "build/keep/me.txt", "build/keep", "src/build/x"])
        #expect(try excluded("build/**", tree) == ["build/a.o", "build/keep/me.txt", "build/keep"])
        #expect(try excluded("*\n!src\n", tree) == ["build", "build/a.o", "build/keep/me.txt", "build/keep", "buildx"])
    }

    @Test func cleaningLeadingSlashDotAndTrailingSlash() throws {
        let tree = ["a/b", "a/b/c", "a", "b", "x/a/b"]
        for rule in ["/a/b", "./a/b", "a/b/", "a//b", "a/./b", "a/c/../b", "  a/b  ", "/a/b/"] {
            #expect(try excluded(rule, tree) == ["a/b", "a/b/c"], "\(rule)")
        }
        let ignore = try DockerIgnore("a/b")
        #expect(ignore.isExcluded("./a/b/c") && ignore.isExcluded("/a/b"))
        #expect(!ignore.isExcluded(".") && !ignore.isExcluded(""))
        #expect(try DockerIgnore("!/x\n/y/").patterns.map { "\($0.isException ? "!" : "")\($0.pattern)@\($0.line)" } == ["!x@1", "y@2"])
    }

    @Test func globSyntax() throws {
        #expect(try excluded("[a-c]*.txt", ["a.txt", "b1.txt", "d.txt", "x/a.txt"]) == ["a.txt", "b1.txt"])
        #expect(try excluded("[^a]?", ["ab", "bb", "b/"]) == ["bb"])
        #expect(try excluded("\\*.txt", ["*.txt", "a.txt"]) == ["*.txt"])
        #expect(try excluded("a/**/b", ["a/b", "a/x/b", "a/x/y/b", "a/xb"]) == ["a/b", "a/x/b", "a/x/y/b"])
        #expect(try excluded("**", ["a", "a/b"]) == ["a", "a/b"])
        #expect(try excluded("*.go", ["x.go", "d/x.go"]) == ["x.go"])
        #expect(try excluded("# not a comment when indented?\n  #x", ["#x", "x"]) == ["#x"])
        #expect(try excluded("ünï*", ["ünïcode", "unicode"]) == ["ünïcode"])
        #expect(try excluded("a\r\nb\r\n", ["a", "b"]) == ["a", "b"])
    }

    @Test func malformedPatternsNameTheLine() {
        func message(_ text: String) -> String {
            do { _ = try DockerIgnore(text); return "" } catch let e as StrataError { return e.message } catch { return "\(error)" }
        }
        #expect(message("ok\n[abc\n") == ".dockerignore line 2: bad pattern \"[abc\": a [ has no closing ]")
        #expect(message("x\\") == ".dockerignore line 1: bad pattern \"x\\\": it ends with a \\; escape it as \\\\ or remove it")
        #expect(message("a\n!\n") == ".dockerignore line 2: \"!\" needs a pattern after it, e.g. !README.md")
        #expect(message("[z-a]") == ".dockerignore line 1: bad pattern \"[z-a]\": the range z-a is reversed")
    }
}
