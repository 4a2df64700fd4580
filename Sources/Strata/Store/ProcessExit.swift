import Foundation

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
            try process.run()
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
    let out = Pipe(), err = Pipe()
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = out
    process.standardError = err
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
            // Closed here, not left to the handle's deallocation: the Process that holds the
            // Pipe can outlive this call, and with it both read ends (a server that asked
            // runc for a container's state on every inspect ran out of descriptors).
            try? handle.close()
            if isOutput { captured.output = kept } else { captured.error = kept }
            captured.done.leave()
        }
    }
    let status: Int32
    do {
        status = try await runAndWait(process)
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
