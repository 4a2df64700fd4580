import Foundation
import Testing
import Strata
import StrataRegistry

/// An upload-only registry in Python that checks chunked uploads the way distribution does
/// (Content-Range must start where the upload is) and, once, forgets the end of what it was
/// sent and answers the next PATCH with 416, so the client must ask for the upload status
/// (`Range: 0-N`) and go on from there. The final PUT checks the sha256 of the whole blob.
let chunkedUploadScript = #"""
import hashlib, http.server, json, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
uploads, blobs, lock = {}, set(), threading.Lock()
state = {"forgot": False, "n": 0}
def record(line):
    with lock:
        with open(log, "a") as f: f.write(line + "\n")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, headers=()):
        self.send_response(code)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", "0"); self.end_headers()
    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""
    def do_GET(self):
        p = self.path.split("?")[0]
        if p.startswith("/upload/"):
            u = uploads[p.split("/")[2]]
            record("STATUS %d" % len(u))
            return self.reply(204, [("Location", p), ("Range", "0-%d" % (len(u) - 1))])
        self.reply(200)
    def do_HEAD(self):
        d = self.path.split("/")[-1]
        self.reply(200 if d in blobs else 404)
    def do_POST(self):
        self.body()
        with lock:
            state["n"] += 1; uid = str(state["n"])
        uploads[uid] = bytearray()
        self.reply(202, [("Location", "/upload/" + uid), ("Range", "0-0")])
    def do_PATCH(self):
        uid = self.path.split("?")[0].split("/")[2]
        u = uploads[uid]
        data = self.body()
        start, end = [int(x) for x in self.headers["Content-Range"].split("-")]
        if start != len(u) or end - start + 1 != len(data):
            record("416 %d %d" % (start, len(u)))
            return self.reply(416, [("Location", "/upload/" + uid), ("Range", "0-%d" % (len(u) - 1))])
        u.extend(data)
        record("PATCH %d-%d" % (start, end))
        rng = "0-%d" % (len(u) - 1)
        if not state["forgot"] and len(u) > 100000:
            state["forgot"] = True
            del u[len(u) - 1000:]
        self.reply(202, [("Location", "/upload/" + uid), ("Range", rng)])
    def do_PUT(self):
        p, _, q = self.path.partition("?")
        data = self.body()
        if p.startswith("/upload/"):
            u = uploads[p.split("/")[2]]
            u.extend(data)
            digest = q.split("digest=")[1].split("&")[0].replace("%3A", ":")
            ok = "sha256:" + hashlib.sha256(bytes(u)).hexdigest() == digest
            record("PUT %s %s" % (digest, "ok" if ok else "bad"))
            if ok: blobs.add(digest)
            return self.reply(201 if ok else 400)
        record("MANIFEST " + p)
        self.reply(201)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""#

/// An OCI layout with an index of two platform images (linux/amd64 and linux/arm64), tag `multi`.
func multiPlatformLayout(_ dir: URL) throws -> String {
    let l = dir.appendingPathComponent("multi").path
    let (status, out) = try run(["bash", "-euo", "pipefail", "-c", """
        cd '\(dir.path)'
        umoci init --layout '\(l)'
        for a in amd64 arm64; do
          umoci new --image '\(l):'$a && umoci config --image '\(l):'$a --os linux --architecture $a
          umoci unpack --image '\(l):'$a u && mkdir -p u/rootfs/etc && echo $a > u/rootfs/etc/arch
          head -c 150000 /dev/urandom > u/rootfs/etc/blob && umoci repack --image '\(l):'$a u && rm -rf u
        done
        python3 - '\(l)' <<'PY'
        import hashlib, json, sys
        l = sys.argv[1]
        idx = json.load(open(l + "/index.json"))
        by = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in idx["manifests"]}
        ms = [{"mediaType": by[a]["mediaType"], "digest": by[a]["digest"], "size": by[a]["size"],
               "platform": {"architecture": a, "os": "linux"}} for a in ("amd64", "arm64")]
        data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms}).encode()
        h = hashlib.sha256(data).hexdigest()
        open(l + "/blobs/sha256/" + h, "wb").write(data)
        idx["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + h, "size": len(data),
                                 "annotations": {"org.opencontainers.image.ref.name": "multi"}})
        json.dump(idx, open(l + "/index.json", "w"))
        PY
        """])
    guard status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["out": out]) }
    return l
}

