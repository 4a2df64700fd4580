import Foundation
import Strata
import Testing

/// Signal names and numbers against bash's own table (`kill -l`), which names Linux's
/// signals as Docker does (`HUP`, `RTMIN+3`).
struct ContainerSignalTests {
    @Test func namesAndNumbersAgreeWithBash() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "for i in $(seq 1 64); do echo \"$i $(kill -l $i)\"; done"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        var checked = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let n = Int32(parts[0]) else { continue }
            let name = String(parts[1])  // bash: "HUP", "RTMIN+1", "RTMAX-1"
            let byNumber = try ContainerSignal(String(n))
            #expect(byNumber.number == n)
            for spelling in [name, "SIG" + name, name.lowercased(), "sig" + name.lowercased()] {
                #expect(try ContainerSignal(spelling).number == n, "\(spelling)")
            }
            if !name.hasPrefix("RTMAX") { #expect(byNumber.name == "SIG" + name, "\(n)") }
            checked += 1
        }
        #expect(checked >= 60, "bash listed \(checked) signals")
    }

    @Test func badSignalsAreRefused() {
        for bad in ["", "0", "65", "-1", "SIGFOO", "RTMIN+31", "RTMAX-31", "RTMIN-1", "TERM ", "9x"] {
            #expect(throws: StrataError.self, "\(bad)") { try ContainerSignal(bad) }
        }
        #expect(ContainerSignal.term.number == 15 && ContainerSignal.kill.number == 9)
    }
}
