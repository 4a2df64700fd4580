import Foundation
import Strata

extension Download {
    /// `docker import URL`: downloads a root filesystem tarball (plain, gzip or zstd) into the
    /// store's scratch space, as ``fetch(_:to:maxSize:progress:)`` does (http or https, at most
    /// `maxSize`), and imports it with ``Store/importRootfs(from:reference:options:)``. The
    /// history comment defaults to `Imported from URL`, as dockerd's. Nothing is written
    /// outside the store, and the download is removed whatever happens.
    ///
    /// ```swift
    /// let image = try await Download.importRootfs("https://example.com/rootfs.tar.gz", into: store, reference: "base:1")
    /// ```
    public static func importRootfs(_ url: String, into store: Store, reference: String? = nil, options: ImportOptions = ImportOptions(),
                                    maxSize: Int64 = defaultMaxSize) async throws -> LoadedImage {
        if let reference { _ = try Reference(reference) }  // a bad name fails before the download
        let scratch = try store.makeScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.deletingLastPathComponent().appendingPathComponent("rootfs").path
        try await fetch(url, to: path, maxSize: maxSize)
        var o = options
        o.message = o.message ?? "Imported from \(url)"
        o.inputName = o.inputName ?? url
        return try await store.importRootfs(from: URL(fileURLWithPath: path), reference: reference, options: o)
    }
}
