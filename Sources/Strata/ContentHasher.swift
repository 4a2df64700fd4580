import Crypto
import Foundation

/// Hashes regular files' bytes for ``TarIndexer`` on a thread of its own, so the per-file
/// sha256 of a big file overlaps with the layer's own hash instead of adding to it. Items are
/// handled in order (entries stay in tar order); at most `capacity` chunks wait in the queue,
/// so memory stays bounded (law 6).
final class ContentHasher: @unchecked Sendable {
    enum Item {
        /// A regular file starts.
        case begin
        case data([UInt8])
        /// The file ends: its digest goes on the entry, which is recorded.
        case end(LayerEntry)
        /// Any other entry, recorded as it is.
        case entry(LayerEntry)
        case finish
    }

    private let cond = NSCondition()
    private var queue: [Item] = []
    private var head = 0
    private let capacity: Int
    private var finished = false
    private var abandoned = false
    private let record: @Sendable (LayerEntry) -> Void

    /// - Parameter record: called on the hashing thread, in tar order.
    init(capacity: Int = 4, record: @escaping @Sendable (LayerEntry) -> Void) {
        self.capacity = capacity
        self.record = record
        let t = Thread { [self] in run() }
        t.name = "strata.content-hasher"
        t.start()
    }

    /// Queues an item; waits while the queue is full.
    func send(_ item: Item) {
        cond.lock()
        while queue.count - head >= capacity && !abandoned { cond.wait() }
        queue.append(item)
        cond.broadcast()
        cond.unlock()
    }

    /// Sends `.finish` and waits until every item before it is handled.
    func finishAndWait() {
        send(.finish)
        cond.lock()
        while !finished { cond.wait() }
        cond.unlock()
    }

    /// Lets the thread end without handling what is left (the indexer was dropped).
    func abandon() {
        cond.lock()
        abandoned = true
        cond.broadcast()
        cond.unlock()
    }

    private func run() {
        var hasher: SHA256?
        while true {
            cond.lock()
            while head == queue.count && !abandoned { cond.wait() }
            if abandoned { finished = true; cond.broadcast(); cond.unlock(); return }
            let item = queue[head]
            head += 1
            if head > 64 { queue.removeFirst(head); head = 0 }
            cond.broadcast()
            cond.unlock()
            switch item {
            case .begin: hasher = SHA256()
            case .data(let bytes): bytes.withUnsafeBytes { hasher?.update(bufferPointer: $0) }
            case .end(var e):
                if let h = hasher { e.digest = OCI.Digest.sha256(finalizing: h) }
                hasher = nil
                record(e)
            case .entry(let e): record(e)
            case .finish:
                cond.lock()
                finished = true
                cond.broadcast()
                cond.unlock()
                return
            }
        }
    }
}
