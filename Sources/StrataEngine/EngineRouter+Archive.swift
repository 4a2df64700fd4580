import Foundation
import NIOCore
import OCI
import Strata
import StrataRegistry
import StrataBuild

/// `docker save` and `docker load`.
extension EngineRouter {
    /// `GET /images/get?names=…` and `GET /images/{name}/get`: the Docker 25+ archive
    /// `strata save` writes, streamed as it is made (``ResponsePipe``): no file in between.
    /// The images are resolved before the head goes out, so an unknown name answers 404; a
    /// failure after that cuts the body short (the connection closes without the chunked
    /// body's end), which the client reports as an unexpected end, never as a whole tar.
    func save(_ names: [String], _ res: EngineResponse) async throws {
        guard !names.isEmpty else { throw EngineError.badRequest("names is required") }
        for n in names { try Self.checkName(n) }
        let store = self.store
        try await streamTar(res) { pipe in try await store.save(names, format: .docker, to: pipe, name: "the response") }
    }

    /// Answers a tar that `write` makes into a ``ResponsePipe`` (on a thread of its own), as
    /// it is made: the head (200, `headers`) goes out with the first piece, so an error
    /// before any byte (a name that resolves to nothing) is still a status; a failure after
    /// that cuts the body short (the connection closes without the chunked body's end), which
    /// the client reports as an unexpected end, never as a whole tar.
    func streamTar(_ res: EngineResponse, headers: [(String, String)] = [],
                   _ write: @escaping @Sendable (ResponsePipe) async throws -> Void) async throws {
        let pipe = ResponsePipe()
        async let written: Void = Self.run(write, into: pipe)
        do {
            for try await piece in pipe.pieces {
                if !res.started { try await res.startStream(contentType: "application/x-tar", headers: headers, abortsOnError: true) }
                try await res.write(piece)
                pipe.taken()
            }
        } catch {
            pipe.cancel()
            await written
            throw error
        }
        await written
        if !res.started { try await res.startStream(contentType: "application/x-tar", headers: headers, abortsOnError: true) }
        try await res.finish()
    }

    /// Runs `write` into `pipe` and ends its stream with the outcome.
    private static func run(_ write: @Sendable (ResponsePipe) async throws -> Void, into pipe: ResponsePipe) async {
        do {
            try await write(pipe)
            pipe.finish(nil)
        } catch {
            pipe.finish(error)
        }
    }

    /// `POST /images/create?fromSrc=-&repo=&tag=&message=&platform=` with a root filesystem
    /// tar as the body (`docker import`): ``Store/importRootfs(from:reference:options:)`` on
    /// the spooled body; answers `{"status":"sha256:…"}` as dockerd does. `changes` (`docker
    /// import -c`) edit the new image's config. `fromSrc` as an http(s) URL (`docker import
    /// URL`; no scheme means http, as dockerd) is downloaded into the store's scratch space
    /// first (``Download/importRootfs(_:into:reference:options:maxSize:)``: at most 2 GB); a URL that cannot be
    /// fetched is a 400 naming it.
    func importImage(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let src = req.string("fromSrc") ?? "-"
        let edits: [ConfigEdit]
        do {
            edits = try ConfigEdit.parse(changes: (req.query["changes"] ?? []).filter { !$0.isEmpty })
        } catch let e as StrataError where e.code == .invalidArgument || e.code == .dockerfileSyntax {
            throw EngineError.badRequest(e.message)
        }
        var reference: String?
        if let repo = req.string("repo"), !repo.isEmpty {
            let tag = req.string("tag") ?? ""
            let named = tag.isEmpty ? repo : "\(repo):\(tag)"
            try Self.checkName(named)
            reference = named
        }
        // As dockerd: the history says where it came from, "-" for the request body.
        var options = ImportOptions(message: req.string("message").flatMap { $0.isEmpty ? nil : $0 } ?? "Imported from \(src)", edits: edits)
        do {
            options.platform = try req.string("platform").flatMap { $0.isEmpty ? nil : try Platform(parsing: $0) }
        } catch let e as StrataError {
            throw EngineError.badRequest(e.message)
        }
        let image: LoadedImage
        if src == "-" {
            guard case .file(let body) = req.body else { throw EngineError.badRequest("no root filesystem tar in the request body") }
            options.inputName = "the request body"
            image = try await store.importRootfs(from: URL(fileURLWithPath: body), reference: reference, options: options)
            try await res.startStream(contentType: "application/json")
        } else {
            let url = src.contains("://") ? src : "http://\(src)"
            do {
                image = try await Download.importRootfs(url, into: store, reference: reference, options: options)
            } catch let e as StrataError where e.code == .io || e.code == .invalidArgument {
                throw EngineError.badRequest(e.message)  // the URL could not be fetched
            }
            try await res.startStream(contentType: "application/json")
            try await res.message(["status": "Downloading from \(url)"])
        }
        try await res.message(["status": image.id.string])
        try await res.finish()
    }

    /// `POST /images/load`: the body (any tar `strata load` reads) is loaded as it arrives
    /// (``BodyPipe``, ``Store/load(stream:name:sizeHint:options:)``): blobs are hashed and
    /// written into the store's ingest space while the rest comes, and committed only once
    /// the body arrived whole, so a body that ends early leaves the store unchanged. The
    /// answer, `{"stream":"Loaded image: app:1\n"}` per tag, goes out once the images are
    /// durable; a body that is no image archive gets a 200 whose stream is the error, as
    /// dockerd answers it.
    func load(_ req: EngineRequest, _ res: EngineResponse) async throws {
        guard case .stream(let body) = req.body else { throw EngineError.badRequest("no archive in the request body") }
        let length = req.headers.first(name: "content-length").flatMap { Int64($0) }
        let loaded: [LoadedImage]
        do {
            loaded = try await store.load(stream: body, name: "the request body", sizeHint: length)
        } catch let e as StrataError where !body.failed {
            // As dockerd: a body that is not an image archive is a 200 whose stream carries the
            // error (docker-py raises ImageLoadError; the docker CLI prints it, exits 1).
            try await res.startStream(contentType: "application/json")
            try await res.streamError(EngineError(e).message)
            try await res.finish()
            return
        }
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
