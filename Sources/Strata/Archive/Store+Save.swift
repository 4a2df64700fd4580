import CArchive
import Foundation
import GRDB

/// Output formats of ``Store/save(_:to:format:)``.
public enum ArchiveFormat: String, Sendable, CaseIterable {
    /// The Docker 25+ archive: an OCI layout plus `manifest.json` and `repositories`.
    case docker
    /// An OCI image layout in a tar.
    case ociArchive = "oci-archive"
    /// An OCI image layout directory.
    case ociDirectory = "oci-dir"
}

extension Store {
    /// Writes images to one archive; layers shared between images are written once.
    ///
    /// The output is byte-reproducible: the same images and names give the same bytes.
    /// It is written to a temporary name beside `url` and renamed into place, so a failed
    /// save leaves nothing behind. `url == nil` writes a tar to standard output.
    ///
    /// ```swift
    /// try await store.save(["busybox:latest"], to: URL(fileURLWithPath: "busybox.tar"))
    /// ```
    public func save(_ refs: [String], to url: URL?, format: ArchiveFormat = .docker) async throws {
        guard !refs.isEmpty else { throw StrataError(.invalidArgument, "save needs at least one image") }
        let plan = try await savePlan(refs)
        try await write(plan, to: url, format: format)
        await recordSaved(plan)
    }

    private func write(_ plan: SavePlan, to url: URL?, format: ArchiveFormat) async throws {
        if format == .ociDirectory {
            guard let url else { throw StrataError(.invalidArgument, "--format oci-dir needs an output directory (-o DIR)") }
            try await explainingDiskFull("saving to \(url.path)", on: url.deletingLastPathComponent().path,
                                         estimate: { plan.blobs.reduce(0) { $0 + $1.1 } }) {
                try writeDirectory(plan, to: url)
            }
            return
        }
        guard let url else {
            let w = try ArchiveWriter(fd: 1, name: "standard output")
            try writeArchive(plan, format: format, writer: w)
            try w.close()
            return
        }
        let dir = url.deletingLastPathComponent().path
        // The blobs plus room for every tar header.
        let estimate = plan.blobs.reduce(Int64(64 << 10)) { $0 + $1.1 + 4096 }
        try await explainingDiskFull("saving to \(url.path)", on: dir.isEmpty ? "." : dir, estimate: { estimate }) {
            try writeArchiveFile(plan, format: format, to: url, dir: dir, estimate: estimate)
        }
    }

    /// Writes images as one archive into `sink` (a `docker save` response body) as it is
    /// made: the same bytes as a file save, with no file in between. The images are resolved
    /// first, so a name that matches nothing throws before any byte is written; a failure
    /// after that (a blob unreadable) throws with the archive cut short, which the caller must
    /// pass on as such. The writing runs on a thread of its own (the sink may block).
    package func save(_ refs: [String], format: ArchiveFormat = .docker, to sink: any ByteSink, name: String) async throws {
        guard !refs.isEmpty else { throw StrataError(.invalidArgument, "save needs at least one image") }
        guard format != .ociDirectory else { throw StrataError(.invalidArgument, "an oci-dir layout cannot be streamed") }
        let plan = try await savePlan(refs)
        try await onOwnThread("strata.save") {
            let w = try ArchiveWriter(sink: sink, name: name)
            try self.writeArchive(plan, format: format, writer: w)
            try w.close()
        }
        await recordSaved(plan)
    }

    /// dockerd's `save` event for each image, by its ID, once the archive is whole. Best
    /// effort: the archive is written whether or not its events can be.
    private func recordSaved(_ plan: SavePlan) async {
        try? await recordImageEvents(plan.images.map { (action: "save", actor: $0.id.string, image: $0.id.string, name: $0.id.string) })
    }

