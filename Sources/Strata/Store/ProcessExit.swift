import Foundation

/// Starts `process` and returns its exit status — 128 + the signal number when a signal
/// ended it, as a shell reports it — awaiting its termination handler, so no thread (and no
/// thread of the cooperative pool) blocks while it runs. A launch failure throws
/// Foundation's error; the caller wraps it.
func runAndWait(_ process: Process, started: (@Sendable (Int32) -> Void)? = nil) async throws -> Int32 {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Int32, any Error>) in
        process.terminationHandler = { p in
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
