import Foundation
import Testing
@testable import StrataRegistry

/// `Registry.pipeline`: every item is transferred and followed up once; transfers and
/// pending follow-ups each stay within the limit; the next transfer does not wait for the
/// previous follow-up; an error stops the rest.
@Suite struct PipelineTests {
    final class Counters: @unchecked Sendable {
        let lock = NSLock()
        var transfers = 0, maxTransfers = 0, followUps = 0, maxFollowUps = 0
        var transferred: [Int] = [], followed: [Int] = []
        func enter(_ f: (Counters) -> Void) { lock.withLock { f(self) } }
    }

    @Test func boundsTransfersAndFollowUpsAndRunsEachOnce() async throws {
        let c = Counters()
        try await Registry.pipeline(Array(0..<40), atMost: 3) { i -> Registry.FollowUp? in
            c.enter { $0.transfers += 1; $0.maxTransfers = max($0.maxTransfers, $0.transfers) }
            try await Task.sleep(nanoseconds: UInt64(1_000_000 * (i % 4)))
            c.enter { $0.transfers -= 1; $0.transferred.append(i); $0.followUps += 1; $0.maxFollowUps = max($0.maxFollowUps, $0.followUps) }
            if i % 5 == 0 { c.enter { $0.followUps -= 1 }; return nil }  // nothing to follow up
            return {
                try await Task.sleep(nanoseconds: 5_000_000)  // slower than a transfer
                c.enter { $0.followUps -= 1; $0.followed.append(i) }
            }
        }
        #expect(c.transferred.sorted() == Array(0..<40))
        #expect(c.followed.sorted() == (0..<40).filter { $0 % 5 != 0 })
        #expect(c.maxTransfers <= 3 && c.maxTransfers >= 2)
        #expect(c.maxFollowUps <= 3 + 3)  // three pending plus three whose transfer just ended
        #expect(c.transfers == 0 && c.followUps == 0)
    }

    @Test func anErrorStopsTheRest() async throws {
        let c = Counters()
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await Registry.pipeline(Array(0..<100), atMost: 2) { i -> Registry.FollowUp? in
                c.enter { $0.transferred.append(i) }
                if i == 3 { throw Boom() }
                try await Task.sleep(nanoseconds: 2_000_000)
                return nil
            }
        }
        #expect(c.transferred.count < 100)
    }
}
