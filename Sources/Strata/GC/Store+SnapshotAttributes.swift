import CArchive
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Store {
    /// overlayfs attributes in the store's snapshots that strata itself never writes: anything
    /// in either overlay namespace but the opaque mark (``OverlayXattr/opaque`` = `y` on a
    /// directory). A strata before the fix of issue #19 applied a layer's `trusted.overlay.*`
    /// attributes in a root store, and overlayfs obeys them in the lowers it mounts (a redirect,
    /// a metacopy file, an opaque mark in the other namespace). One problem per snapshot, kind
    /// `overlay-attribute`, naming the first few paths and names; `repair` removes them in
    /// place, which leaves what unpacking the layer again gives. A layer's own
    /// `trusted.overlay.opaque=y` cannot be told from strata's and is not reported.
    func foreignOverlayAttributes(snapshots ids: Set<String>) -> [FsckProblem] {
        let snapDir = paths.root.appendingPathComponent("snapshots").path
        var problems: [FsckProblem] = []
        for id in ids.sorted() {
            let fs = snapDir + "/" + id + "/fs"
            guard FileMeta.of(fs)?.kind == .directory else { continue }
            var found: [String] = []
            Self.walkTree(fs, "") { rel, isDirectory in
                let path = rel.isEmpty ? fs : fs + "/" + rel
                for name in Self.xattrNames(path) where OverlayXattr.isInternal(name) {
                    if isDirectory, name == OverlayXattr.opaque, Self.xattrValue(path, name) == [UInt8(ascii: "y")] { continue }
                    found.append("/\(RawName.escaped(rel)) \(name)")
                }
            }
            guard !found.isEmpty else { continue }
            let shown = found.prefix(5).joined(separator: ", ") + (found.count > 5 ? " and \(found.count - 5) more" : "")
            problems.append(FsckProblem(kind: "overlay-attribute", subject: "snapshots/\(id)",
                detail: "overlayfs attributes a layer set (unpacked by an earlier strata, which applied them): \(shown)"))
        }
        return problems
    }

    /// Removes what ``foreignOverlayAttributes(snapshots:)`` reports from the snapshot `subject`
    /// (`snapshots/<id>`); false when one could not be removed.
    func removeForeignOverlayAttributes(snapshot subject: String) -> Bool {
        let fs = paths.root.appendingPathComponent(subject).path + "/fs"
        var ok = true
        Self.walkTree(fs, "") { rel, isDirectory in
            let path = rel.isEmpty ? fs : fs + "/" + rel
            for name in Self.xattrNames(path) where OverlayXattr.isInternal(name) {
                if isDirectory, name == OverlayXattr.opaque, Self.xattrValue(path, name) == [UInt8(ascii: "y")] { continue }
                if lremovexattr(path.cPath, name) != 0 { ok = false }
            }
        }
        return ok
    }

    /// Calls `body` with every path under `root` (relative; `""` is the root) and whether it is
    /// a directory; symlinks are not followed.
    static func walkTree(_ root: String, _ rel: String, _ body: (String, Bool) -> Void) {
        let path = rel.isEmpty ? root : root + "/" + rel
        let isDirectory = FileMeta.of(path)?.kind == .directory
        body(rel, isDirectory)
        guard isDirectory else { return }
        for name in rawDirectoryEntries(path) { walkTree(root, rel.isEmpty ? name : rel + "/" + name, body) }
    }

    static func xattrNames(_ path: String) -> [String] {
        var names = [CChar](repeating: 0, count: 65536)
        let n = llistxattr(path.cPath, &names, names.count)
        guard n > 0 else { return [] }
        return names[0..<n].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }

    static func xattrValue(_ path: String, _ name: String) -> [UInt8]? {
        var value = [UInt8](repeating: 0, count: 256)
        let n = lgetxattr(path.cPath, name, &value, value.count)
        return n >= 0 ? Array(value[0..<n]) : nil
    }
}
