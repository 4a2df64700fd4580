import Foundation
import Testing
import Strata
import StrataRegistry

/// A read-only registry in Python that serves an OCI layout (tags from
/// `org.opencontainers.image.ref.name`), with Range support, and misbehaves on purpose:
/// `cut` breaks the connection half-way through the first GET of every blob over 100 kB;
/// `redirect` answers blob GETs with a 307 to `/storage/<hex>`; `slow` sends slowly;
/// `corrupt` flips one byte of every blob over 100 kB.
/// Every blob GET is logged as `GET <hex> <start>` (and `REDIRECT <hex>`).
let layoutRegistryScript = #"""
import http.server, json, os, socket, sys, threading, time
port, root, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
index = json.load(open(root + "/index.json"))
tags = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m for m in index["manifests"]}
lock = threading.Lock()
cut_done = set()
def record(line):
    with lock:
        with open(log, "a") as f: f.write(line + "\n")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def empty(self, code):
        self.send_response(code); self.send_header("Content-Length", "0"); self.end_headers()
    def blob(self, hexd, head):
        path = root + "/blobs/sha256/" + hexd
        if not os.path.exists(path): return self.empty(404)
        size = os.path.getsize(path)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="): start = int(rng[6:].split("-")[0])
        if not head: record("GET %s %d" % (hexd, start))
        if start:
            self.send_response(206); self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes"); self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start)); self.end_headers()
        if head: return
        cut = False
        with lock:
            if mode == "cut" and size > 100000 and start == 0 and hexd not in cut_done:
                cut_done.add(hexd); cut = True
        with open(path, "rb") as f:
            f.seek(start)
            sent = start
            while sent < size:
                chunk = f.read(min(32768, size - sent))
                if cut and sent + len(chunk) >= size // 2:
                    self.wfile.write(chunk[: size // 2 - sent]); self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if mode == "slow": time.sleep(0.02)
                if mode == "corrupt" and size > 100000 and sent <= 1000 < sent + len(chunk):
                    chunk = bytearray(chunk); chunk[1000 - sent] ^= 0xFF; chunk = bytes(chunk)
                self.wfile.write(chunk); sent += len(chunk)
    def handle_any(self, head):
        p = self.path.split("?")[0]
        if p in ("/", "/v2/", "/v2"): return self.empty(200)
        parts = p.split("/")
        if parts[1] == "storage": return self.blob(parts[2], head)
        kind, ref = parts[-2], parts[-1]
        if kind == "blobs":
            hexd = ref.split(":")[-1]
            if mode == "redirect":
                record("REDIRECT %s" % hexd)
                self.send_response(307); self.send_header("Location", "http://127.0.0.1:%d/storage/%s" % (port, hexd))
                self.send_header("Content-Length", "0"); self.end_headers(); return
            return self.blob(hexd, head)
        if kind == "manifests":
            d = tags[ref]["digest"] if ref in tags else ref
            path = root + "/blobs/sha256/" + d.split(":")[-1]
            if not os.path.exists(path): return self.empty(404)
            data = open(path, "rb").read()
            mt = json.loads(data).get("mediaType") or (tags[ref]["mediaType"] if ref in tags else "application/vnd.oci.image.manifest.v1+json")
            self.send_response(200); self.send_header("Content-Type", mt); self.send_header("Docker-Content-Digest", d)
            self.send_header("Content-Length", str(len(data))); self.end_headers()
            if not head: self.wfile.write(data)
            return
        self.empty(404)
    def do_GET(self): self.handle_any(False)
    def do_HEAD(self): self.handle_any(True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""#

/// An umoci layout with `img` (two layers, one of 300 kB random data) and `img2` (the same
/// two layers plus a third).
func twoImageLayout(_ dir: URL) throws -> String {
    let l = try RegistryTests.layout(dir)
    let (status, out) = try run(["bash", "-euo", "pipefail", "-c", """
        cd '\(dir.path)'
        umoci unpack --image '\(l):img' d && echo third > d/rootfs/etc/third
        umoci repack --image '\(l):img2' d && rm -rf d
        """])
    guard status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["out": out]) }
    return l
}

func blobGets(_ log: URL) -> [String] {
    ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

/// An OCI layout served by `layoutRegistryScript` in one of its modes ("cut", "corrupt",
/// "redirect", "slow"), the log of its blob GETs, and an empty store beside it.
struct ServedLayout {
    let dir: TestDir
    let layout: String
    let log: URL
    let server: PythonServer
    let store: Store
    var host: String { "127.0.0.1:\(server.port)" }
    /// The blob GETs answered so far.
    var gets: [String] { blobGets(log) }

    static func start(_ mode: String, layout make: (URL) throws -> String = RegistryTests.layout) async throws -> ServedLayout {
        let dir = try TestDir()
        let layout = try make(dir.url)
        let log = dir.url.appendingPathComponent("gets.log")
        let server = try PythonServer(script: layoutRegistryScript, in: dir.url, args: [layout, mode, log.path])
        let store = try await Store.open(at: dir.url.appendingPathComponent("store"))
        return ServedLayout(dir: dir, layout: layout, log: log, server: server, store: store)
    }
}

@Suite struct PullTests {
    /// The connection breaks half-way through each large blob: the pull resumes with a Range
    /// request from where it stopped (not from 0) and the image is whole.
    @Test func interruptedBlobResumesWithRange() async throws {
        guard require("umoci", "curl", "python3") else { return }
        let served = try await ServedLayout.start("cut")
        let (layout, store) = (served.layout, served.store)
        let pulled = try await Registry.pull("\(served.host)/cut/app:img", into: store)
        let gets = served.gets
        let resumed = gets.filter { !$0.hasSuffix(" 0") }
        #expect(!resumed.isEmpty, "\(gets)")
        for r in resumed {
            let hex = r.split(separator: " ")[1]
            #expect(gets.filter { $0.hasPrefix("GET \(hex) ") }.count == 2, "one cut GET and one resumed GET: \(gets)")
        }
        // The same image skopeo/umoci see, and a clean store.
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json")))
        #expect(pulled.digest == index.manifests[0].digest)
        #expect(try await store.check().clean)
        withExtendedLifetime(served) {}  // the server and its directory outlive every check
    }

    /// A blob whose bytes do not hash to its digest: the pull fails naming the blob, the
    /// registry and the repository; no image, and the bad blob is not stored.
    @Test func corruptBlobIsRefusedAndNotStored() async throws {
        guard require("umoci", "curl", "python3") else { return }
        let served = try await ServedLayout.start("corrupt")
        let (layout, store) = (served.layout, served.store)
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json")))
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + index.manifests[0].digest.encoded)))
        guard let big = manifest.layers.first(where: { $0.size > 100000 }) else { Issue.record("no large layer"); return }
        await #expect {
            _ = try await Registry.pull("\(served.host)/bad/app:img", into: store)
        } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.code == .digestMismatch && e.message.contains(big.digest.string) && e.message.contains("\(served.host)/bad/app")
        }
        #expect(try await store.images(all: true).isEmpty)
        #expect(try await !store.hasBlob(big.digest))
        #expect(try await store.leases().isEmpty)
        #expect(try await store.check().clean)
        withExtendedLifetime(served) {}  // the server and its directory outlive every check
    }

    /// Blob GETs answered with a redirect to blob storage are followed.
    @Test func redirectsToBlobStorageAreFollowed() async throws {
        guard require("umoci", "curl", "python3") else { return }
        let served = try await ServedLayout.start("redirect")
        let (layout, store) = (served.layout, served.store)
        let pulled = try await Registry.pull("\(served.host)/redirect/app:img", into: store)
        let gets = served.gets
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + pulled.digest.encoded)))
        for d in [manifest.config] + manifest.layers {
            #expect(gets.contains("REDIRECT \(d.digest.encoded)"))
            #expect(gets.contains("GET \(d.digest.encoded) 0"))
        }
        #expect(pulled.image.id == manifest.config.digest)
        #expect(try await store.check().clean)
        withExtendedLifetime(served) {}  // the server and its directory outlive every check
    }

    /// Two pulls at once of images that share two layers: each shared blob is downloaded once.
    @Test func concurrentPullsDownloadSharedBlobsOnce() async throws {
        guard require("umoci", "curl", "python3") else { return }
        let served = try await ServedLayout.start("slow", layout: twoImageLayout)
        let store = served.store
        let host = served.host
        // Two separate Store objects, as two processes would have.
        let other = try await Store.open(at: served.dir.url.appendingPathComponent("store"))
        async let a = Registry.pull("\(host)/shared/app:img", into: store)
        async let b = Registry.pull("\(host)/shared/app:img2", into: other)
        let (ra, rb) = try await (a, b)
        #expect(ra.image.id != rb.image.id)
        let gets = served.gets
        let counts = Dictionary(gets.map { ($0, 1) }, uniquingKeysWith: +)
        #expect(counts.values.allSatisfy { $0 == 1 }, "a blob was downloaded twice: \(gets)")
        #expect(try await store.images().count == 2)
        #expect(try await store.check().clean)
        withExtendedLifetime(served) {}  // the server and its directory outlive every check
    }

    /// A pull killed after its first blob is in the store: no image, the blob held by the
    /// pull's lease (gc keeps it), and gone at the first gc once the lease has expired.
    @Test func killedPullLeavesNoImageAndGcCleansUp() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl", "sqlite3") else { return }
        guard FileManager.default.isExecutableFile(atPath: StrataBinary.path) else {
            Issue.record("no strata binary at \(StrataBinary.path): run swift build --build-tests")
            return
        }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let layout = try RegistryTests.layout(dir)
        let (status, out) = try run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:\(layout):img", "docker://\(reg.host)/killed/app:1"])
        #expect(status == 0, "\(out)")
        let root = dir.appendingPathComponent("store")
        let (code, _, err) = try StrataBinary.run(["--root", root.path, "pull", "-q", "\(reg.host)/killed/app:1"],
                                                  env: ["STRATA_CRASH_POINT": "pull.after-blob"])
        #expect(code != 0, "the pull was meant to be killed: \(err)")
        let store = try await Store.open(at: root)
        #expect(try await store.images().isEmpty)
        let leases = try await store.leases()
        #expect(leases.count == 1 && leases[0].description.hasPrefix("pull "))
        let held = try leases.first?.refs.compactMap { ref -> Digest? in ref.hasPrefix("blob:") ? try Digest(String(ref.dropFirst(5))) : nil } ?? []
        var present: [Digest] = []
        for d in held where try await store.hasBlob(d) { present.append(d) }
        // The first blob to land (another of the three parallel downloads may land too).
        #expect(present.count >= 1 && present.count < held.count)
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        for d in present { #expect(try await store.hasBlob(d)) }
        // The process is gone, so its lease would expire; make it so now.
        let (sq, sqOut) = try run(["sqlite3", root.appendingPathComponent("strata.db").path, "UPDATE leases SET expires_at = 0"])
        #expect(sq == 0, "\(sqOut)")
        _ = try await store.collectGarbage(GCOptions(grace: 0))
        for d in present { #expect(try await !store.hasBlob(d)) }
        #expect(try await store.check().clean)
        let ingest = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("ingest").path)
        #expect(ingest.isEmpty, "\(ingest)")
        // And a pull now works from scratch.
        let pulled = try await Registry.pull("\(reg.host)/killed/app:1", into: store)
        #expect(try await store.images().map(\.id) == [pulled.image.id])
    }
}

