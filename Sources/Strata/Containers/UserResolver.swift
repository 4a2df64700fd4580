import CArchive
import Foundation

/// The identity a container's process runs with: what `USER` means inside an image.
public struct ResolvedUser: Sendable, Hashable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32
    /// The runtime spec's `user.additionalGids`: the primary gid, then every group of the
    /// image's /etc/group that lists the user by name (Docker's rule; only when the spec names
    /// no group).
    public var additionalGids: [UInt32]

    public init(uid: UInt32, gid: UInt32, additionalGids: [UInt32] = []) {
        self.uid = uid
        self.gid = gid
        self.additionalGids = additionalGids
    }

    public var description: String { "\(uid):\(gid)" }
}

/// Resolves user specs against an image's root filesystem, reading the image's own
/// /etc/passwd and /etc/group — never the host's.
///
/// Both files are opened with every path component resolved inside `root` as if it were `/`
/// (chroot semantics): a symlink, absolute or relative, and `..` can never lead out of it
/// (law 5). The kernel does that walk where it can (`openat2` with `RESOLVE_IN_ROOT`);
/// otherwise ``RootedOpen`` walks one component at a time on directory descriptors.
///
/// `USER` follows Docker (runc's `libcontainer/user`):
///
/// | spec | result |
/// |---|---|
/// | empty | 0:0 |
/// | `uid` | that uid; gid from the passwd entry with that uid, else 0 |
/// | `name` | uid and gid of the passwd entry; none: error |
/// | `…:gid` | that gid (listed in /etc/group or not) |
/// | `…:group` | the gid of the group entry; none: error |
///
/// ```swift
/// let user = try UserResolver(root: rootfs).resolve("app")   // 1000:1000, groups [1000, 50]
/// ```
public struct UserResolver: Sendable {
    /// The host path of the root filesystem.
    public let root: String
    /// Open with the userspace walk even where openat2 works (tests of the fallback).
    var walkOnly = false

    public init(root: String) { self.root = root }

    /// Highest uid or gid Docker accepts (runc's `maxId`).
    public static let maxID: UInt32 = 0x7FFF_FFFF

    /// Resolves a `USER` spec (`uid`, `uid:gid`, `name`, `name:group`, `uid:group`,
    /// `name:gid`; empty or nil: root) as `run` and build's RUN use it.
    public func resolve(_ spec: String?) throws -> ResolvedUser {
        guard let spec, !spec.isEmpty else { return ResolvedUser(uid: 0, gid: 0, additionalGids: [0]) }
        let (userPart, groupPart) = Self.split(spec)
        var uid: UInt32 = 0, gid: UInt32 = 0
        var matchedName: String?
        let numericUser = try Self.number(userPart, what: "uid")
        if !userPart.isEmpty {
            if let entry = try passwdEntry(name: numericUser == nil ? userPart : nil, uid: numericUser) {
                (uid, gid, matchedName) = (entry.uid, entry.gid, entry.name)
            } else if let n = numericUser {
                uid = n  // a numeric uid needs no passwd entry; its gid stays 0
            } else {
                throw Self.noUser(userPart)
            }
        }
        var supplementary: [UInt32] = []
        if let groupPart, !groupPart.isEmpty {
            gid = try group(groupPart)
        } else if let matchedName {
            supplementary = try groups(listing: matchedName)
        }
        var all: [UInt32] = []
        for g in [gid] + supplementary where !all.contains(g) { all.append(g) }
        return ResolvedUser(uid: uid, gid: gid, additionalGids: all)
    }

    /// Resolves a `COPY --chown`/`ADD --chown` spec as buildah and BuildKit do: a numeric uid
    /// given alone is also the gid (whatever /etc/passwd says); a user name alone takes its
    /// /etc/passwd group; an empty user part is root and an empty group part is "no group".
    public func owner(_ spec: String) throws -> (uid: UInt32, gid: UInt32) {
        guard !spec.isEmpty else { return (0, 0) }
        let (userPart, groupPart) = Self.split(spec)
        var uid: UInt32, gid: UInt32
        if userPart.isEmpty {
            (uid, gid) = (0, 0)
        } else if let n = try Self.number(userPart, what: "uid") {
            (uid, gid) = (n, n)
        } else if let entry = try passwdEntry(name: userPart, uid: nil) {
            (uid, gid) = (entry.uid, entry.gid)
        } else {
            throw Self.noUser(userPart)
        }
        if let groupPart, !groupPart.isEmpty { gid = try group(groupPart) }
        return (uid, gid)
    }

