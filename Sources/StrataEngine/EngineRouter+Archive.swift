import Foundation
import OCI
import Strata

/// `docker save` and `docker load`.
extension EngineRouter {
    /// `GET /images/get?names=…` and `GET /images/{name}/get`: the Docker 25+ archive
    /// `strata save` writes, written to the store's scratch space first (a failed save
    /// answers an error status, not half a tar) and then streamed with its length.
    func save(_ names: [String], _ res: EngineResponse) async throws {
        guard !names.isEmpty else { throw EngineError.badRequest("names is required") }
        for n in names { try Self.checkName(n) }
        let scratch = try store.makeScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.deletingLastPathComponent().appendingPathComponent("save.tar").path
        try await store.save(names, to: URL(fileURLWithPath: path), format: .docker)
        try await streamFile(path, contentType: "application/x-tar", res)
    }

    /// Answers a file the store just wrote (a save, an archive of a container path) with its
    /// length, in 1 MiB pieces.
    func streamFile(_ path: String, contentType: String, headers: [(String, String)] = [], _ res: EngineResponse) async throws {
        guard let file = FileHandle(forReadingAtPath: path) else { throw StrataError(.io, "cannot read \(path)") }
        defer { try? file.close() }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        try await res.startStream(contentType: contentType, headers: headers + [("Content-Length", String(size))])
        while let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
            try await res.write(chunk)
        }
        try await res.finish()
    }

    /// `POST /images/load`: the body (any archive `strata load` reads, spooled to a file
    /// inside the store) is loaded; a body that ended early never gets here, so the store
    /// is unchanged. Answers `{"stream":"Loaded image: app:1\n"}` per tag.
    func load(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard case .file(let path) = req.body else { throw EngineError.badRequest("no archive in the request body") }
        let loaded = try await store.load(from: URL(fileURLWithPath: path))
        try await res.startStream(contentType: "application/json")
        for image in loaded {
            if image.tags.isEmpty {
                try await res.message(["stream": "Loaded image ID: \(image.id)\n"])
            } else {
                for t in image.tags { try await res.message(["stream": "Loaded image: \(t)\n"]) }
            }
        }
        try await res.finish()
    }
}
