import Foundation
import Testing
import OCI
@testable import StrataBuild

/// `Instruction.expanded(env:escape:)`: what Docker expands and what it leaves to the shell.
@Suite struct InstructionExpansionTests {
    func stage(_ text: String) throws -> [Instruction] { try Dockerfile.parse("FROM a\n" + text).stages[0].instructions }

    @Test func expandsWhatDockerExpands() throws {
        let env = ["U": "1000", "SRC": "", "P": "80 443", "A": "1", "abc": "hello", "S": "build"]
        let all = try stage("""
            COPY --chown=$U --from=$S --link ${SRC:-app} <<EOF /opt/$A/
            x $A
            EOF
            ADD ["$A", "/d/$A"]
            ENV abc=bye def=$abc "k$A"='v $A'
            ARG X=$A Y
            EXPOSE $P ${A}0/udp
            WORKDIR /w/$A
            USER $U:$U
            VOLUME /v/$A
            STOPSIGNAL SIG${NOPE:-TERM}
            RUN echo $A
            CMD ["$A"]
            ONBUILD COPY $A /b
            """)
        let e = try all.map { try $0.expanded(env: env) }
        #expect(e[0].arguments == .words(["app", "<<EOF", "/opt/1/"]))
        #expect(e[0].flags == [Flag(name: "chown", value: "1000"), Flag(name: "from", value: "build"), Flag(name: "link")])
        #expect(e[0].heredocs == all[0].heredocs)
        #expect(e[1].arguments == .exec(["1", "/d/1"]))
        #expect(e[2].arguments == .keyValues([KeyValue(key: "abc", value: "bye"), KeyValue(key: "def", value: "hello"),
                                              KeyValue(key: "k1", value: "v $A")]))
        #expect(e[3].arguments == .keyValues([KeyValue(key: "X", value: "1"), KeyValue(key: "Y", value: nil)]))
        #expect(e[4].arguments == .words(["80", "443", "10/udp"]))
        #expect(e[5].arguments == .words(["/w/1"]))
        #expect(e[6].arguments == .words(["1000:1000"]))
        #expect(e[7].arguments == .words(["/v/1"]))
        #expect(e[8].arguments == .words(["SIGTERM"]))
        #expect(Array(e[9...]) == Array(all[9...]))
        #expect(all.map(\.expandsVariables) == [true, true, true, true, true, true, true, true, true, false, false, false])
        let from = try Dockerfile.parse("ARG V=1\nFROM --platform=$P busybox:$V\n").stages[0].from
        #expect(try from.expanded(env: ["V": "1.36", "P": "linux/amd64"]).arguments == .words(["busybox:1.36"]))
        #expect(try from.expanded(env: ["V": "1.36", "P": "linux/amd64"]).flag("platform") == "linux/amd64")
    }

    @Test func expansionErrorsNameTheLine() throws {
        let i = try stage("\nWORKDIR ${DIR:?set DIR with --build-arg}")[0]
        #expect(throws: StrataError.self) { try i.expanded(env: [:]) }
        do { _ = try i.expanded(env: [:]) } catch let e as StrataError {
            #expect(e.code == .invalidArgument)
            #expect(e.message == "Dockerfile line 3: DIR: set DIR with --build-arg (set it with ARG, ENV or --build-arg)")
        }
        let q = try stage("LABEL a=\"open")[0]
        do { _ = try q.expanded(env: [:]); Issue.record("no error") } catch let e as StrataError {
            #expect(e.message == "Dockerfile line 2: cannot expand \"\"open\": unterminated double quote; add the closing \"")
        }
    }
}
