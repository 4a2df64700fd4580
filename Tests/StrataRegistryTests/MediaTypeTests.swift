import Foundation
import Testing
import Strata
import StrataRegistry

/// Rewrites the `img` manifest of an umoci layout: the config (`target` "config") or layer
/// number `target` gets `mediaType`, and `urls` (each prefix + the blob's hex); the index
/// entry follows. Returns the digest of the changed descriptor.
func retype(_ layout: String, _ target: String, to mediaType: String, urlPrefixes: [String] = []) throws -> Digest {
    let (status, out) = try run(["python3", "-c", """
        import hashlib, json, sys
        l, target, mt, prefixes = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
        idx = json.load(open(l + "/index.json"))
        e = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "img"][0]
        m = json.load(open(l + "/blobs/sha256/" + e["digest"].split(":")[1]))
        d = m["config"] if target == "config" else m["layers"][int(target)]
        d["mediaType"] = mt
        if prefixes: d["urls"] = [p + d["digest"].split(":")[1] for p in prefixes]
        data = json.dumps(m).encode()
        h = hashlib.sha256(data).hexdigest()
        open(l + "/blobs/sha256/" + h, "wb").write(data)
        e["digest"], e["size"] = "sha256:" + h, len(data)
        json.dump(idx, open(l + "/index.json", "w"))
        sys.stdout.write(d["digest"])
        """, layout, target, mediaType, String(decoding: try JSONSerialization.data(withJSONObject: urlPrefixes), as: UTF8.self)])
    guard status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["out": out]) }
    return try Digest(out.trimmingCharacters(in: .whitespacesAndNewlines))
}

/// A static file server (python3's http.server) that logs every GET path.
let staticServerScript = #"""
import functools, http.server, sys
port, root, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        with open(log, "a") as f: f.write("GET " + self.path + "\n")
        super().do_GET()
http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(H, directory=root)).serve_forever()
"""#

@Suite struct MediaTypeTests {
    /// A manifest naming a layer or config type strata does not know: the pull fails on the
    /// manifest, naming the type and the digest, before a single blob is fetched.
    @Test(arguments: [("1", "application/vnd.example.unknown"), ("config", "application/vnd.example.config.v1+json")])
    func pullRefusesUnknownMediaTypesBeforeAnyBlob(_ target: String, _ type: String) async throws {
        guard require("umoci", "curl", "python3") else { return }
        let box = DigestBox()
        let served = try await ServedLayout.start("plain") { dir in
            let l = try RegistryTests.layout(dir)
            box.value = try retype(l, target, to: type)
            return l
        }
        await #expect {
            _ = try await Registry.pull("\(served.host)/odd/app:img", into: served.store)
        } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.code == .unsupportedMediaType && e.message.contains("\"\(type)\"") && e.message.contains(box.value!.string)
                && !e.message.contains("\n")
        }
        #expect(served.gets.isEmpty, "\(served.gets)")
        #expect(try await served.store.images(all: true).isEmpty)
        #expect(try await served.store.leases().isEmpty)
        let blobs = served.dir.url.appendingPathComponent("store/blobs/sha256").path
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? []).isEmpty)
        withExtendedLifetime(served) {}
    }

    /// A non-distributable layer is not uploaded by push (the manifest goes up byte for byte,
    /// the registry accepts it without the blob); a pull gets it from the descriptor's urls
    /// when the registry has not got it, and names the layer when no url has it either.
    @Test func foreignLayersAreNotPushedAndArePulledFromTheirURLs() async throws {
        guard require("docker-registry", "umoci", "curl", "python3") else { return }
        // distribution refuses manifests with urls unless told which ones to allow.
        let reg = try LocalRegistry(extraConfig: """
            validation:
              manifests:
                urls:
                  allow:
                    - ^https?://
            """)
        let dir = reg.dir
        let vendor = dir.appendingPathComponent("vendor")
        try FileManager.default.createDirectory(at: vendor, withIntermediateDirectories: true)
        let log = dir.appendingPathComponent("vendor.log")
        let server = try PythonServer(script: staticServerScript, in: dir, args: [vendor.path, log.path])
        let layout = try RegistryTests.layout(dir)
        let foreign = try retype(layout, "0", to: MediaType.ociLayerNondistributableGzip,
                                 urlPrefixes: ["http://127.0.0.1:1/nothing-here/", "http://127.0.0.1:\(server.port)/"])
        try FileManager.default.copyItem(atPath: layout + "/blobs/sha256/" + foreign.encoded, toPath: vendor.appendingPathComponent(foreign.encoded).path)

        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let image = try await store.load(from: URL(fileURLWithPath: layout))[0]
        let events = EventLog()
        var options = RegistryOptions()
        options.progress = { e in if case .finished(let d, _, let s) = e { events.add("\(d.encoded) \(s)") } }
        let digest = try await Registry.push(image.id.string, to: "\(reg.host)/vendor/app:1", from: store, options: options)
        #expect(digest == image.manifestDigest)
        #expect(events.all.contains("\(foreign.encoded) Skipped foreign layer"), "\(events.all)")
        #expect(events.all.filter { $0.hasSuffix("Pushed") }.count == 2, "\(events.all)")  // config and the other layer
        let (_, code) = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "http://\(reg.host)/v2/vendor/app/blobs/\(foreign)"])
        #expect(code == "404", "the foreign layer was uploaded")

        let other = try await Store.open(at: dir.appendingPathComponent("other"))
        let messages = EventLog()
        var pullOptions = RegistryOptions()
        pullOptions.progress = { e in if case .message(let m) = e { messages.add(m) } }
        let pulled = try await Registry.pull("\(reg.host)/vendor/app:1", into: other, options: pullOptions)
        #expect(pulled.image.id == image.id)
        #expect(pulled.digest == digest)
        let gets = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(gets.filter { $0 == "GET /\(foreign.encoded)" }.count == 1, "\(gets)")
        #expect(messages.all.contains { $0.contains("non-distributable layer") && $0.contains("127.0.0.1:\(server.port)") }, "\(messages.all)")
        #expect(try await other.layers(of: pulled.image.id.string)[0].blobs[0].mediaType == MediaType.ociLayerNondistributableGzip)
        #expect(try await other.check().clean)

        // Nowhere to be found: the error names the layer and its urls; no image, no lease.
        try FileManager.default.removeItem(at: vendor.appendingPathComponent(foreign.encoded))
        let third = try await Store.open(at: dir.appendingPathComponent("third"))
        await #expect {
            _ = try await Registry.pull("\(reg.host)/vendor/app:1", into: third)
        } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.code == .blobNotFound && e.message.contains("non-distributable layer \(foreign)")
                && e.message.contains("http://127.0.0.1:\(server.port)/\(foreign.encoded)")
        }
        #expect(try await third.images(all: true).isEmpty)
        #expect(try await third.leases().isEmpty)
        withExtendedLifetime(server) {}
    }
}

/// A value set inside a Sendable closure and read after it.
final class DigestBox: @unchecked Sendable {
    var value: Digest?
}
