import Foundation
import Testing
@testable import OCI

/// The one platform-selection rule of load and pull, with entries of unknown media types.
@Suite struct IndexSelectTests {
    static func entry(_ type: String, _ platform: String?, _ n: UInt8, annotations: [String: String]? = nil) throws -> Descriptor {
        Descriptor(mediaType: type, digest: Digest.sha256(Data([n])), size: 1, annotations: annotations,
                   platform: try platform.map { try Platform(parsing: $0) })
    }

    static let amd64 = Platform(os: "linux", architecture: "amd64")
    static let arm64 = Platform(os: "linux", architecture: "arm64")

    @Test func exactBeforeCompatibleAndUnknownTypesAreNeverChosen() throws {
        let unknown = try Self.entry("application/vnd.example.manifest.v9+json", "linux/arm64", 1)
        let compatible = try Self.entry(MediaType.ociManifest, "linux/arm64", 2)
        let exact = try Self.entry(MediaType.dockerManifest, "linux/arm64/v8", 3)
        let index = Index(manifests: [unknown, compatible, exact])
        let v8 = Platform(os: "linux", architecture: "arm64", variant: "v8")
        #expect(try index.select(v8, explicit: true, nested: false, what: "index x") == exact)
        #expect(try index.select(Self.arm64, explicit: true, nested: false, what: "index x") == compatible)
    }

    @Test func theChosenPlatformsUnknownEntryIsNamed() throws {
        let unknown = try Self.entry("application/vnd.example.manifest.v9+json", "linux/amd64", 1)
        let arm = try Self.entry(MediaType.ociManifest, "linux/arm64", 2)
        let index = Index(manifests: [unknown, arm])
        #expect {
            _ = try index.select(Self.amd64, explicit: false, nested: false, what: "index x")
        } throws: { e in
            let e = e as? StrataError
            return e?.code == .unsupportedMediaType && e?.message == "unsupported media type \"application/vnd.example.manifest.v9+json\" for \(unknown.digest), the linux/amd64 entry of index x"
        }
        #expect(try index.select(Self.arm64, explicit: true, nested: false, what: "index x") == arm)
        // Platforms nothing offers: "no image", listing only the images.
        #expect {
            _ = try index.select(Platform(os: "linux", architecture: "s390x"), explicit: true, nested: false, what: "index x")
        } throws: { e in
            (e as? StrataError)?.code == .platformNotFound && "\(e)".contains("(available: linux/arm64)")
        }
    }

    @Test func attestationsAndNestedIndexes() throws {
        let image = try Self.entry(MediaType.ociManifest, "linux/amd64", 1)
        let attestation = try Self.entry(MediaType.ociManifest, "unknown/unknown", 2,
                                         annotations: [Index.referenceTypeAnnotation: "attestation-manifest"])
        let nested = try Self.entry(MediaType.ociIndex, "linux/arm64", 3)
        let index = Index(manifests: [image, attestation, nested])
        #expect(index.imageEntries(nested: false) == [image])
        #expect(index.imageEntries(nested: true) == [image, nested])
        #expect(try index.select(Self.arm64, explicit: true, nested: true, what: "index x") == nested)
        // Pull reads no nested index: for it that entry is of a type it cannot use.
        #expect(throws: StrataError.self) { try index.select(Self.arm64, explicit: true, nested: false, what: "index x") }
    }

    @Test func theOnlyEntryWithoutAnExplicitPlatform() throws {
        let only = try Self.entry(MediaType.ociManifest, "linux/riscv64", 1)
        #expect(try Index(manifests: [only]).select(Self.amd64, explicit: false, nested: false, what: "i") == only)
        #expect(throws: StrataError.self) { try Index(manifests: [only]).select(Self.amd64, explicit: true, nested: false, what: "i") }
        let odd = try Self.entry("application/x-odd", nil, 2)
        #expect {
            _ = try Index(manifests: [odd]).select(Self.amd64, explicit: false, nested: false, what: "index i")
        } throws: { e in
            (e as? StrataError)?.code == .unsupportedMediaType && "\(e)".contains("\"application/x-odd\" for \(odd.digest), the only entry of index i")
        }
    }

    @Test func mediaTypesAreQuotedOnOneLine() {
        #expect(MediaType.quoted("a/b") == "\"a/b\"")
        #expect(MediaType.quoted("a\nb\"c") == "\"a\\nb\\\"c\"")
        #expect(MediaType.quoted(String(repeating: "x", count: 300)).count == 105)
        #expect(MediaType.isForeignLayer(MediaType.dockerForeignLayerGzip) && MediaType.isLayer(MediaType.ociLayerNondistributableZstd))
        #expect(!MediaType.isLayer("application/vnd.in-toto+json"))
    }
}