    /// Checks a user spec before anything is recorded with it (`create -u`): numbers within
    /// Docker's range, no control characters. Names are looked up when a run starts.
    public static func checkSpec(_ spec: String) throws {
        guard !spec.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw StrataError(.invalidArgument, "invalid user \"\(spec.debugDescription.dropFirst().dropLast())\": it holds a control character")
        }
        let (userPart, groupPart) = split(spec)
        _ = try number(userPart, what: "uid")
        if let groupPart { _ = try number(groupPart, what: "gid") }
    }

    // MARK: Specs and entries

    private static func split(_ spec: String) -> (String, String?) {
        guard let colon = spec.firstIndex(of: ":") else { return (spec, nil) }
        return (String(spec[..<colon]), String(spec[spec.index(after: colon)...]))
    }

    /// The number a spec part names, nil for a name; out of Docker's range is an error.
    private static func number(_ s: String, what: String) throws -> UInt32? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        guard let n = UInt64(s), n <= UInt64(maxID) else {
            throw StrataError(.invalidArgument, "\(what) \(s) is out of range: uids and gids must be in range 0-\(maxID)")
        }
        return UInt32(n)
    }

    private static func noUser(_ name: String) -> StrataError {
        StrataError(.userNotFound, "unable to find user \(name): no matching entries in passwd file")
    }

    private struct Entry {
        var name: String
        var uid: UInt32
        var gid: UInt32
    }

    /// The first /etc/passwd entry with that name (or uid). Lines whose uid is not a number
    /// are skipped: they never match (runc would read them as uid 0).
    private func passwdEntry(name: String?, uid: UInt32?) throws -> Entry? {
        var found: Entry?
        try forEachEntry(of: "/etc/passwd") { f in
            guard f.count >= 3, let u = Self.id(f[2]) else { return true }
            guard name.map({ $0 == f[0] }) ?? (u == uid) else { return true }
            found = Entry(name: String(f[0]), uid: u, gid: f.count >= 4 ? Self.id(f[3]) ?? 0 : 0)
            return false
        }
        return found
    }

    /// The gids of `--group-add` specs, in order: each a number, or a group of the image's
    /// /etc/group by name (an error when none, as dockerd's).
    public func groupIDs(_ specs: [String]) throws -> [UInt32] {
        try specs.map { try group($0) }
    }

    /// The gid a group spec names: a group entry by name (an error when none), or a number.
    private func group(_ spec: String) throws -> UInt32 {
        if let n = try Self.number(spec, what: "gid") { return n }
        var gid: UInt32?
        try forEachEntry(of: "/etc/group") { f in
            guard f.count >= 3, f[0] == spec, let g = Self.id(f[2]) else { return true }
            gid = g
            return false
        }
        guard let gid else {
            throw StrataError(.userNotFound, "unable to find group \(spec): no matching entries in group file")
        }
        return gid
    }

    /// The gids of every /etc/group entry whose member list names `user`, in file order.
    private func groups(listing user: String) throws -> [UInt32] {
        var out: [UInt32] = []
        try forEachEntry(of: "/etc/group") { f in
            if f.count >= 4, let g = Self.id(f[2]), f[3].split(separator: ",").contains(where: { $0 == user }) { out.append(g) }
            return true
        }
        return out
    }

    private static func id(_ s: Substring) -> UInt32? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = UInt32(s), n <= maxID else { return nil }
        return n
    }

    /// Calls `body` with the colon-separated fields of each non-empty line of a file in the
    /// image until it returns false. A missing file has no lines.
    private func forEachEntry(of path: String, _ body: ([Substring]) throws -> Bool) throws {
        guard let fd = try RootedOpen.open(path, in: root, walkOnly: walkOnly) else { return }
        defer { close(fd) }
        try RootedOpen.forEachLine(fd, name: path) { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { return true }
            return try body(trimmed.split(separator: ":", omittingEmptySubsequences: false))
        }
    }
}

/// Opening a file inside a root directory as if it were `/`.
enum RootedOpen {
    /// Symlinks followed on one path at most, as the kernel's limit.
    static let maxLinks = 40