    /// Writes the archive beside `url` and renames it into place once it is durable.
    private func writeArchiveFile(_ plan: SavePlan, format: ArchiveFormat, to url: URL, dir: String, estimate: Int64) throws {
        let tmp = dir + "/.\(url.lastPathComponent).strata-\(UUID().uuidString.prefix(8))"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StrataError.system("cannot create \(url.path)") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(tmp) }
        }
        // Reserve the blocks first (see BlobWriter).
        if estimate >= 1 << 20 { _ = strata_preallocate(fd, estimate) }
        let w = try ArchiveWriter(fd: fd, name: url.path, direct: estimate >= BlobWriter.directThreshold)
        try writeArchive(plan, format: format, writer: w)
        try w.close()
        _ = strata_trim_preallocation(fd)
        // The archive becomes visible whole (rename), like docker save, and only once its bytes
        // and size are durable: a power cut leaves the old file or the whole new one, never a
        // partial one. Then the directory, so a save that returned survives the cut.
        if fsync(fd) != 0 { throw StrataError.system("cannot fsync \(tmp)") }
        CrashPoint.hit("save.before-rename")
        if rename(tmp, url.path) != 0 { throw StrataError.system("cannot write \(url.path)") }
        ok = true
        try fsyncDirectory(dir.isEmpty ? "." : dir)
    }

    struct SaveImage: Sendable {
        var id: Digest
        var manifestDigest: Digest
        var manifestMediaType: String
        var manifestSize: Int64
        var layers: [Digest]
        /// Tags to record, full names.
        var tags: [Reference]
    }

    struct SavePlan: Sendable {
        var images: [SaveImage]
        /// Every blob to write with its size, sorted by digest.
        var blobs: [(Digest, Int64)]
    }

    func savePlan(_ refs: [String]) async throws -> SavePlan {
        try await read { db in
            var images: [SaveImage] = []
            var byID: [Digest: Int] = [:]
            var blobs: [Digest: Int64] = [:]
            for ref in refs {
                let (id, named) = try Self.resolveWithTag(ref, db: db)
                var tags: [Reference] = []
                if let named {
                    tags = [named]
                }
                if let i = byID[id] {
                    for t in tags where !images[i].tags.contains(t) { images[i].tags.append(t) }
                    continue
                }
                guard let r = try Row.fetchOne(db, sql: """
                    SELECT i.manifest_digest, b.media_type, b.size FROM images i JOIN blobs b ON b.digest = i.manifest_digest WHERE i.id = ?
                    """, arguments: [id.string]) else {
                    throw StrataError(.imageNotFound, "no such image: \(ref)")
                }
                let md = try Digest(r["manifest_digest"] as String)
                let layerRows = try Row.fetchAll(db, sql: """
                    SELECT il.blob_digest, b.size FROM image_layers il JOIN blobs b ON b.digest = il.blob_digest
                    WHERE il.image_id = ? ORDER BY il.position
                    """, arguments: [id.string])
                var layers: [Digest] = []
                for l in layerRows {
                    let d = try Digest(l["blob_digest"] as String)
                    layers.append(d)
                    blobs[d] = l["size"]
                }
                guard let configSize = try Int64.fetchOne(db, sql: "SELECT size FROM blobs WHERE digest = ?", arguments: [id.string]) else {
                    throw StrataError(.blobNotFound, "config blob \(id) is missing from the store")
                }
                blobs[id] = configSize
                let msize: Int64 = r["size"]
                blobs[md] = msize
                byID[id] = images.count
                images.append(SaveImage(id: id, manifestDigest: md, manifestMediaType: r["media_type"] ?? MediaType.ociManifest,
                                        manifestSize: msize, layers: layers, tags: tags))
            }
            return SavePlan(images: images, blobs: blobs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
    }

    private func indexJSON(_ plan: SavePlan, containerdNames: Bool) throws -> Data {
        var descriptors: [Descriptor] = []
        for image in plan.images {
            if image.tags.isEmpty {
                descriptors.append(Descriptor(mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifestSize))
            }
            for t in image.tags {
                var a = [AnnotationKey.refName: containerdNames ? (t.tag ?? "latest") : t.fullName]
                if containerdNames { a[AnnotationKey.containerdImageName] = t.fullName }
                descriptors.append(Descriptor(mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifestSize, annotations: a))
            }
        }
        return try CanonicalJSON.encode(Index(manifests: descriptors))
    }

    private func writeArchive(_ plan: SavePlan, format: ArchiveFormat, writer w: ArchiveWriter) throws {
        try w.addDirectory("blobs/")
        try w.addDirectory("blobs/sha256/")
        for (d, size) in plan.blobs {
            try w.addFile("blobs/\(d.algorithm)/\(d.encoded)", size: size, from: try blobs.open(d))
        }
        try w.addFile("index.json", data: try indexJSON(plan, containerdNames: format == .docker))
        if format == .docker {
            struct Entry: Encodable { var Config: String; var RepoTags: [String]?; var Layers: [String] }
            let entries = plan.images.map { i in
                Entry(Config: "blobs/sha256/\(i.id.encoded)", RepoTags: i.tags.isEmpty ? nil : i.tags.map(\.familiar),
                      Layers: i.layers.map { "blobs/sha256/\($0.encoded)" })
            }
            try w.addFile("manifest.json", data: try CanonicalJSON.encode(entries))
        }
        try w.addFile("oci-layout", data: Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
        if format == .docker {
            var repos: [String: [String: String]] = [:]
            for i in plan.images {
                for t in i.tags { repos[t.familiarName, default: [:]][t.tag ?? "latest"] = i.id.encoded }
            }
            try w.addFile("repositories", data: try CanonicalJSON.encode(repos))
        }
    }

    private func writeDirectory(_ plan: SavePlan, to url: URL) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDir) {
            let entries = (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
            guard isDir.boolValue, entries.isEmpty else {
                throw StrataError(.invalidArgument, "\(url.path) already exists and is not an empty directory")
            }
        }
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).strata-\(UUID().uuidString.prefix(8))")
        var ok = false
        defer { if !ok { try? fm.removeItem(at: tmp) } }
        do {
            try fm.createDirectory(at: tmp.appendingPathComponent("blobs/sha256"), withIntermediateDirectories: true)
            for (d, _) in plan.blobs {
                let dest = tmp.appendingPathComponent("blobs/sha256/\(d.encoded)").path
                let out = Glibc.open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                guard out >= 0 else { throw StrataError.system("cannot create \(dest)") }
                defer { close(out) }
                try blobs.open(d).forEachChunk { try writeAll(fd: out, $0, path: dest) }
            }
            try indexJSON(plan, containerdNames: false).write(to: tmp.appendingPathComponent("index.json"))
            try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: tmp.appendingPathComponent("oci-layout"))
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(.io, "cannot write \(url.path): \(error.localizedDescription)", cause: error)
        }
        // Every file of the layout durable (one syncfs) before the layout appears by its name.
        try syncFilesystem(of: tmp.path)
        CrashPoint.hit("save.before-rename")
        if fm.fileExists(atPath: url.path) { try? fm.removeItem(at: url) }
        if rename(tmp.path, url.path) != 0 {
            throw StrataError.system("cannot write \(url.path)")
        }
        ok = true
        try fsyncDirectory(url.deletingLastPathComponent().path)
    }
}
