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

extension TransferEvent {
    /// The Engine API's JSON progress message for this event, as `docker pull` and
    /// `docker push` draw them: `{"status":"Downloading","progressDetail":{"current":…,"total":…},"id":"a1b2c3d4e5f6"}`.
    /// - Parameter verb: "Downloading" (pull) or "Pushing" (push).
    public func dockerMessage(verb: String) -> [String: Any] {
        switch self {
        case .started(let d, _):
            return ["status": verb == "Pushing" ? "Preparing" : "Pulling fs layer", "progressDetail": [String: Any](), "id": d.shortHex]
        case .advanced(let d, let done, let size):
            return ["status": verb, "progressDetail": ["current": done, "total": size], "id": d.shortHex]
        case .finished(let d, _, let status):
            return ["status": status, "progressDetail": [String: Any](), "id": d.shortHex]
        case .message(let m):
            return ["status": m]
        }
    }
}
