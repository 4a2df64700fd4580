import Foundation

/// The volumes a new container mounts, as dockerd makes them: the `-v` mounts asked for, then
/// an anonymous volume for each of the image's VOLUME paths that none of them covers; and
/// the image's content at a volume's path copied into the volume when the volume is empty.
extension Store {
    /// The mounts of a container: `requested` (one per destination, counting the `tmpfs`
    /// ones; a second is an `.invalidArgument` error, as dockerd's "Duplicate mount point"),
    /// then a new anonymous volume for each path of `imageVolumes` that no mount already has.
    static func plannedMounts(_ requested: [VolumeMount], tmpfs: [String] = [], imageVolumes: [String]) throws -> [VolumeMount] {
        var seen = Set<String>()
        for destination in requested.map(\.destination) + tmpfs {
            guard seen.insert(destination).inserted else {
                throw StrataError(.invalidArgument, "duplicate mount point: \(destination)")
            }
        }
        var mounts = requested
        for path in imageVolumes {
            // An image's VOLUME is whatever its builder wrote: cleaned here, never trusted.
            guard path.hasPrefix("/"), let clean = LayerEntry.clean(path).map({ "/" + $0 }) else { continue }
            if seen.insert(clean).inserted { mounts.append(VolumeMount(anonymousAt: clean)) }
        }
        return mounts
    }

    /// Makes the volumes of `mounts` for a container whose root filesystem is at `rootfs`
    /// (mounted, its writable layer still empty): each that is missing, an anonymous one (its
    /// name already chosen) with ``VolumeInfo/anonymousLabel``. Then every volume that is
    /// empty gets what the image has at its path, with the owner and mode of that directory
    /// (dockerd's and podman's copy-up). `made` gets the volumes this call made, for the
    /// caller to remove should the create fail; a volume this call was filling when it failed
    /// is emptied again, so the next container copies afresh.
    func makeVolumes(_ mounts: [VolumeMount], rootfs: String, made: inout [String]) async throws {
        // As dockerd: an anonymous volume over a file the image has cannot be mounted. Checked
        // for all before any volume is made.
        for m in mounts where m.anonymous == true {
            let target = try ScopedPath.resolve(root: rootfs, path: m.destination, followFinal: true)
            if let meta = FileMeta.of(target), meta.kind != .directory {
                throw StrataError(.invalidArgument, "cannot mount volume over existing file, file exists \(m.destination)")
            }
        }
        let existing = Set(try await volumes().map(\.name))
        for m in mounts where !m.isBind {
            if !existing.contains(m.source) {
                try await createVolume(m.source, labels: m.anonymous == true ? [VolumeInfo.anonymousLabel: ""] : [:])
                made.append(m.source)
            }
            if !m.isNoCopy { try await copyImageContent(rootfs: rootfs, path: m.destination, into: m.source) }
        }
    }

    /// Copies the directory at `path` in `rootfs` (resolved inside it) into volume `name`
    /// when the volume is empty; nothing when the image has no directory there.
    private func copyImageContent(rootfs: String, path: String, into name: String) async throws {
        let source = try ScopedPath.resolve(root: rootfs, path: path, followFinal: true)
        guard let meta = FileMeta.of(source), meta.kind == .directory else { return }
        let data = volumeData(name)
        guard directoryEntries(data).isEmpty else { return }
        try await explainingDiskFull("copying \(path) of the image into volume \(name)", estimate: { treeSize(source) }) {
            do {
                try TreeCopier(whiteouts: false).apply(layer: source, to: data)
                try TreeCopier().copyMetadata(from: source, to: data, meta: meta)
                try syncFilesystem(of: data)
            } catch {
                for entry in directoryEntries(data) { removeTree(data + "/" + entry) }
                throw error
            }
        }
    }
}
