import Foundation

/// An OCI/Docker image configuration: the typed fields strata reads and writes, and every
/// other key kept as it came (``otherFields``), so a config decoded and encoded again keeps
/// all it had (`os.version`, `docker_version`, `container_config`, explicit `null`s).
/// The stored config blob stays byte for byte as it came; a new image (commit, a build step)
/// encodes an edited copy with ``encoded()``.
public struct ImageConfig: Codable, Sendable, Hashable {
    public var created: String?
    public var author: String?
    public var architecture: String?
    public var os: String?
    public var variant: String?
    public var config: ContainerConfig?
    public var rootfs: RootFS
    public var history: [HistoryEntry]?
    /// Keys this type does not name, as they came.
    public var otherFields: [String: JSONValue] = [:]
    /// Named keys that came as `null` and have not been set since.
    var nulls: Set<String> = []

    static let known: Set<String> = ["created", "author", "architecture", "os", "variant", "config", "rootfs", "history"]

    public init(created: String? = nil, author: String? = nil, architecture: String?, os: String?, variant: String? = nil,
                config: ContainerConfig? = nil, rootfs: RootFS, history: [HistoryEntry]? = nil) {
        self.created = created
        self.author = author
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.config = config
        self.rootfs = rootfs
        self.history = history
    }

    public init(from decoder: any Decoder) throws {
        let f = try KeptFields(decoder, known: Self.known)
        created = try f.decode("created")
        author = try f.decode("author")
        architecture = try f.decode("architecture")
        os = try f.decode("os")
        variant = try f.decode("variant")
        config = try f.decode("config")
        guard let r: RootFS = try f.decode("rootfs") else {
            throw DecodingError.keyNotFound(AnyKey("rootfs"), .init(codingPath: decoder.codingPath, debugDescription: "missing"))
        }
        rootfs = r
        history = try f.decode("history")
        otherFields = try f.others()
        nulls = try f.nulls()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(created, "created", nulls: nulls)
        try c.encode(author, "author", nulls: nulls)
        try c.encode(architecture, "architecture", nulls: nulls)
        try c.encode(os, "os", nulls: nulls)
        try c.encode(variant, "variant", nulls: nulls)
        try c.encode(config, "config", nulls: nulls)
        try c.encode(rootfs, "rootfs", nulls: nulls)
        try c.encode(history, "history", nulls: nulls)
        try c.encode(others: otherFields)
    }

    /// Decodes and validates a config blob.
    public static func decode(_ data: Data, digest: Digest? = nil) throws -> ImageConfig {
        let name = digest.map { " \($0)" } ?? ""
        let cfg: ImageConfig
        do {
            cfg = try JSONDecoder().decode(ImageConfig.self, from: data)
        } catch let e as StrataError {
            throw StrataError(e.code, "image config\(name): \(e.message)", cause: e)
        } catch {
            throw StrataError(.invalidJSON, "image config\(name) is not a valid image configuration: \(JSONErrors.describe(error))", cause: error)
        }
        if cfg.rootfs.type != "layers" {
            throw StrataError(.invalidJSON, "image config\(name): rootfs.type is \"\(cfg.rootfs.type)\", expected \"layers\"")
        }
        return cfg
    }

    /// The config as a new blob: sorted keys, slashes unescaped, every kept field included.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return try e.encode(self) } catch {
            throw StrataError(.internalError, "cannot encode the image config: \(error)", cause: error)
        }
    }

    /// The creation time, parsed.
    public var createdDate: Date? { created.flatMap(RFC3339.parse) }
}

/// `rootfs` of an image configuration.
public struct RootFS: Codable, Sendable, Hashable {
    public var type: String
    public var diffIDs: [Digest]
    /// Keys this type does not name, as they came.
    public var otherFields: [String: JSONValue] = [:]
    var nulls: Set<String> = []

    static let known: Set<String> = ["type", "diff_ids"]

    public init(diffIDs: [Digest]) {
        self.type = "layers"
        self.diffIDs = diffIDs
    }

    public init(from decoder: any Decoder) throws {
        let f = try KeptFields(decoder, known: Self.known)
        guard let t: String = try f.decode("type") else {
            throw DecodingError.keyNotFound(AnyKey("type"), .init(codingPath: decoder.codingPath, debugDescription: "missing"))
        }
        type = t
        diffIDs = try f.decode("diff_ids") ?? []
        otherFields = try f.others()
        nulls = try f.nulls()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(type, "type", nulls: nulls)
        try c.encode(diffIDs, "diff_ids", nulls: [])
        try c.encode(others: otherFields)
    }
}

/// One step of an image's history.
public struct HistoryEntry: Codable, Sendable, Hashable {
    public var created: String?
    public var createdBy: String?
    public var author: String?
    public var comment: String?
    public var emptyLayer: Bool?
    /// Keys this type does not name, as they came.
    public var otherFields: [String: JSONValue] = [:]
    var nulls: Set<String> = []

    static let known: Set<String> = ["created", "created_by", "author", "comment", "empty_layer"]

    public init(created: String? = nil, createdBy: String? = nil, author: String? = nil, comment: String? = nil, emptyLayer: Bool? = nil) {
        self.created = created
        self.createdBy = createdBy
        self.author = author
        self.comment = comment
        self.emptyLayer = emptyLayer
    }

    public init(from decoder: any Decoder) throws {
        let f = try KeptFields(decoder, known: Self.known)
        created = try f.decode("created")
        createdBy = try f.decode("created_by")
        author = try f.decode("author")
        comment = try f.decode("comment")
        emptyLayer = try f.decode("empty_layer")
        otherFields = try f.others()
        nulls = try f.nulls()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(created, "created", nulls: nulls)
        try c.encode(createdBy, "created_by", nulls: nulls)
        try c.encode(author, "author", nulls: nulls)
        try c.encode(comment, "comment", nulls: nulls)
        try c.encode(emptyLayer, "empty_layer", nulls: nulls)
        try c.encode(others: otherFields)
    }
}
