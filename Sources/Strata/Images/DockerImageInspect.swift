import Foundation

/// One image as `docker image inspect` shows it: dockerd's object for API 1.43, the version
/// `strata serve` speaks, from the one typed config model.
///
/// Every key dockerd sends is there (clients index it: docker-py's `attrs['GraphDriver']`,
/// a template's `{{.Metadata.LastTagTime}}`), with dockerd's zero values where the image has
/// nothing: `Config` and `ContainerConfig` carry the container-config keys dockerd's struct
/// always writes (`Hostname` … `Labels`), then every key the image's own has. strata adds
/// `History` (the config's steps) and `Descriptor` (the manifest, as API 1.48 has it).
public struct DockerImageInspect: Encodable, Sendable, Hashable {
    public struct RootFSLayers: Encodable, Sendable, Hashable {
        public var `Type`: String
        public var Layers: [String]

        /// dockerd leaves `Layers` out when there is none (`omitempty`).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(`Type`, forKey: .Type)
            if !Layers.isEmpty { try c.encode(Layers, forKey: .Layers) }
        }

        private enum Key: String, CodingKey { case `Type`, Layers }
    }
    public struct ManifestDescriptor: Encodable, Sendable, Hashable {
        public var digest: String
    }
    public var Id: String
    public var RepoTags: [String]
    public var RepoDigests: [String]
    public var Parent: String
    public var Comment: String
    public var Created: String
    public var Author: String
    public var Config: ContainerConfig?
    public var Architecture: String
    public var Variant: String?
    public var Os: String
    public var OsVersion: JSONValue?
    public var DockerVersion: JSONValue?
    public var Size: Int64
    public var RootFS: RootFSLayers
    public var History: [HistoryEntry]
    public var Descriptor: ManifestDescriptor
    /// The container a commit was made from (the config's `container`), or "".
    public var Container: String = ""
    /// The config's `container_config` (what the classic builder ran), or nil for none.
    public var ContainerConfig: [String: JSONValue]? = nil
    /// When a tag last came to name the image; nil is Go's zero time.
    public var LastTagTime: Date? = nil

    /// The keys dockerd's container-config struct writes even when empty, with its zero values.
    public static let containerConfigZero: [String: JSONValue] = [
        "Hostname": .string(""), "Domainname": .string(""), "User": .string(""),
        "AttachStdin": .bool(false), "AttachStdout": .bool(false), "AttachStderr": .bool(false),
        "Tty": .bool(false), "OpenStdin": .bool(false), "StdinOnce": .bool(false),
        "Env": .null, "Cmd": .null, "Image": .string(""), "Volumes": .null, "WorkingDir": .string(""),
        "Entrypoint": .null, "OnBuild": .null, "Labels": .null,
    ]

    /// dockerd's container-config object: its always-written keys, then the image's own.
    public static func dockerContainerConfig(_ fields: [String: JSONValue]) -> [String: JSONValue] {
        containerConfigZero.merging(fields) { $1 }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(Id, forKey: .Id)
        try c.encode(RepoTags, forKey: .RepoTags)
        try c.encode(RepoDigests, forKey: .RepoDigests)
        try c.encode(Parent, forKey: .Parent)
        try c.encode(Comment, forKey: .Comment)
        try c.encode(Created, forKey: .Created)
        try c.encode(Container, forKey: .Container)
        try c.encode(Self.dockerContainerConfig(ContainerConfig ?? [:]), forKey: .ContainerConfig)
        try c.encode(DockerVersion ?? .string(""), forKey: .DockerVersion)
        try c.encode(Author, forKey: .Author)
        // null when the image has none, as Docker shows it
        try c.encode(Config.map { Self.dockerContainerConfig($0.fields) }, forKey: .Config)
        try c.encode(Architecture, forKey: .Architecture)
        try c.encodeIfPresent(Variant, forKey: .Variant)
        try c.encode(Os, forKey: .Os)
        try c.encodeIfPresent(OsVersion, forKey: .OsVersion)
        try c.encode(Size, forKey: .Size)
        try c.encode(Size, forKey: .VirtualSize)  // API < 1.44: the same as Size
        // No graph driver: layers are blobs, containers get their root from a snapshotter.
        try c.encode(["Data": JSONValue.null, "Name": .string("strata")], forKey: .GraphDriver)
        try c.encode(RootFS, forKey: .RootFS)
        try c.encode(["LastTagTime": LastTagTime.map(RFC3339.format) ?? "0001-01-01T00:00:00Z"], forKey: .Metadata)
        try c.encode(History, forKey: .History)
        try c.encode(Descriptor, forKey: .Descriptor)
    }

    private enum Key: String, CodingKey {
        case Id, RepoTags, RepoDigests, Parent, Comment, Created, Container, ContainerConfig, DockerVersion, Author, Config,
             Architecture, Variant, Os, OsVersion, Size, VirtualSize, GraphDriver, RootFS, Metadata, History, Descriptor
    }
}
