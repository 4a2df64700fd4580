import Foundation
import Testing
@testable import OCI

/// The one config model: typed where strata reads and writes, lossless for the rest.
@Suite struct ImageConfigTests {
    /// A config as docker 24 writes it, with keys strata does not model, explicit nulls,
    /// numbers of several kinds and non-ASCII text.
    static let dockerConfig = #"""
    {"architecture":"amd64","author":null,"config":{"ArgsEscaped":true,"Cmd":["/bin/true"],
     "Custom":{"arr":[1,"x",null,false],"big":12345678901234,"n":1.5,"neg":-2},"Entrypoint":null,
     "Env":["PATH=/bin","Ü=ö/ä"],"ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Interval":30000000000,"Test":["CMD","true"]},
     "Hostname":"","Labels":{"a":"<&>"},"OnBuild":null,"Volumes":null},
     "container":"abc","container_config":{"Cmd":["/bin/sh","-c","#(nop) CMD"],"Hostname":"x"},
     "created":"2024-03-01T10:00:00.123456789Z","docker_version":"24.0.7","os":"linux","os.version":"10.0",
     "rootfs":{"type":"layers","diff_ids":["sha256:\#(String(repeating: "a", count: 64))"]},
     "history":[{"created":"2024-03-01T10:00:00Z","created_by":"ADD file","extra":"kept"},{"created_by":"CMD","empty_layer":true}]}
    """#

    /// Both sides through JSONSerialization, which keeps every key and null as parsed.
    static func canonical(_ data: Data) throws -> Data {
        try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: data), options: [.sortedKeys])
    }

    @Test func decodeEncodeLosesNothing() throws {
        let cfg = try ImageConfig.decode(Data(Self.dockerConfig.utf8))
        #expect(try Self.canonical(try cfg.encoded()) == Self.canonical(Data(Self.dockerConfig.utf8)))
        #expect(cfg.otherFields["os.version"] == .string("10.0"))
        #expect(cfg.history?.first?.otherFields["extra"] == .string("kept"))
        #expect(cfg.config?.Entrypoint == nil)
        #expect(cfg.config?.fields["Entrypoint"] == .null)
    }

    @Test func typedEditsKeepTheRest() throws {
        var cfg = try ImageConfig.decode(Data(Self.dockerConfig.utf8))
        var c = try #require(cfg.config)
        c.setEnv("PATH", "/usr/bin")
        c.setEnv("NEW", "a b")
        c.addLabel("x", "y")
        c.addExposedPort("8080/tcp")
        c.addVolume("/data")
        c.Entrypoint = ["/init"]
        c.OnBuild = nil
        cfg.config = c
        cfg.author = "me"
        let out = try JSONSerialization.jsonObject(with: try cfg.encoded()) as? [String: Any]
        let config = try #require(out?["config"] as? [String: Any])
        #expect(config["Env"] as? [String] == ["PATH=/usr/bin", "Ü=ö/ä", "NEW=a b"])
        #expect(config["Labels"] as? [String: String] == ["a": "<&>", "x": "y"])
        #expect((config["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["80/tcp", "8080/tcp"])
        #expect((config["Volumes"] as? [String: Any])?.keys.sorted() == ["/data"])
        #expect(config["Entrypoint"] as? [String] == ["/init"])
        #expect(config["OnBuild"] == nil)
        #expect(config["ArgsEscaped"] as? Bool == true)
        #expect((config["Custom"] as? [String: Any])?["big"] as? Int == 12345678901234)
        #expect(out?["author"] as? String == "me")
        #expect(out?["docker_version"] as? String == "24.0.7")
    }

    /// Docker's decoder refuses a known key of the wrong type; so does this one, by path.
    @Test(arguments: [
        (#""Env":1"#, "config.Env"), (#""Env":["a",2]"#, "config.Env"), (#""Labels":{"a":1}"#, "config.Labels"),
        (#""User":[]"#, "config.User"), (#""Cmd":{}"#, "config.Cmd"),
    ])
    func wrongTypesAreRefused(field: String, path: String) throws {
        let json = #"{"config":{\#(field)},"rootfs":{"type":"layers","diff_ids":[]}}"#
        let error = #expect(throws: StrataError.self) { try ImageConfig.decode(Data(json.utf8)) }
        #expect(error?.message.contains("wrong type at \"\(path)\"") == true, "\(error?.message ?? "")")
    }

    /// Docker reads a lone string as a one-word Cmd or Entrypoint (strslice).
    @Test func stringCmdIsOneWord() throws {
        let cfg = try ImageConfig.decode(Data(#"{"config":{"Cmd":"sh"},"rootfs":{"type":"layers"}}"#.utf8))
        #expect(cfg.config?.Cmd == ["sh"])
    }

    @Test func missingRootfsIsNamed() throws {
        let error = #expect(throws: StrataError.self) { try ImageConfig.decode(Data(#"{"config":{}}"#.utf8)) }
        #expect(error?.message.contains("missing field \"rootfs\"") == true, "\(error?.message ?? "")")
    }
}
