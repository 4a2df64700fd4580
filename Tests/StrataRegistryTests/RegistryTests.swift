import Foundation
import Testing
import Strata
import StrataRegistry

@Suite struct RegistryTests {
    /// An umoci-built image with two layers, as an OCI layout; tag `img`.
    static func layout(_ dir: URL) throws -> String {
        let l = dir.appendingPathComponent("layout").path
        let (status, out) = try run(["bash", "-euo", "pipefail", "-c", """
            cd '\(dir.path)'
            umoci init --layout '\(l)' && umoci new --image '\(l):img'
            umoci unpack --image '\(l):img' b && mkdir -p b/rootfs/etc && echo hello > b/rootfs/etc/greeting
            head -c 300000 /dev/urandom > b/rootfs/etc/blob
            umoci repack --image '\(l):img' b && rm -rf b
            umoci unpack --image '\(l):img' c && echo more > c/rootfs/etc/more && umoci repack --image '\(l):img' c && rm -rf c
            """])
        guard status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["out": out]) }
        return l
    }

    /// strata pushes; skopeo pulls the same manifest digest; the unpacked trees are identical.
    @Test func pushedByStrataPulledBySkopeo() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl") else { return }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let layout = try Self.layout(dir)
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let image = try await store.load(from: URL(fileURLWithPath: layout))[0]
        let dest = "\(reg.host)/interop/app:1"
        let since = Date().addingTimeInterval(-0.01)
        let digest = try await Registry.push(image.id.string, to: dest, from: store)
        #expect(digest == image.manifestDigest)
        // Re-push: every blob is already there.
        #expect(try await Registry.push(image.id.string, to: dest, from: store) == digest)
        let (status, out) = try run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--preserve-digests",
                                     "docker://\(dest)", "oci:\(dir.path)/pulled:x"])
        #expect(status == 0, "\(out)")
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: dir.appendingPathComponent("pulled/index.json")))
        #expect(index.manifests.first?.digest == digest)
        _ = try run(["umoci", "unpack", "--image", "\(layout):img", "\(dir.path)/u1"])
        _ = try run(["umoci", "unpack", "--image", "\(dir.path)/pulled:x", "\(dir.path)/u2"])
        let (diff, diffOut) = try run(["diff", "-r", "--no-dereference", "\(dir.path)/u1/rootfs", "\(dir.path)/u2/rootfs"])
        #expect(diff == 0, "\(diffOut)")
        let listed = try await store.images().flatMap(\.repoDigests)
        #expect(listed.contains("\(reg.host)/interop/app@\(digest)"))
        // dockerd's event for each push: the reference, named by its repository.
        var pushes: [String] = []
        for try await e in store.events(since: since, until: Date().addingTimeInterval(0.01), poll: .milliseconds(20)) where e.action == "push" {
            pushes.append("\(e.type) \(e.actorID) \(e.attributes)")
        }
        #expect(pushes == Array(repeating: "image \(dest) [\"name\": \"\(reg.host)/interop/app\"]", count: 2), "\(pushes)")
    }

    /// skopeo pushes; strata pulls the same digests and the same image.
    @Test func pushedBySkopeoPulledByStrata() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl") else { return }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let layout = try Self.layout(dir)
        let (status, out) = try run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:\(layout):img", "docker://\(reg.host)/from/skopeo:2"])
        #expect(status == 0, "\(out)")
        let remote = try run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(reg.host)/from/skopeo:2"]).1
        let remoteManifest = try JSONDecoder().decode(Manifest.self, from: Data(remote.utf8))
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let since = Date().addingTimeInterval(-0.01)
        let pulled = try await Registry.pull("\(reg.host)/from/skopeo:2", into: store)
        var events: [String] = []
        for try await e in store.events(since: since, until: Date().addingTimeInterval(0.01), poll: .milliseconds(20)) {
            events.append("\(e.type) \(e.action) \(e.actorID) \(e.attributes["name"] ?? "")")
        }
        // As dockerd: the tag, then the pull of the reference, named by its repository.
        #expect(events == ["image tag \(pulled.image.id) \(reg.host)/from/skopeo:2", "image pull \(reg.host)/from/skopeo:2 \(reg.host)/from/skopeo"], "\(events)")
        #expect(pulled.image.id == remoteManifest.config.digest)
        #expect(pulled.digest == Digest.sha256(Data(remote.utf8)))
        #expect(try await store.layers(of: "\(reg.host)/from/skopeo:2").map { $0.blobs[0].digest } == remoteManifest.layers.map(\.digest))
        // Pulling again downloads nothing new and changes nothing.
        let again = try await Registry.pull("\(reg.host)/from/skopeo:2", into: store)
        #expect(again.image.id == pulled.image.id)
        #expect(try await store.check().clean)
        // A missing tag is one clear error.
        await #expect { _ = try await Registry.pull("\(reg.host)/from/skopeo:nope", into: store) } throws: {
            ($0 as? StrataError)?.code == .imageNotFound
        }
    }
}

