import Foundation
import OCI
import Strata

/// `_ping`, `version`, `info`, `system/df`.
extension EngineRouter {
    /// `HEAD|GET /_ping`: the headers the client negotiates with. `Builder-Version: 1`
    /// makes `docker build` use the classic `POST /build`.
    func ping(_ req: EngineRequest, _ res: EngineResponse) async throws {
        try await res.send(.ok, contentType: "text/plain; charset=utf-8", body: Data("OK".utf8),
                           headers: [("Builder-Version", "1"), ("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")])
    }

    /// `GET /version`.
    func version(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let arch = Platform.host.architecture, kernel = Self.kernelVersion()
        let details: [String: Any] = [
            "ApiVersion": APIVersion.current.description, "MinAPIVersion": APIVersion.minimum.description,
            "Os": "linux", "Arch": arch, "KernelVersion": kernel, "GitCommit": "", "GoVersion": "", "BuildTime": "",
            "Experimental": "false",
        ]
        try await res.sendJSON([
            "Platform": ["Name": "strata"],
            "Components": [["Name": "Engine", "Version": EngineServer.version, "Details": details]],
            "Version": EngineServer.version,
            "ApiVersion": APIVersion.current.description,
            "MinAPIVersion": APIVersion.minimum.description,
            "GitCommit": "", "GoVersion": "", "BuildTime": "",
            "Os": "linux", "Arch": arch, "KernelVersion": kernel,
        ] as [String: Any])
    }

    /// `GET /info`: counts from the store, the machine's facts.
    func info(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let images = try await store.images(all: true)
        let containers = try await store.containers()
        let running = containers.filter { $0.state == "running" }.count
        try await res.sendJSON([
            "ID": "", "Name": ProcessInfo.processInfo.hostName,
            "Containers": containers.count, "ContainersRunning": running, "ContainersPaused": 0,
            "ContainersStopped": containers.count - running,
            "Images": images.count,
            "Driver": "strata", "DriverStatus": [["Store", store.root.path]],
            "DockerRootDir": store.root.path,
            "OSType": "linux", "Architecture": Self.machine(), "OperatingSystem": Self.operatingSystem(),
            "KernelVersion": Self.kernelVersion(),
            "NCPU": ProcessInfo.processInfo.activeProcessorCount,
            "MemTotal": Int64(ProcessInfo.processInfo.physicalMemory),
            "ServerVersion": EngineServer.version,
            "Plugins": ["Volume": ["local"], "Network": [String](), "Log": [String](), "Authorization": NSNull()] as [String: Any],
            "Swarm": ["LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false] as [String: Any],
            "MemoryLimit": false, "SwapLimit": false, "CpuCfsPeriod": false, "CpuCfsQuota": false,
            "IPv4Forwarding": false, "Debug": false, "ExperimentalBuild": false, "LiveRestoreEnabled": false,
            "Labels": [String](), "SecurityOptions": [String](), "Warnings": [String](),
            "IndexServerAddress": "https://index.docker.io/v1/",
        ] as [String: Any])
    }

    /// `GET /system/df`: images, containers, volumes and build cache as the store accounts
    /// them (``Store/diskUsage(verbose:)``, ``Store/containerSize(_:)``,
    /// ``Store/volumeSize(_:)``, ``Store/buildCacheEntries()``). A cache mount's `CreatedAt`
    /// (strata keeps none) is its last use.
    func systemDF(_ req: EngineRequest, _ res: EngineResponse) async throws {
        let usage = try await store.diskUsage(verbose: true)
        let summaries = Dictionary(try await store.images(all: true).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let images: [[String: Any]] = usage.images.map { u in
            var o = summaries[u.id]?.dockerJSON() ?? ["Id": u.id.string, "RepoTags": u.tags, "Size": u.size]
            o["SharedSize"] = u.sharedSize
            o["Containers"] = u.containers
            return o
        }
        let layers = usage.rows.first { $0.type == "Layers" }?.size ?? usage.layers.uncompressedSize
        var containers: [[String: Any]] = []
        for c in try await store.containers() {
            let size = try await store.containerSize(c.id)
            var o = containerSummary(c)
            o["SizeRw"] = size.writable
            o["SizeRootFs"] = size.virtual
            containers.append(o)
        }
        var volumes: [[String: Any]] = []
        for v in try await store.volumes() {
            var o = volumeJSON(v)
            o["UsageData"] = ["Size": try await store.volumeSize(v.name), "RefCount": v.containers.count]
            volumes.append(o)
        }
        let cache: [[String: Any]] = try await store.buildCacheEntries().map { e in
            ["ID": e.key, "Parents": e.parentImageID.map { [$0] } ?? [String](), "Type": "regular", "Description": e.instruction,
             "InUse": false, "Shared": !e.reclaimable, "Size": e.size, "CreatedAt": RFC3339.format(e.created ?? e.lastUsed),
             "LastUsedAt": RFC3339.format(e.lastUsed), "UsageCount": e.uses]
        }
        try await res.sendJSON([
            "LayersSize": layers, "Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": cache,
        ] as [String: Any])
    }

    static func kernelVersion() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "" }
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func machine() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "" }
        return withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// `PRETTY_NAME` of /etc/os-release.
    static func operatingSystem() -> String {
        guard let text = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8) else { return "linux" }
        for line in text.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return String(line.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return "linux"
    }
}
