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

    /// Processes launched while others launch and capture on other threads inherit none of
    /// their descriptors: each long-lived child holds its stdio and the one socket Foundation
    /// watches it through, nothing else. (A `runc run` that inherited a `runc state`'s output
    /// pipe kept it open for the container's life, and the inspect that waited for it hung.)
    @Test func launchesOnOtherThreadsLeaveNothingInALongLivedChild() async throws {
        // A server's many open descriptors make Foundation's look at them, and the closes it
        // lists for the child, take longer: the moment another thread can open one widens.
        let ballast = (0..<400).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        defer { for fd in ballast where fd >= 0 { close(fd) } }
        final class Started: Sendable { let pids = Mutex<[Int32]>([]) }
        let record = Started()
        let sleepers = 24
        let waits = (0..<sleepers).map { i in
            Task {
                // Spread over the captures' launches.
                try await Task.sleep(for: .milliseconds(4 * i))
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/bin/sleep")
                p.arguments = ["3600"]  // killed below; alive however slow the captures are
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                return try await runAndWait(p, started: { pid in record.pids.withLock { $0.append(pid) } })
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    for _ in 0..<40 {
                        let p = Process()
                        p.executableURL = URL(fileURLWithPath: "/bin/true")
                        _ = try await runCapturing(p)
                    }
                }
            }
            try await group.waitForAll()
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while record.pids.withLock({ $0.count }) < sleepers, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let started = record.pids.withLock { $0 }
        #expect(started.count == sleepers)
        for pid in started {
            let dir = "/proc/\(pid)/fd"
            let listed = try? FileManager.default.contentsOfDirectory(atPath: dir)
            #expect(listed != nil, "sleep \(pid) is gone")
            let held = (listed ?? []).compactMap(Int.init).filter { $0 >= 3 }.sorted()
            let what = held.map { (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)")) ?? "?" }
            #expect(held.count <= 1 && what.allSatisfy { $0.hasPrefix("socket:") }, "sleep \(pid) holds \(zip(held, what).map { "\($0)=\($1)" })")
        }
        for pid in started { kill(pid, SIGKILL) }
        for w in waits { _ = try? await w.value }
    }
}
