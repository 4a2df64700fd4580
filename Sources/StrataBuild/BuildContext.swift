import Crypto
import Foundation
import OCI
import Strata

/// One path a COPY/ADD source expands to: a file, directory or symlink under a source root.
struct SourceEntry: Sendable, Hashable {
    /// Host path.
    var path: String
    /// Path relative to the matched source (empty for the source itself).
    var relative: String
    var isDirectory: Bool
}

/// A matched COPY/ADD source: the path as matched, whether it is a directory, and its
/// entries (the source itself first, then a directory's contents, parents before children).
struct MatchedSource: Sendable {
    /// Path relative to the source root, e.g. `src/app.go`.
    var name: String
    var isDirectory: Bool
    var entries: [SourceEntry]
}

/// A wildcard matched a symlink that leads to nothing in the tree (``SourceTree/match(_:)``).
struct DanglingMatch: Error {
    /// The match, relative to the tree's root.
    let path: String
}

/// A tree COPY/ADD read from: the build context (with its `.dockerignore`) or another
/// stage's / image's root filesystem. Every path stays inside `root`: `..` cannot climb
/// above it and symlinks are followed relative to it (law 5).
struct SourceTree: Sendable {
    /// Absolute host path of the root.
    let root: String
    /// The context's `.dockerignore` (nil for other stages' root filesystems).
    let ignore: DockerIgnore?
    /// How errors name the tree ("the build context", "stage build").
    let what: String

    init(root: String, ignore: DockerIgnore?, what: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.ignore = ignore
        self.what = what
    }