@Suite struct PullProgressTests {
    /// Without a terminal, `strata pull` prints one line per blob on stderr; `-q` prints
    /// nothing there and only the image ID on stdout.
    @Test func oneLinePerLayerAndNothingWithQuiet() async throws {
        guard require("docker-registry", "skopeo", "umoci", "curl") else { return }
        guard FileManager.default.isExecutableFile(atPath: StrataBinary.path) else {
            Issue.record("no strata binary at \(StrataBinary.path): run swift build --build-tests")
            return
        }
        let reg = try LocalRegistry()
        let dir = reg.dir
        let layout = try RegistryTests.layout(dir)
        let (status, out) = try run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:\(layout):img", "docker://\(reg.host)/progress/app:1"])
        #expect(status == 0, "\(out)")
        let raw = try run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(reg.host)/progress/app:1"]).1
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(raw.utf8))
        let (code, stdout, stderr) = try StrataBinary.run(["--root", dir.path + "/s1", "pull", "\(reg.host)/progress/app:1"])
        #expect(code == 0, "\(stderr)")
        let expected = Set(([manifest.config] + manifest.layers).map { "\($0.digest.shortHex): Pull complete" })
        #expect(Set(stderr.split(separator: "\n").map(String.init)) == expected)
        #expect(stdout == "Digest: \(Digest.sha256(Data(raw.utf8)))\nStatus: Downloaded image for \(reg.host)/progress/app:1\n")
        let (qc, qout, qerr) = try StrataBinary.run(["--root", dir.path + "/s2", "pull", "-q", "\(reg.host)/progress/app:1"])
        #expect(qc == 0 && qerr.isEmpty, "\(qerr)")
        #expect(qout == "\(manifest.config.digest)\n")
    }
}