@Suite struct PushTests {
    /// A blob the store knows to be in another repository of the same registry is mounted,
    /// not uploaded: after a pull from one repository, and after a push to one.
    @Test func blobsKnownElsewhereOnTheRegistryAreMounted() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl") else { return }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let layout = try RegistryTests.layout(dir)
        let (status, out) = try run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:\(layout):img", "docker://\(reg.host)/team/base:1"])
        #expect(status == 0, "\(out)")
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let pulled = try await Registry.pull("\(reg.host)/team/base:1", into: store)
        let events = EventLog()
        var options = RegistryOptions()
        options.progress = { e in if case .finished(_, _, let s) = e { events.add(s) } }
        let digest = try await Registry.push(pulled.image.id.string, to: "\(reg.host)/team/copy:1", from: store, options: options)
        #expect(digest == pulled.digest)
        #expect(events.all.filter { $0 == "Mounted from team/base" }.count == 3, "\(events.all)")
        // Now known in team/copy too: a third repository mounts from either.
        let third = EventLog()
        options.progress = { e in if case .finished(_, _, let s) = e { third.add(s) } }
        try await Registry.push(pulled.image.id.string, to: "\(reg.host)/other/app:1", from: store, options: options)
        #expect(third.all.count == 3 && third.all.allSatisfy { $0.hasPrefix("Mounted from team/") }, "\(third.all)")
        let (st, raw) = try run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(reg.host)/other/app:1"])
        #expect(st == 0 && Digest.sha256(Data(raw.utf8)) == digest)
    }

    /// Blobs above the chunk size go up in PATCH chunks; docker-registry accepts them and
    /// skopeo pulls the same manifest digest back.
    @Test func largeBlobsAreUploadedInChunks() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl") else { return }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let layout = try RegistryTests.layout(dir)
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let image = try await store.load(from: URL(fileURLWithPath: layout))[0]
        var options = RegistryOptions()
        options.chunkSize = 64 << 10
        let digest = try await Registry.push(image.id.string, to: "\(reg.host)/chunked/app:1", from: store, options: options)
        #expect(digest == image.manifestDigest)
        let (status, out) = try run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--preserve-digests",
                                     "docker://\(reg.host)/chunked/app:1", "oci:\(dir.path)/back:x"])
        #expect(status == 0, "\(out)")
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: dir.appendingPathComponent("back/index.json")))
        #expect(index.manifests.first?.digest == digest)
    }

    /// A registry that loses the end of a chunk answers the next PATCH with 416; the client
    /// reads the upload status and resends from where the registry is. The blob arrives whole.
    @Test func chunkedUploadRecoversFrom416() async throws {
        guard require("umoci", "curl", "python3") else { return }
        let dir = try TestDir()
        let layout = try RegistryTests.layout(dir.url)
        let log = dir.url.appendingPathComponent("upload.log")
        let server = try PythonServer(script: chunkedUploadScript, in: dir.url, args: [log.path])
        let store = try await Store.open(at: dir.url.appendingPathComponent("store"))
        let image = try await store.load(from: URL(fileURLWithPath: layout))[0]
        var options = RegistryOptions()
        options.chunkSize = 64 << 10
        options.parallelism = 1
        let digest = try await Registry.push(image.id.string, to: "127.0.0.1:\(server.port)/recover/app:1", from: store, options: options)
        #expect(digest == image.manifestDigest)
        let lines = blobGets(log)
        #expect(lines.contains { $0.hasPrefix("416 ") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("STATUS ") }, "\(lines)")
        #expect(!lines.contains { $0.hasSuffix(" bad") }, "\(lines)")
        #expect(lines.filter { $0.hasPrefix("PUT ") }.count == 3)
    }

    /// `--compression zstd`: uncompressed layers go out as zstd, the copy is recorded and
    /// reused, and skopeo reads the pushed image.
    @Test func zstdCompressionIsRecordedAndReused() async throws {
        guard require("docker-registry", "skopeo", "curl") else { return }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let (status, out) = try run(["bash", "-euo", "pipefail", "-c", """
            mkdir -p '\(dir.path)/r/etc' && head -c 200000 /dev/urandom > '\(dir.path)/r/etc/data' && tar -C '\(dir.path)/r' -cf '\(dir.path)/r.tar' .
            """])
        #expect(status == 0, "\(out)")
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let image = try await store.importRootfs(from: dir.appendingPathComponent("r.tar"), reference: "plain:1")
        var options = RegistryOptions()
        options.compression = .zstd
        let digest = try await Registry.push("plain:1", to: "\(reg.host)/zstd/app:1", from: store, options: options)
        let raw = try run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(reg.host)/zstd/app:1"]).1
        let remote = try JSONDecoder().decode(Manifest.self, from: Data(raw.utf8))
        #expect(remote.layers.map(\.mediaType) == [MediaType.ociLayerZstd])
        #expect(Digest.sha256(Data(raw.utf8)) == digest)
        #expect(try await store.layers(of: "plain:1")[0].blobs.map(\.compression).sorted() == ["none", "zstd"])
        // The next push reuses the recorded zstd copy: same digest, nothing new in the store.
        #expect(try await Registry.push("plain:1", to: "\(reg.host)/zstd/again:1", from: store, options: options) == digest)
        #expect(try await store.layers(of: "plain:1")[0].blobs.count == 2)
        let (st, o) = try run(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://\(reg.host)/zstd/app:1", "oci:\(dir.path)/z:x"])
        #expect(st == 0, "\(o)")
        let other = try await Store.open(at: dir.appendingPathComponent("store2"))
        #expect(try await Registry.pull("\(reg.host)/zstd/app:1", into: other).image.id == image.id)
    }

    /// A multi-platform index pushed by `skopeo copy --all` is pulled with every platform
    /// and pushed back unchanged: the same index digest.
    @Test func multiPlatformIndexRoundTrips() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl", "python3") else { return }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let layout = try multiPlatformLayout(dir)
        let (status, out) = try run(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", "oci:\(layout):multi", "docker://\(reg.host)/multi/app:1"])
        #expect(status == 0, "\(out)")
        let raw = try run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(reg.host)/multi/app:1"]).1
        let remoteDigest = Digest.sha256(Data(raw.utf8))
        let store = try await Store.open(at: dir.appendingPathComponent("store"))
        let pulled = try await Registry.pull("\(reg.host)/multi/app:1", into: store, platform: try Platform(parsing: "linux/arm64"), allPlatforms: true)
        #expect(pulled.digest == remoteDigest)
        #expect(pulled.images.count == 2)
        #expect(try await store.images(all: true).count == 2)
        let back = try await Registry.push("\(reg.host)/multi/app:1", to: "\(reg.host)/multi/back:1", from: store)
        #expect(back == remoteDigest)
        let raw2 = try run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(reg.host)/multi/back:1"]).1
        #expect(Digest.sha256(Data(raw2.utf8)) == remoteDigest)
        // Both platforms are there and readable by skopeo.
        for arch in ["amd64", "arm64"] {
            let (st, o) = try run(["skopeo", "--override-arch", arch, "inspect", "--tls-verify=false", "docker://\(reg.host)/multi/back:1"])
            #expect(st == 0 && o.contains("\"Architecture\": \"\(arch)\""), "\(o)")
        }
        // gc keeps the other platform's content through the index: pushing again after it
        // still gives the same index.
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        #expect(try await Registry.push("\(reg.host)/multi/app:1", to: "\(reg.host)/multi/after-gc:1", from: store) == remoteDigest)
    }
}