    /// Reads `.dockerignore` from a context directory (none: nothing excluded).
    static func context(at root: String) throws -> SourceTree {
        let path = root + "/.dockerignore"
        var ignore: DockerIgnore?
        if FileManager.default.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw StrataError(.io, "cannot read \(path)")
            }
            ignore = try DockerIgnore(text)
        }
        return SourceTree(root: root, ignore: ignore, what: "the build context")
    }

    /// Cleans a source path to components relative to the root; `..` above it is refused.
    static func components(_ path: String, what: String) throws -> [String] {
        var out: [String] = []
        for c in path.split(separator: "/") {
            if c.isEmpty || c == "." { continue }
            if c == ".." {
                guard !out.isEmpty else { throw StrataError(.unsafePath, "forbidden path outside \(what): \(path)") }
                out.removeLast()
                continue
            }
            out.append(String(c))
        }
        return out
    }

    private func excluded(_ rel: String) -> Bool {
        guard let ignore, !rel.isEmpty else { return false }
        return ignore.isExcluded(rel)
    }

    /// lstat as (isDirectory, isSymlink) or nil when missing.
    private func kind(_ path: String) -> (dir: Bool, link: Bool)? {
        var st = stat()
        guard lstat(RawName.cString(path), &st) == 0 else { return nil }
        return ((st.st_mode & S_IFMT) == S_IFDIR, (st.st_mode & S_IFMT) == S_IFLNK)
    }

    /// Whether the context holds `rel` as docker's (and buildah's) context walk sends it:
    /// not excluded, and not below a directory the walk skips whole; an excluded directory
    /// an exception may re-include something from is there (with only that inside).
    private func inContext(_ rel: String) -> Bool {
        guard let ignore, !rel.isEmpty else { return true }
        return !ignore.isOutOfContext(rel) || (ignore.isExcluded(rel) && ignore.mayReinclude(inside: rel))
    }

    /// Follows symlinks on `components` inside the root; returns the resolved components.
    /// With `inContextOnly`, nil when a path it goes through (a directory, a symlink, where a
    /// symlink leads, the end) is not in the context: the peers resolve a source in the
    /// context they were sent, so a symlink cannot reach what `.dockerignore` keeps out.
    func resolve(_ components: [String], followFinal: Bool = true, inContextOnly: Bool) throws -> [String]? {
        var done: [String] = []
        var pending = Array(components.reversed())
        var hops = 0
        while let c = pending.popLast() {
            if c.isEmpty || c == "." { continue }
            if c == ".." { _ = done.popLast(); continue }
            if inContextOnly, !inContext((done + [c]).joined(separator: "/")) { return nil }
            let candidate = root + "/" + (done + [c]).joined(separator: "/")
            if let k = kind(candidate), k.link, followFinal || !pending.isEmpty {
                hops += 1
                guard hops <= 255 else { throw StrataError(.unsafePath, "too many levels of symbolic links in \(what)") }
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: candidate)) ?? ""
                if target.hasPrefix("/") { done = [] }
                pending += target.split(separator: "/").map(String.init).reversed()
                continue
            }
            done.append(c)
        }
        return done
    }

    /// Follows symlinks on `components` inside the root; returns the resolved components.
    func resolve(_ components: [String], followFinal: Bool = true) throws -> [String] {
        try resolve(components, followFinal: followFinal, inContextOnly: false) ?? []
    }

    /// Expands COPY/ADD source patterns (Go `filepath.Match` globs per component: `*`, `?`,
    /// `[...]`) to the matching paths and their contents, minus what `.dockerignore` excludes.
    ///
    /// A wildcard's match that is a symlink leading to nothing in the tree (dangling, or to
    /// what `.dockerignore` keeps out) throws ``DanglingMatch``: BuildKit and buildah follow
    /// every match and fail on it, where a named missing path is simply not found.
    func match(_ pattern: String) throws -> [MatchedSource] {
        let comps = try Self.components(pattern, what: what)
        let isGlob = pattern.contains(where: { "*?[".contains($0) })
        var names: [[String]] = [[]]
        for c in comps {
            var next: [[String]] = []
            for prefix in names {
                if c.contains(where: { "*?[".contains($0) }) {
                    let dirComps = try resolve(prefix)
                    let dir = dirComps.isEmpty ? root : root + "/" + dirComps.joined(separator: "/")
                    let children = rawDirectoryEntries(dir).sorted()
                    for n in children where fnmatch(c, n, 0) == 0 {
                        next.append(prefix + [n])
                    }
                } else {
                    next.append(prefix + [c])
                }
            }
            names = next
        }
        var out: [MatchedSource] = []
        for n in names {
            let rel = n.joined(separator: "/")
            // Excluded, inside a directory the context walk skips whole, or reached through a
            // symlink that leads to such a path: not in the context.
            let resolved = try resolve(n, inContextOnly: true)
            let full = resolved.map { $0.isEmpty ? root : root + "/" + $0.joined(separator: "/") }
            guard let resolved, let full, let k = kind(full) else {
                if isGlob, inContext(rel), let link = try resolve(n, followFinal: false, inContextOnly: true),
                   kind(root + "/" + link.joined(separator: "/"))?.link == true {
                    throw DanglingMatch(path: rel)
                }
                continue
            }
            let resolvedRel = resolved.joined(separator: "/")
            if k.dir {
                // What .dockerignore keeps out is judged where the files are, not by the path
                // written (a symlink to a directory).
                var entries = [SourceEntry(path: full, relative: "", isDirectory: true)]
                try walk(full, rel: "", contextRel: resolvedRel, into: &entries)
                if excluded(resolvedRel) && entries.count == 1 { continue }
                out.append(MatchedSource(name: rel, isDirectory: true, entries: entries))
            } else {
                if excluded(resolvedRel) { continue }
                out.append(MatchedSource(name: rel, isDirectory: false, entries: [SourceEntry(path: full, relative: "", isDirectory: false)]))
            }
        }
        return out
    }

    /// A directory's contents, sorted, parents first; symlinks are not followed.
    private func walk(_ dir: String, rel: String, contextRel: String, into entries: inout [SourceEntry]) throws {
        let names = rawDirectoryEntries(dir).sorted()
        for name in names {
            let full = dir + "/" + name
            let r = rel.isEmpty ? name : rel + "/" + name
            let cr = contextRel.isEmpty ? r : contextRel + "/" + r
            guard let k = kind(full) else { continue }
            let isExcluded = excluded(cr)
            if k.dir {
                if isExcluded && !(ignore?.mayReinclude(inside: cr) ?? false) { continue }  // docker skips it whole
                let mark = entries.count
                entries.append(SourceEntry(path: full, relative: r, isDirectory: true))
                try walk(full, rel: r, contextRel: contextRel, into: &entries)
                // An excluded directory stays only for re-included children.
                if isExcluded && entries.count == mark + 1 { entries.removeLast() }
            } else if !isExcluded {
                entries.append(SourceEntry(path: full, relative: r, isDirectory: false))
            }
        }
    }

    /// A checksum over the entries' paths, types, modes, owners, sizes, link targets,
    /// xattrs and contents (not times), as `file:<hex>`/`dir:<hex>` in Docker's history.
    static func checksum(_ sources: [MatchedSource]) throws -> String {
        var h = SHA256()
        for s in sources {
            for e in s.entries {
                h.update(data: Data((s.name + "\u{0}" + e.relative + "\u{0}").utf8))
                h.update(data: Data(try describe(e.path).utf8))
            }
        }
        return OCI.Digest.sha256(finalizing: h).encoded
    }

    /// One entry's metadata and content hash, as one line.
    private static func describe(_ path: String) throws -> String {
        var st = stat()
        guard lstat(RawName.cString(path), &st) == 0 else { throw StrataError.system("cannot stat \(RawName.escaped(path))") }
        var line = "\(st.st_mode) \(st.st_uid) \(st.st_gid) \(st.st_size)"
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(RawName.cString(path), &buf, Int(PATH_MAX))
            line += " -> " + (n >= 0 ? RawName.decode(buf[0..<n].map { UInt8(bitPattern: $0) }) : "")
        case S_IFREG:
            line += " " + (try fileHash(path))
        default:
            break
        }
        line += " " + xattrs(path)
        return line + "\n"
    }

    static func fileHash(_ path: String) throws -> String {
        let fd = open(RawName.cString(path), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StrataError.system("cannot read \(RawName.escaped(path))") }
        defer { close(fd) }
        var h = SHA256()
        let size = 1 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw StrataError.system("cannot read \(path)")
            }
            if n == 0 { break }
            h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return OCI.Digest.sha256(finalizing: h).encoded
    }

    private static func xattrs(_ path: String) -> String {
        BuildRootfs.extendedAttributes(path).map { $0.name + "=" + $0.value.map { String(format: "%02x", $0) }.joined() }.joined(separator: ";")
    }
}
