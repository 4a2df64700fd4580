import CArchive
import Foundation

/// The extended attributes overlayfs keeps for itself, and where they live.
///
/// As root overlayfs reads and writes `trusted.overlay.*` (an opaque directory is
/// `trusted.overlay.opaque=y`). In a user namespace (rootless strata) `trusted.*` cannot be set,
/// so the overlay is mounted with `-o userxattr` and uses `user.overlay.*` instead. The store's
/// snapshots and writable layers carry the namespace of the mode they were made in: a root store
/// `trusted.overlay.`, a user's store `user.overlay.` (``Store/checkOwner`` keeps the two apart,
/// so one store never sees both). Whiteouts are 0/0 character devices in both; the kernel lets
/// an unprivileged process create that one device.
///
/// Overlay's own attributes are bookkeeping, not content: they never reach a layer tar
/// (commit), a copy (copy snapshotter, `cp`), and a layer may not set them (unpack), since
/// overlayfs would act on them: an `opaque` directory hides the layers below without a
/// whiteout, a `redirect` shows another directory's (or file's) lower contents in its place,
/// `metacopy` and `origin` change where a file's data is read from. Both namespaces count in
/// every mode (``isInternal(_:)``), so a root store and a user's store drop the same names and
/// unpack a layer to the same tree.
package enum OverlayXattr {
    /// Whether this process uses the user namespace's names (`user.overlay.*`, `userxattr`).
    package static let inUserNamespace: Bool = UserNamespace.isNested

    /// `trusted.overlay.` as root, `user.overlay.` in a user namespace.
    package static var prefix: String { inUserNamespace ? "user.overlay." : "trusted.overlay." }

    /// The attribute that makes a directory opaque (it hides the layers below it).
    package static var opaque: String { prefix + "opaque" }

    /// The attribute namespaces overlayfs acts on: `trusted.overlay.` in a mount made by the
    /// initial namespace's root, `user.overlay.` in a `userxattr` mount (a user namespace).
    package static let namespaces = ["trusted.overlay.", "user.overlay."]

    /// Whether `name` is overlayfs' own attribute, not content: either namespace, whatever
    /// mode this process is in (escaped names such as `trusted.overlay.overlay.*` included).
    /// A layer tar's attributes of these names are dropped at unpack (containerd drops every
    /// `trusted.*` one; Docker applies them as they come, so there a layer can steer the
    /// overlay mount); they are never written into a layer or a copy either.
    package static func isInternal(_ name: String) -> Bool {
        namespaces.contains { name.hasPrefix($0) }
    }

    /// Whether the directory at `path` is marked opaque.
    package static func isOpaque(path: String) -> Bool {
        var v: UInt8 = 0
        return getxattr(path.cPath, opaque, &v, 1) == 1 && v == UInt8(ascii: "y")
    }

    /// Whether the open directory `fd` is marked opaque.
    package static func isOpaque(fd: Int32) -> Bool {
        var v: UInt8 = 0
        return fgetxattr(fd, opaque, &v, 1) == 1 && v == UInt8(ascii: "y")
    }

    /// Marks the directory at `path` opaque; false when the system refuses.
    package static func markOpaque(path: String) -> Bool {
        setxattr(path.cPath, opaque, "y", 1, 0) == 0
    }
}
