import Foundation
import Strata

/// One build step's commit, as the classic builder makes it (``Store/commitBuildStep(_:)``).
struct BuildStepCommit: Sendable {
    /// The image the step starts from.
    var parent: Digest
    /// The temporary container whose changes become the step's layer; nil for a
    /// metadata-only step (an `empty_layer` history entry, no layer).
    var container: String?
    /// The new `config` object of the image config (Env, Cmd, …).
    var containerConfig: ContainerConfig
    /// The history entry's `created_by`, e.g. `/bin/sh -c #(nop)  ENV A=b`.
    var createdBy: String
    /// The image's and history entry's creation time.
    var created: Date
    /// SOURCE_DATE_EPOCH: layer entries newer than this get this mtime.
    var clampTime: Int64?
    /// The image author (MAINTAINER); nil keeps the parent's.
    var author: String?

    init(parent: Digest, container: String?, containerConfig: ContainerConfig, createdBy: String, created: Date, clampTime: Int64? = nil,
                author: String? = nil) {
        self.author = author
        self.parent = parent
        self.container = container
        self.containerConfig = containerConfig
        self.createdBy = createdBy
        self.created = created
        self.clampTime = clampTime
    }
}

extension Store {
    /// Commits one build step: the parent's config with `containerConfig` as its `config`
    /// object, a history entry, and the container's changes as a layer (none: `empty_layer`).
    /// The new image's parent is `parent`. Returns the image ID.
    func commitBuildStep(_ step: BuildStepCommit) async throws -> Digest {
        let containerConfig = step.containerConfig
        var c: ContainerInfo?
        if let id = step.container { c = try await container(id) }
        let loaded = try await commitImage(CommitPlan(
            parent: step.parent, container: c, created: step.created, createdBy: step.createdBy,
            author: step.author, comment: nil, tag: nil, clampTime: step.clampTime,
            editConfig: { $0 = containerConfig }))
        return loaded.id
    }

    /// Creates a build step's temporary container from `image` and returns its ID and
    /// mounted root filesystem.
    func createBuildContainer(from image: Digest) async throws -> (id: String, rootfs: BuildRootfs) {
        // A step sees the image's VOLUME paths through throwaway copies (BuildCommand.volumes),
        // not through volumes of the store.
        var options = ContainerOptions()
        options.imageVolumes = false
        options.initLayer = false
        let c = try await createContainer(from: image.string, options: options)
        do {
            let root = try await mountContainer(c.id)
            return (c.id, BuildRootfs(root: root))
        } catch {
            _ = try? await removeContainer(c.id, force: true)
            throw error
        }
    }

    /// Extracts a build context tar (plain, gzip or zstd; from `build -`) into a fresh
    /// directory inside the store, refusing paths that escape it. The caller removes it.
    func extractBuildContext(tar path: String) async throws -> String {
        let dir = buildScratchDirectory.appendingPathComponent("context-\(randomHex().prefix(16))")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try LayerUnpacker(root: dir.path, overlayWhiteouts: false, applyRootHeader: false).unpack(layer: path, name: "the build context")
        } catch {
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
        return dir.path
    }
}