    /// Opens the regular file `path` (absolute, in the image) inside `root` for reading.
    /// Returns nil when it does not exist (or a component on the way is missing or not a
    /// directory); a symlink loop, a file that is not regular and other failures are errors.
    static func open(_ path: String, in root: String, walkOnly: Bool = false) throws -> Int32? {
        let rootFD = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw StrataError.system("cannot open the root filesystem \(root)") }
        defer { close(rootFD) }
        var fd: Int32 = -1, err: Int32 = ENOSYS
        if !walkOnly {
            for _ in 0..<8 {
                fd = strata_open_in_root(rootFD, path)
                err = fd < 0 ? errno : 0
                if err != EAGAIN && err != EINTR { break }  // EAGAIN: a rename raced the walk
            }
        }
        // No openat2 (an old kernel, a seccomp filter that refuses it): walk in userspace.
        if fd < 0, [ENOSYS, EPERM, EINVAL, E2BIG, EAGAIN].contains(err) { (fd, err) = walk(path, rootFD: rootFD) }
        if fd < 0 {
            if err == ENOENT || err == ENOTDIR { return nil }
            let why = err == ELOOP ? "too many levels of symbolic links" : String(cString: strerror(err))
            throw StrataError(.io, "cannot open \(path) in the image: \(why)")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw StrataError(.corruptData, "\(path) in the image is not a regular file")
        }
        return fd
    }

    /// Resolves `path` one component at a time from `rootFD`: each directory is held open, a
    /// symlink's target is spliced into the components still to walk (an absolute one
    /// restarts from the root), and `..` goes back to the directory held before (never above
    /// the root). Returns (fd, 0) or (-1, errno).
    static func walk(_ path: String, rootFD: Int32) -> (Int32, Int32) {
        var dirs: [Int32] = []  // directories below the root, innermost last
        defer { for d in dirs { close(d) } }
        var pending = components(path).reversed() as [String]
        var links = 0
        while let c = pending.popLast() {
            if c == ".." {
                if let d = dirs.popLast() { close(d) }
                continue
            }
            let parent = dirs.last ?? rootFD
            let fd = strata_open_component(parent, c)
            guard fd >= 0 else { return (-1, errno) }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                let e = errno
                close(fd)
                return (-1, e)
            }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                links += 1
                var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(fd, "", &buf, buf.count)
                let e = errno
                close(fd)
                guard links <= maxLinks else { return (-1, ELOOP) }
                guard n >= 0 else { return (-1, e) }
                let target = String(decoding: buf[0..<n], as: UTF8.self)
                if target.hasPrefix("/") {
                    for d in dirs { close(d) }
                    dirs = []
                }
                pending += components(target).reversed()
            case S_IFDIR where !pending.isEmpty:
                dirs.append(fd)
            default:
                close(fd)
                guard pending.isEmpty else { return (-1, ENOTDIR) }
                // The last component, not a symlink: open it for reading, still not following
                // one (a swap since the check fails with ELOOP rather than leaving the root).
                let r = strata_open_final(parent, c)
                return r < 0 ? (-1, errno) : (r, 0)
            }
        }
        // The path ends at a directory (or is the root itself).
        let r = openat(dirs.last ?? rootFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        return r < 0 ? (-1, errno) : (r, 0)
    }

    private static func components(_ path: String) -> [String] {
        path.split(separator: "/").map(String.init).filter { $0 != "." }
    }

    /// Reads `fd` to its end and calls `body` per line (without the newline) until it returns
    /// false; memory stays bounded by the longest line (at most 1 MiB).
    static func forEachLine(_ fd: Int32, name: String, _ body: (String) throws -> Bool) throws {
        let maxLine = 1 << 20
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StrataError.system("cannot read \(name) in the image")
            }
            if n == 0 { break }
            var start = 0
            for i in 0..<n where buf[i] == 0x0A {
                pending += buf[start..<i]
                start = i + 1
                guard try body(String(decoding: pending, as: UTF8.self)) else { return }
                pending.removeAll(keepingCapacity: true)
            }
            pending += buf[start..<n]
            guard pending.count <= maxLine else {
                throw StrataError(.corruptData, "\(name) in the image has a line longer than \(maxLine) bytes")
            }
        }
        if !pending.isEmpty { _ = try body(String(decoding: pending, as: UTF8.self)) }
    }
}
