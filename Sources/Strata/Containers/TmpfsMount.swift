import Foundation

/// A tmpfs a container's runs get at a path (`docker create --tmpfs /run:size=64m`,
/// `--mount type=tmpfs`): empty at each start, in memory, gone when the run ends.
///
/// The mount options are dockerd's: `noexec,nosuid,nodev` unless the given ones say
/// otherwise (`exec` over `noexec`, the last of two opposites winning), then `size=`, `mode=`
/// and the rest of what the kernel's tmpfs takes.
///
/// ```swift
/// let run = try TmpfsMount(destination: "/run", options: "size=64m,mode=755")
/// run.mountOptions   // ["noexec", "nosuid", "nodev", "size=64m", "mode=755"]
/// ```
public struct TmpfsMount: Sendable, Codable, Hashable {
    /// An absolute path in the container, cleaned.
    public var destination: String
    /// The options as given (`size=64m,mode=1777`); empty for none.
    public var options: String

    /// The flags whose opposite a given option replaces, and the tmpfs parameters the kernel
    /// takes (with a value). Anything else is refused, not passed on to fail at start.
    static let flags: [String: String] = ["rw": "ro", "ro": "rw", "exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
                                          "dev": "nodev", "nodev": "dev", "atime": "noatime", "noatime": "atime", "relatime": "norelatime",
                                          "norelatime": "relatime", "strictatime": "nostrictatime", "nostrictatime": "strictatime",
                                          "diratime": "nodiratime", "nodiratime": "diratime", "sync": "async", "async": "sync"]
    static let parameters: Set<String> = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol"]

    /// Checks `destination` (absolute, not the root) and every option.
    public init(destination: String, options: String = "") throws {
        self.destination = try VolumeMount.destination(destination, in: destination + (options.isEmpty ? "" : ":" + options))
        for o in options.split(separator: ",") {
            let key = o.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let valued = o.contains("=")
            guard valued ? Self.parameters.contains(key) : Self.flags[String(o)] != nil else {
                throw StrataError(.invalidArgument, "invalid tmpfs option \"\(o)\" for \(destination)")
            }
            if key == "mode", (UInt32(o.dropFirst(5), radix: 8) ?? .max) > 0o7777 {
                throw StrataError(.invalidArgument, "invalid tmpfs mode \"\(o.dropFirst(5))\" for \(destination): use octal, at most 7777")
            }
        }
        self.options = options
    }

    /// Parses `/path[:OPTIONS]` (`--tmpfs`).
    public init(parsing s: String) throws {
        let parts = s.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        try self.init(destination: parts[0], options: parts.count > 1 ? parts[1] : "")
    }

    /// The runtime's mount options: dockerd's defaults with the given ones over them.
    public var mountOptions: [String] {
        var out = ["noexec", "nosuid", "nodev"]
        for o in options.split(separator: ",").map(String.init) {
            if let opposite = Self.flags[o] { out.removeAll { $0 == opposite || $0 == o } }
            else if let key = o.split(separator: "=").first { out.removeAll { $0.hasPrefix(key + "=") } }
            out.append(o)
        }
        return out
    }
}
