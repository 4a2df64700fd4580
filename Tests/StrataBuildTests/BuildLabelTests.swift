import Foundation
import Testing
@testable import Strata
@testable import StrataBuild

/// `--label` (and the Engine API's `labels`): one more LABEL step at the end of the stage
/// that is built, quoted so any key or value survives expansion.
@Suite struct BuildLabelTests {
    @Test func labelsBecomeALastLabelStepOfTheBuiltStage() throws {
        let file = try Dockerfile.parse("FROM scratch AS a\nENV X=1\nFROM scratch AS b\nCMD [\"x\"]\n")
        let labeled = try Builder.addLabels(["b": "2", "a.key": "x \"y\" $HOME \\ z"], to: file, target: nil)
        #expect(labeled.stepCount == file.stepCount + 1)
        let step = try #require(labeled.stages[1].instructions.last)
        #expect(step.keyword == "LABEL")
        #expect(step.original == #"LABEL "a.key"="x \"y\" \$HOME \\ z" "b"="2""#)
        let expanded = try step.expanded(env: ["HOME": "/root"])
        guard case .keyValues(let kvs) = expanded.arguments else { Issue.record("not key=value: \(expanded.arguments)"); return }
        #expect(kvs.map(\.key) == ["a.key", "b"])
        #expect(kvs.map(\.value) == ["x \"y\" $HOME \\ z", "2"])

        let toTarget = try Builder.addLabels(["k": "v"], to: file, target: "a")
        #expect(toTarget.stages[0].instructions.last?.original == #"LABEL "k"="v""#)
        #expect(toTarget.stages[1].instructions.count == 1)
        #expect(try Builder.addLabels([:], to: file, target: nil) == file)

        // A Dockerfile with another escape character quotes with that one.
        let backtick = try Dockerfile.parse("# escape=`\nFROM scratch\n")
        let b = try Builder.addLabels(["k": "a$b"], to: backtick, target: nil)
        #expect(b.stages[0].instructions.last?.original == "LABEL \"k\"=\"a`$b\"")
    }
}
