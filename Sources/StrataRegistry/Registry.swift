import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import OCI
import Strata

/// What ``Registry/pull(_:into:options:platform:allPlatforms:)`` did.
public struct PullResult: Sendable {
    /// The image for the chosen platform (the one tagged).
    public var image: LoadedImage
    /// Every image stored (one per platform with `allPlatforms`).
    public var images: [LoadedImage]
    /// Digest of the manifest (or index) the reference resolved to.
    public var digest: OCI.Digest
}

/// What ``Registry/pushImage(_:to:from:options:)`` did.
public struct PushResult: Sendable {
    /// The tag (or digest) pushed to.
    public var tag: String
    /// Digest of the top manifest (or index) pushed.
    public var digest: OCI.Digest
    /// Its size in bytes.
    public var size: Int
    /// Docker's summary line: `TAG: digest: sha256:… size: N`.
    public var summary: String { "\(tag): digest: \(digest) size: \(size)" }
}

/// Pull and push through any OCI distribution registry.
///
/// ```swift
/// let result = try await Registry.pull("localhost:5000/app:1", into: store)
/// try await Registry.push("app:1", to: "localhost:5000/app:1", from: store)
/// ```
public enum Registry {
    /// Runs `body` for every item, at most `limit` at a time; the first error cancels the rest.
    static func forEach<T: Sendable>(_ items: [T], atMost limit: Int, _ body: @escaping @Sendable (T) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func launch() {
                guard next < items.count else { return }
                let item = items[next]
                next += 1
                group.addTask { try await body(item) }
            }
            for _ in 0..<max(1, limit) { launch() }
            while try await group.next() != nil { launch() }
        }
    }

    /// What a transfer hands back: work to finish (commit) once its slot is free again.
    typealias FollowUp = @Sendable () async throws -> Void

    /// What finished in ``Registry/pipeline(_:atMost:transfer:)``.
    enum PipelineStep: Sendable { case transferred(FollowUp?), followedUp }

    /// Like ``forEach(_:atMost:_:)``, but each item's `transfer` may return a follow-up that
    /// runs outside the transfer limit: the next transfer starts as soon as the bytes are in,
    /// while the finished one is made durable and recorded. Follow-ups waiting or running
    /// are bounded by the same limit (each holds its transfer's buffers), so a slow disk
    /// pauses new transfers instead of piling them up. The first error cancels the rest.
    static func pipeline<T: Sendable>(_ items: [T], atMost limit: Int, transfer: @escaping @Sendable (T) async throws -> FollowUp?) async throws {
        let limit = max(1, limit)
        try await withThrowingTaskGroup(of: PipelineStep.self) { group in
            var next = 0, transfers = 0, followUps = 0
            func launch() {
                while next < items.count, transfers < limit, followUps < limit {
                    let item = items[next]
                    next += 1
                    transfers += 1
                    group.addTask { .transferred(try await transfer(item)) }
                }
            }
            launch()
            while let done = try await group.next() {
                switch done {
                case .transferred(let followUp):
                    transfers -= 1
                    if let followUp {
                        followUps += 1
                        group.addTask { try await followUp(); return .followedUp }
                    }
                case .followedUp:
                    followUps -= 1
                }
                launch()
            }
        }
    }
}

/// A byte range of a file as an async sequence of 1 MiB byte buffers, for streaming uploads.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    var offset: Int64 = 0
    var length: Int64 = .max
    /// Called with the bytes of each chunk as it is handed to the HTTP client.
    var sent: (@Sendable (Int) -> Void)? = nil

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        var left: Int64
        let sent: (@Sendable (Int) -> Void)?
        mutating func next() async throws -> ByteBuffer? {
            guard let handle else { throw StrataError(.io, "cannot read a blob to upload") }
            guard left > 0 else { try? handle.close(); return nil }
            let data = try handle.read(upToCount: Int(Swift.min(left, 1 << 20))) ?? Data()
            if data.isEmpty { try? handle.close(); return nil }
            left -= Int64(data.count)
            sent?(data.count)
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        let h = FileHandle(forReadingAtPath: path)
        if offset > 0 { try? h?.seek(toOffset: UInt64(offset)) }
        return AsyncIterator(handle: h, left: length, sent: sent)
    }
}
