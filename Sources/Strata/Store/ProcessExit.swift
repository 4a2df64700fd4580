import CArchive
import Foundation
import Synchronization

/// Launches processes one at a time in this process (``run(_:)``). swift-corelibs-foundation
/// makes a socket pair for each launch without close-on-exec (it sees the process's end
/// through it), and closes in the child only the descriptors open when it looked: a launch on
/// another thread in that moment handed its child the first one's socket or pipes, which the
/// child then held for its life. A `runc run` that did so kept a `runc state`'s output open:
/// the server's inspect waited for the container's whole run. Descriptors strata makes itself
/// are close-on-exec from the start (``ExclusivePipe``); this lock covers Foundation's own.
enum ProcessLaunch {
    /// The process's descriptor table is one for all its threads: so is this lock.
    private static let lock = Mutex(())

    /// `process.run()`, under the lock.
    static func run(_ process: Process) throws {
        try lock.withLock { _ in try process.run() }
    }
}

/// A pipe whose two ends are close-on-exec from the moment they exist (`pipe2(O_CLOEXEC)`),
/// for a child process's stdin, stdout or stderr: `Process` duplicates the child's end into
/// it (the copy is inherited), and no other process started meanwhile, on any thread, holds
/// either end. (Foundation's `Pipe` is inherited by every process launched while it is open;
/// one that outlives the pipe's own process keeps its reader from ever seeing the end.)
/// Close the child's end here once the child started.
public final class ExclusivePipe: Sendable {
    /// The end this process reads.
    public let fileHandleForReading: FileHandle
    /// The end the child writes (or this process, for the child's stdin).
    public let fileHandleForWriting: FileHandle

    /// A new pipe; throws when the process has no descriptors left.
    public init() throws {
        var fds: [Int32] = [0, 0]
        guard strata_pipe_cloexec(&fds) == 0 else { throw StrataError.system("cannot create a pipe") }
        fileHandleForReading = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        fileHandleForWriting = FileHandle(fileDescriptor: fds[1], closeOnDealloc: true)
    }
}

/// Starts `process` and returns its exit status — 128 + the signal number when a signal
/// ended it, as a shell reports it — awaiting its termination handler, so no thread (and no
/// thread of the cooperative pool) blocks while it runs. A launch failure throws
/// Foundation's error; the caller wraps it.
///
/// The handler calls `waitUntilExit()` (which returns at once: the process has ended) for
/// its one side effect: swift-corelibs-foundation's `Process` holds itself through the run
/// loop source `run()` makes, and only `waitUntilExit()` lets it go. Without it every
/// process leaked its `Process`, its pipes' handles and this handler: a server that ran
/// containers grew by about 3 KB a run.
func runAndWait(_ process: Process, started: (@Sendable (Int32) -> Void)? = nil) async throws -> Int32 {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Int32, any Error>) in
        process.terminationHandler = { p in
            p.waitUntilExit()
            cont.resume(returning: p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus)
        }
        do {
            try ProcessLaunch.run(process)
            started?(process.processIdentifier)
        } catch {
            process.terminationHandler = nil
            cont.resume(throwing: error)
        }
    }
}

/// Runs `process` (its stdin /dev/null) and returns its exit status with everything it wrote
/// to stdout (at most `limit` bytes kept) and stderr (at most 4 KiB), read while it runs by
/// threads outside the cooperative pool, so a process that writes more than a pipe holds
/// never waits on us.
func runCapturing(_ process: Process, limit: Int = 16 << 20) async throws -> (status: Int32, output: Data, error: String) {
    let out = try ExclusivePipe(), err = try ExclusivePipe()
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = out.fileHandleForWriting
    process.standardError = err.fileHandleForWriting
    final class Captured: @unchecked Sendable {
        var output = Data(), error = Data()
        let done = DispatchGroup()
    }
    let captured = Captured()
    for (pipe, isOutput) in [(out, true), (err, false)] {
        captured.done.enter()
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread {
            var kept = Data()
            while let chunk = try? handle.read(upToCount: 64 << 10), !chunk.isEmpty {
                if kept.count < (isOutput ? limit : 4096) { kept.append(chunk) }
            }
            // Closed here, not left to the handle's deallocation: the Process can outlive
            // this call, and with it the handles (a server that asked runc for a container's
            // state on every inspect once ran out of descriptors).
            try? handle.close()
            if isOutput { captured.output = kept } else { captured.error = kept }
            captured.done.leave()
        }
    }
    let status: Int32
    do {
        // The child holds its copies of the write ends from its start; ours go at once.
        status = try await runAndWait(process, started: { _ in
            try? out.fileHandleForWriting.close()
            try? err.fileHandleForWriting.close()
        })
    } catch {
        // Never started: our write ends close, so the readers see the end.
        try? out.fileHandleForWriting.close()
        try? err.fileHandleForWriting.close()
        throw error
    }
    try? out.fileHandleForWriting.close()
    try? err.fileHandleForWriting.close()
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        captured.done.notify(queue: .global()) { c.resume() }
    }
    return (status, captured.output, String(decoding: captured.error.prefix(4096), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
}
