import Foundation
import Synchronization
import Testing
@testable import Strata

/// ``runAndWait(_:started:)`` and ``runCapturing(_:limit:)`` let go of every process they
/// ran: a long-running server starts one per container run, exec and signal.
@Suite struct ProcessExitTests {
    /// Counts its instances' deinits.
    final class CountedProcess: Process, @unchecked Sendable {
        static let freed = Atomic<Int>(0)
        deinit { Self.freed.add(1, ordering: .relaxed) }
    }

    @Test func processesAreFreedOnceTheyEnd() async throws {
        let before = CountedProcess.freed.load(ordering: .relaxed)
        let runs = 20
        for i in 0..<runs {
            let p = CountedProcess()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "echo \(i); exit \(i % 3)"]
            if i.isMultiple(of: 2) {
                #expect(try await runAndWait(p) == Int32(i % 3))
            } else {
                let r = try await runCapturing(p)
                #expect(r.status == Int32(i % 3))
                #expect(String(decoding: r.output, as: UTF8.self) == "\(i)\n")
            }
        }
        // Foundation calls the termination handler on a thread of its own, which holds the
        // process until it returns.
        let deadline = ContinuousClock.now + .seconds(10)
        while CountedProcess.freed.load(ordering: .relaxed) - before < runs, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(CountedProcess.freed.load(ordering: .relaxed) - before == runs)
    }
}
