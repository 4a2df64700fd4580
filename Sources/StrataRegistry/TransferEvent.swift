import OCI

/// What a pull or push reports about each blob, for progress display. The library never
/// prints; the CLI draws bars on a terminal or one line per blob otherwise.
public enum TransferEvent: Sendable, Equatable {
    /// A blob transfer began (`size` bytes to move).
    case started(OCI.Digest, size: Int64)
    /// Bytes moved so far (sent at most every 100 ms per blob).
    case advanced(OCI.Digest, done: Int64, size: Int64)
    /// A blob is done: "Pull complete", "Already exists", "Pushed", "Layer already exists",
    /// "Mounted from REPO", "Skipped foreign layer".
    case finished(OCI.Digest, size: Int64, status: String)
    /// Any other line (a resumed download, the pushed digest).
    case message(String)
}
