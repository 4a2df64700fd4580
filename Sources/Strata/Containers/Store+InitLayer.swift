import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// dockerd's init layer: a small layer of the container's own between its image and its
/// writable layer, holding what the runtime mounts over (`/proc`, `/sys`, `/dev/pts`,
/// `/dev/shm`, `/dev/console`, `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`), the
/// `/.dockerenv` marker and `/etc/mtab` → `/proc/mounts`. Since those exist below the
/// writable layer, runc makes no mount points in it: `diff`, `commit` and the writable
/// layer's size show only what the container's process changed, as under dockerd, even for
/// an image without /proc or /etc. Each run binds the container's own hostname, hosts and
/// resolv.conf files over the empty ones (``resolutionFiles(for:over:)``).
extension Store {
    /// The entries, as dockerd's `initlayer.Setup` makes them: directories 0755, empty files
    /// 0755, the one symlink; parents made as needed (0755, root's).
    static let initLayerEntries: [(path: String, target: String?, directory: Bool)] = [
        ("/dev/pts", nil, true), ("/dev/shm", nil, true), ("/proc", nil, true), ("/sys", nil, true),
        ("/.dockerenv", nil, false), ("/etc/resolv.conf", nil, false), ("/etc/hosts", nil, false),
        ("/etc/hostname", nil, false), ("/dev/console", nil, false), ("/etc/mtab", "/proc/mounts", false),
    ]

    /// Makes the container's init layer at `dir`, every entry and directory fsynced before
    /// the container's row can name it (law 1). With `tmp`, also /tmp (1777): the mount point
    /// of the tmpfs a run gets there, for an image that has none.
    func makeInitLayer(at dir: String, tmp: Bool = false) throws {
        var made: [String] = [dir]
        func mkdirs(_ path: String) throws {
            guard FileMeta.of(path) == nil else { return }
            try mkdirs((path as NSString).deletingLastPathComponent)
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw StrataError.system("cannot create \(path)") }
            chmod(path, 0o755)
            made.append(path)
        }
        try mkdirs(dir)
        for e in Self.initLayerEntries {
            let full = dir + e.path
            try mkdirs(e.directory ? full : (full as NSString).deletingLastPathComponent)
            if let target = e.target {
                guard symlink(target, full) == 0 else { throw StrataError.system("cannot create \(full)") }
            } else if !e.directory {
                let fd = Glibc.open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
                guard fd >= 0 else { throw StrataError.system("cannot create \(full)") }
                fchmod(fd, 0o755)
                fsync(fd)
                Glibc.close(fd)
            }
        }
        if tmp {
            guard mkdir(dir + "/tmp", 0o1777) == 0 else { throw StrataError.system("cannot create \(dir)/tmp") }
            chmod(dir + "/tmp", 0o1777)
            made.append(dir + "/tmp")
        }
        for d in made.reversed() { try fsyncDirectory(d) }
        try fsyncDirectory((dir as NSString).deletingLastPathComponent)
    }

    /// The layers a container's root is made of, bottom first: its image's, then its init
    /// layer (a container made before strata had one has none).
    func containerLowers(_ c: ContainerInfo) async throws -> [String] {
        var lowers = try await snapshotDirectories(of: c.imageID)
        let initLayer = containerDirs(c.id).initLayer
        if FileMeta.of(initLayer) != nil { lowers.append(initLayer) }
        return lowers
    }

    /// The files a run binds over its init layer's empty ones, as dockerd gives every
    /// container: `/etc/hostname` (its hostname), `/etc/hosts` (the host's on the host's
    /// network, else dockerd's localhost lines) and `/etc/resolv.conf` (the host's), written
    /// into the container's directory. A path `mounts` covers already is left to it.
    func resolutionFiles(for c: ContainerInfo, hostNetwork: Bool, over mounts: [RuntimeSpec.Bind]) throws -> [RuntimeSpec.Bind] {
        let base = containerDirs(c.id).base
        var out = try hostNetworkFiles(in: base, over: mounts)
        if !hostNetwork {
            out.removeAll { $0.destination == "/etc/hosts" }
            if !mounts.contains(where: { $0.destination == "/etc/hosts" }) {
                let hosts = base.appendingPathComponent("etc-hosts")
                try Self.writeRuntimeFile(Data(Self.localhostHosts.utf8), to: hosts)
                out.append((hosts.path, "/etc/hosts", false))
            }
        }
        if !mounts.contains(where: { $0.destination == "/etc/hostname" }) {
            let name = base.appendingPathComponent("etc-hostname")
            try Self.writeRuntimeFile(Data((c.effectiveHostname + "\n").utf8), to: name)
            out.append((name.path, "/etc/hostname", false))
        }
        return out
    }

    /// dockerd's /etc/hosts for a container with no network of its own to name.
    static let localhostHosts = """
        127.0.0.1\tlocalhost
        ::1\tlocalhost ip6-localhost ip6-loopback
        fe00::0\tip6-localnet
        ff00::0\tip6-mcastprefix
        ff02::1\tip6-allnodes
        ff02::2\tip6-allrouters

        """

    static func writeRuntimeFile(_ data: Data, to url: URL) throws {
        do { try data.write(to: url) } catch {
            throw StrataError(.io, "cannot write \(url.path): \(error.localizedDescription)", cause: error)
        }
    }
}
