#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An OS/architecture pair with an optional variant, as in `linux/arm64/v8`.
public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?
    public var osVersion: String?

    enum CodingKeys: String, CodingKey {
        case os, architecture, variant
        case osVersion = "os.version"
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch[/variant]`.
    public init(parsing s: String) throws {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } }) else {
            throw StrataError(.invalidArgument, "invalid platform \"\(s)\": expected os/arch[/variant]")
        }
        self.init(os: parts[0].lowercased(), architecture: Self.normalizeArch(parts[1].lowercased()), variant: parts.count == 3 ? parts[2].lowercased() : nil)
    }

    /// The platform this process runs on.
    public static var host: Platform {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        switch machine {
        case "x86_64", "amd64": return Platform(os: "linux", architecture: "amd64")
        case "aarch64", "arm64": return Platform(os: "linux", architecture: "arm64")
        case "armv7l": return Platform(os: "linux", architecture: "arm", variant: "v7")
        case "s390x", "ppc64le", "riscv64": return Platform(os: "linux", architecture: machine)
        default: return Platform(os: "linux", architecture: machine)
        }
    }

    static func normalizeArch(_ a: String) -> String {
        switch a {
        case "x86_64", "x86-64": return "amd64"
        case "aarch64": return "arm64"
        default: return a
        }
    }

    /// Whether an image for `other` runs on `self`. A missing variant on either side matches
    /// the architecture's default (arm64 → v8).
    public func matches(_ other: Platform) -> Bool {
        guard os == other.os, Self.normalizeArch(architecture) == Self.normalizeArch(other.architecture) else { return false }
        let defaultVariant: String? = Self.normalizeArch(architecture) == "arm64" ? "v8" : nil
        let mine = variant ?? defaultVariant
        let theirs = other.variant ?? defaultVariant
        if variant == nil || other.variant == nil { return mine == theirs || variant == nil }
        return mine == theirs
    }

    public var description: String {
        variant.map { "\(os)/\(architecture)/\($0)" } ?? "\(os)/\(architecture)"
    }
}
