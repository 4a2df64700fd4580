import Foundation
import NIOHTTP1
import OCI
import Testing
@testable import StrataEngine
@testable import Strata

/// Request parsing and error mapping, without a socket.
@Suite struct EngineRequestTests {
    func request(_ uri: String, _ method: HTTPMethod = .GET) throws -> EngineRequest {
        try EngineRequest(head: HTTPRequestHead(version: .http1_1, method: method, uri: uri))
    }

    @Test func versionPrefixesAndPaths() throws {
        #expect(try request("/v1.43/images/json").path == "/images/json")
        #expect(try request("/v1.43/images/json").apiVersion == "1.43")
        #expect(try request("/images/json").apiVersion == nil)
        #expect(try request("/v1.24/_ping").path == "/_ping")
        #expect(try request("/v1.43/images/docker.io%2Flibrary%2Fbusybox:latest/json").path == "/images/docker.io/library/busybox:latest/json")
        // Not a version: a path (served or a 501).
        #expect(try request("/v1.x/_ping").path == "/v1.x/_ping")
        #expect(try request("/images/v2/json").path == "/images/v2/json")
        for bad in ["/v1.99/_ping", "/v1.12/_ping", "/v1/_ping", "images/json", "/images/%zz/json"] {
            #expect(throws: EngineError.self, "\(bad)") { try request(bad) }
        }
        #expect(APIVersion("1.9")! < APIVersion("1.24")!)
        #expect(APIVersion("1.43") == APIVersion.current)
    }

    @Test func queryValuesAndFilters() throws {
        let r = try request("/images/get?names=a%3A1&names=b+c&empty=&flag")
        #expect(r.query["names"] == ["a:1", "b c"])
        #expect(r.string("empty") == "")
        #expect(r.query["flag"] == [""])
        #expect(try request("/x?force=1").bool("force"))
        #expect(try !request("/x?force=0").bool("force"))
        #expect(try !request("/x").bool("force"))
        #expect(throws: EngineError.self) { try request("/x?force=maybe").bool("force") }

        let modern = #"{"dangling":{"true":true},"reference":{"b*":true,"a*":true}}"#
        let f = try request("/images/json?filters=" + modern.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!).filters()
        #expect(f["dangling"] == ["true"])
        #expect(f["reference"] == ["a*", "b*"])
        let legacy = #"{"label":["k=v"]}"#
        #expect(try request("/images/json?filters=" + legacy.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!).filters() == ["label": ["k=v"]])
        #expect(throws: EngineError.self) { try request("/images/json?filters=nope").filters() }

        let args = #"{"A":"1","B":null}"#
        let a = try request("/build?buildargs=" + args.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!).jsonObject("buildargs")
        #expect(a["A"] == .some("1"))
        #expect(a["B"] == .some(nil))
    }

    @Test func errorsMapToDockersStatuses() {
        #expect(EngineError(StrataError(.imageNotFound, "no such image: x")).status == .notFound)
        #expect(EngineError(StrataError(.volumeNotFound, "no such volume: x")).status == .notFound)
        #expect(EngineError(StrataError(.conflict, "in use")).status == .conflict)
        #expect(EngineError(StrataError(.invalidReference, "bad")).status == .badRequest)
        #expect(EngineError(StrataError(.unauthorized, "no")).status == .unauthorized)
        #expect(EngineError(StrataError(.io, "disk")).status == .internalServerError)
        #expect(EngineError(StrataError(.io, "disk")).message == "disk")
        for name in ["../x", "a/../b", "", "a//b", "./a", "a\nb"] {
            #expect(throws: EngineError.self, "\(name)") { try EngineRouter.checkName(name) }
        }
        #expect(throws: Never.self) { try EngineRouter.checkName("docker.io/library/busybox:latest") }
        #expect(throws: Never.self) { try EngineRouter.checkName("sha256:abc") }
    }
}

/// `GET /images/json`'s hand-written body parses to the same objects as the dictionaries
/// JSONSerialization wrote before (``ImageSummary/dockerJSON()``), for strings that need
/// escaping: quotes, backslashes, control characters, slashes and non-ASCII text.
@Suite struct ImageListJSONTests {
    @Test func sameDocumentAsJSONSerialization() throws {
        let id = Digest.sha256(Data("a".utf8))
        let odd = "q\"b\\s/\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é ☃ 🐳"
        var a = ImageSummary(id: id, tags: ["app:1", "x/y:2"], repoDigests: ["app@" + id.string], parentID: Digest.sha256(Data("p".utf8)),
                             created: Date(timeIntervalSince1970: 1_700_000_000), size: 123_456_789_012, layerCount: 3, children: 2, containers: 1)
        a.labels = ["org.opencontainers.image.title": odd, odd: "v", "empty": ""]
        let b = ImageSummary(id: Digest.sha256(Data("b".utf8)), tags: [], repoDigests: [], parentID: nil, created: nil,
                             size: 0, layerCount: 0, children: 0, containers: 0)
        for list in [[], [a], [a, b, b]] {
            let fast = try JSONSerialization.jsonObject(with: ImageListJSON.encode(list)) as? NSArray
            let slow = try JSONSerialization.jsonObject(with: EngineResponse.json(list.map { $0.dockerJSON() })) as? NSArray
            #expect(fast != nil && fast == slow, "\(list.count) images")
        }
        // Slashes are not escaped, as before.
        #expect(String(decoding: ImageListJSON.encode([a]), as: UTF8.self).contains("\"x/y:2\""))
    }
}