@Suite struct PushCompressionTests {
    /// An uncompressed layer is pushed gzip-compressed; the copy is kept and reused.
    @Test func uncompressedLayersArePushedAsGzipOnce() async throws {
        guard require("docker-registry", "skopeo", "curl") else { return }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let (status, out) = try run(["bash", "-euo", "pipefail", "-c", """
            mkdir -p '\(dir.path)/r/etc' && head -c 200000 /dev/urandom > '\(dir.path)/r/etc/data' && tar -C '\(dir.path)/r' -cf '\(dir.path)/r.tar' .
            """])
        #expect(status == 0, "\(out)")
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let image = try await store.importRootfs(from: dir.appendingPathComponent("r.tar"), reference: "plain:1")
        #expect(try await store.layers(of: "plain:1")[0].blobs.map(\.compression) == ["none"])
        let dest = "\(reg.host)/plain/app:1"
        let digest = try await Registry.push("plain:1", to: dest, from: store)
        #expect(digest != image.manifestDigest)
        let raw = try run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(dest)"]).1
        let remote = try JSONDecoder().decode(Manifest.self, from: Data(raw.utf8))
        #expect(remote.layers.map(\.mediaType) == [MediaType.ociLayerGzip])
        #expect(Digest.sha256(Data(raw.utf8)) == digest)
        // The gzip copy is another encoding of the same layer in the store, reused next time.
        let encodings = try await store.layers(of: "plain:1")[0].blobs
        #expect(encodings.map(\.compression).sorted() == ["gzip", "none"])
        #expect(try await Registry.push("plain:1", to: "\(reg.host)/plain/other:2", from: store) == digest)
        // Pulled back, it is the same image (same config, same diffID).
        let other = try await Store.open(at: dir.appendingPathComponent("store2"))
        let pulled = try await Registry.pull(dest, into: other)
        #expect(pulled.image.id == image.id)
        // gc keeps the encoding while the layer is kept.
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await store.layers(of: "plain:1")[0].blobs.count == 2)
    }
}

@Suite struct RetryTests {
    /// A registry that answers 503 (Retry-After: 0) twice, then 404: the client retries and
    /// reports the final answer, naming the registry and repository.
    @Test func transientErrorsAreRetried() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-retry-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = LocalRegistry.freePort()
        let script = """
            import http.server, sys
            count = [0]
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    if not self.path.startswith("/v2/"):
                        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers(); return
                    count[0] += 1
                    open(sys.argv[2], "w").write(str(count[0]))
                    if count[0] <= 2:
                        self.send_response(503); self.send_header("Retry-After", "0"); self.send_header("Content-Length", "0"); self.end_headers()
                    else:
                        self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
                def log_message(self, *a): pass
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """
        try script.write(to: dir.appendingPathComponent("server.py"), atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", dir.appendingPathComponent("server.py").path, String(port), dir.appendingPathComponent("count").path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        let pid = server.processIdentifier
        defer { kill(pid, SIGKILL) }
        for _ in 0..<50 where (try? run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:\(port)/"]).0) != 0 { usleep(100_000) }
        try? FileManager.default.removeItem(at: dir.appendingPathComponent("count"))
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        await #expect {
            _ = try await Registry.pull("127.0.0.1:\(port)/retry/app:1", into: store)
        } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.code == .imageNotFound && e.message.contains("127.0.0.1:\(port)") && e.message.contains("retry/app")
                && e.message.contains("HTTP 404")
        }
        #expect(try String(contentsOf: dir.appendingPathComponent("count"), encoding: .utf8) == "3")
    }
}
