import Foundation
import OCI
import Strata

/// The classic builder: each Dockerfile instruction is a temporary container made from the
/// previous step's image, the change applied, a commit (a layer; metadata-only steps give an
/// `empty_layer` history entry), and the container removed. Every step's image is kept with
/// its parent link and recorded in the build cache under a key made of the parent image ID,
/// the normalised instruction and, for COPY/ADD, a checksum of the sources.
///
/// ```swift
/// let builder = Builder(store: store)
/// let result = try await builder.build(context: "/src/app", options: BuildOptions(tags: ["app:latest"], log: { print($0) }))
/// print(result.imageID)
/// ```
public struct Builder: Sendable {
    public let store: Store

    public init(store: Store) { self.store = store }

    /// Builds `dockerfile` (text; nil reads `Dockerfile` from the context) with the context
    /// directory `context`.
    public func build(context: String, dockerfile: String? = nil, options: BuildOptions) async throws -> BuildResult {
        var root = context
        if !root.hasPrefix("/") { root = FileManager.default.currentDirectoryPath + "/" + root }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError(.invalidArgument, "unable to prepare context: path \"\(context)\" not found or not a directory")
        }
        let text: String
        if let dockerfile {
            text = dockerfile
        } else {
            guard let t = try? String(contentsOfFile: root + "/Dockerfile", encoding: .utf8) else {
                throw StrataError(.invalidArgument, "cannot read \(context)/Dockerfile: give the Dockerfile with -f or put one in the context")
            }
            text = t
        }
        let file = try Self.addLabels(options.labels, to: try Dockerfile.parse(text), target: options.target)
        let tree = try SourceTree.context(at: root)
        let what = options.tags.isEmpty ? "building \(context)" : "building \(options.tags.joined(separator: ", "))"
        let run = BuildRun(store: store, file: file, context: tree, options: options)
        defer { run.cleanUp() }
        let freeBefore = DiskSpace.available(at: store.root.path)
        return try await store.explainingDiskFull(what, estimate: { run.spaceEstimate(freeBefore: freeBefore) }) {
            try await run.build()
        }
    }

    /// Builds from a tar stream of the context (`strata build -`): the tar is unpacked into
    /// a scratch directory inside the store (no path may escape it), built, and removed.
    /// A stream that is not a tar archive is taken as the Dockerfile with an empty context.
    public func build(contextTar path: String, dockerfilePath: String? = nil, options: BuildOptions) async throws -> BuildResult {
        if try Self.isArchive(path) {
            let dir = try await store.extractBuildContext(tar: path)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var text: String?
            if let dockerfilePath {
                let comps = try SourceTree.components(dockerfilePath, what: "the build context")
                text = try? String(contentsOfFile: dir + "/" + comps.joined(separator: "/"), encoding: .utf8)
                if text == nil { throw StrataError(.invalidArgument, "cannot read \(dockerfilePath) in the build context") }
            }
            return try await build(context: dir, dockerfile: text, options: options)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw StrataError(.invalidArgument, "the build context on stdin is neither a tar archive nor a Dockerfile")
        }
        let dir = try store.makeBuildScratchFile()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try await build(context: dir, dockerfile: text, options: options)
    }

    /// `--label K=V`: as the classic builder does, one more `LABEL` instruction at the end of
    /// the stage that is built (the `--target` stage, else the last), shown as its own step.
    static func addLabels(_ labels: [String: String], to file: Dockerfile, target: String?) throws -> Dockerfile {
        guard !labels.isEmpty, !file.stages.isEmpty else { return file }
        let e = file.escape
        func quoted(_ s: String) -> String {
            var out = "\""
            for c in s {
                if String(c) == e || c == "\"" || c == "$" { out += e }
                out.append(c)
            }
            return out + "\""
        }
        let line = "LABEL " + labels.sorted { $0.key < $1.key }.map { "\(quoted($0.key))=\(quoted($0.value))" }.joined(separator: " ")
        guard let inst = try Dockerfile.parse("# escape=\(e)\nFROM scratch\n\(line)\n").stages.first?.instructions.first else { return file }
        var out = file
        let i = target.flatMap { t in file.stage(named: t).map(\.index) } ?? file.stages.count - 1
        guard out.stages.indices.contains(i) else { return file }
        out.stages[i].instructions.append(inst)
        return out
    }

    /// Whether a file is a tar archive, plain or compressed (gzip, zstd, bzip2, xz).
    static func isArchive(_ path: String) throws -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { throw StrataError(.io, "cannot read \(path)") }
        defer { try? h.close() }
        let head = [UInt8]((try? h.read(upToCount: 512)) ?? Data())
        if head.starts(with: [0x1f, 0x8b]) || head.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) || head.starts(with: [0x42, 0x5a, 0x68])
            || head.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return true }
        return head.count >= 262 && Array(head[257..<262]) == Array("ustar".utf8)
    }
}

/// The state of one stage as its steps run.
struct StageState {
    var image: Digest
    var settings: ContainerConfig
    /// ARGs declared in this stage and their values (nil: declared without a value).
    var args: [String: String?] = [:]
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    var cmdSet = false

    var shell: [String] { settings.Shell ?? ["/bin/sh", "-c"] }

    /// Variables for word expansion: the args with values, overridden by Env.
    var expansionEnv: [String: String] {
        var env: [String: String] = [:]
        for (k, v) in args { if let v { env[k] = v } }
        for (k, v) in settings.environment { env[k] = v }
        return env
    }

    /// The build args a RUN sees and records (`|n K=V`): declared with a value, not shadowed by Env.
    var runArgs: [(String, String)] {
        let env = settings.environment
        return args.compactMap { k, v in v.flatMap { env[k] == nil ? (k, $0) : nil } }.sorted { $0.0 < $1.0 }
    }
}

/// One build: parses nothing, executes the stages, prints the classic output.
final class BuildRun {
    let store: Store
    let file: Dockerfile
    let context: SourceTree
    let options: BuildOptions
    let lexer: ShellLexer
    /// Step counter and total (`Step n/m`).
    var step = 0
    var totalSteps = 0
    var cachedSteps = 0
    /// Results of the stages built so far, by index.
    var stageImages: [Int: Digest] = [:]
    /// Values of the ARGs before the first FROM.
    var metaArgs: [String: String] = [:]
    var usedArgs: Set<String> = []
    /// Scratch directories (heredoc sources) to remove at the end.
    var scratch: [String] = []
    /// The step being executed, for a full disk's message: the bytes free when it started
    /// and what it was expected to write (COPY and ADD know; RUN does not).
    var stepSpace: (freeAtStart: Int64?, needs: Int64?) = (nil, nil)
    /// With ``BuildOptions/cacheFrom``: the images a cached step may land on (those images
    /// and their ancestors); nil: any.
    var cacheSources: Set<Digest>?
    /// BuildKit's automatic platform ARGs (BUILDPLATFORM … TARGETVARIANT): usable in FROM
    /// as they are, in a stage once it declares them.
    let platformArgs: [String: String]

    init(store: Store, file: Dockerfile, context: SourceTree, options: BuildOptions) {
        self.store = store
        self.file = file
        self.context = context
        self.options = options
        self.lexer = ShellLexer(escape: file.escape)
        self.platformArgs = Self.platformArgs(build: .host, target: options.platform ?? .host)
    }

    /// The values BuildKit gives the automatic platform ARGs: `linux/amd64`, `linux`, `amd64`,
    /// `` (no variant) for the build machine and the target.
    static func platformArgs(build: Platform, target: Platform) -> [String: String] {
        var out: [String: String] = [:]
        for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
            // containerd's normalisation: arm64's default variant v8 is not written.
            let variant = p.architecture == "arm64" && p.variant == "v8" ? nil : p.variant
            out[prefix + "PLATFORM"] = Platform(os: p.os, architecture: p.architecture, variant: variant).description
            out[prefix + "OS"] = p.os
            out[prefix + "ARCH"] = p.architecture
            out[prefix + "VARIANT"] = variant ?? ""
        }
        return out
    }

    func log(_ line: String) { options.log(line) }

    /// What the build needed in all when the disk filled, counted from `freeBefore` (the
    /// bytes free when it started): what the steps before used, plus what the failing step
    /// was expected to write. Nil when the failing step could not say (a RUN).
    func spaceEstimate(freeBefore: Int64?) -> Int64? {
        guard let before = freeBefore, let atStart = stepSpace.freeAtStart, let needs = stepSpace.needs else { return nil }
        return max(before - atStart, 0) + needs
    }

    func cleanUp() {
        for d in scratch { try? FileManager.default.removeItem(atPath: d) }
    }

    var created: Date { options.timestamp.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date() }

    func build() async throws -> BuildResult {
        // Meta ARGs: defaults, overridden by --build-arg.
        for inst in file.metaArgs {
            guard case .keyValues(let pairs) = inst.arguments else { continue }
            for kv in pairs {
                if let v = options.buildArgs[kv.key] {
                    metaArgs[kv.key] = v
                    usedArgs.insert(kv.key)
                } else if let v = kv.value {
                    metaArgs[kv.key] = try lexer.expand(v, env: platformArgs.merging(metaArgs) { $1 })
                } else if let v = platformArgs[kv.key] {
                    metaArgs[kv.key] = v
                }
            }
        }
        var last = file.stages.count - 1
        if let target = options.target {
            guard let s = file.stage(named: target) else {
                throw StrataError(.invalidArgument, "failed to reach build target \(target) in Dockerfile: no stage is called that")
            }
            last = s.index
        }
        let stages = Array(file.stages[0...last])
        if let names = options.cacheFrom {
            var sources = Set<Digest>()
            for name in names {
                do {
                    sources.formUnion(try await store.lineage(of: name).map(\.id))
                } catch let e as StrataError where e.code == .imageNotFound {
                    continue  // as dockerd: a cache source that is not there is skipped
                }
            }
            cacheSources = sources
        }
        totalSteps = file.metaArgs.count + stages.reduce(0) { $0 + 1 + $1.instructions.count }
        // Meta ARGs are steps too (`Step 1/n : ARG BASE=busybox`), with nothing to commit.
        for inst in file.metaArgs { announce(inst) }
        var image: Digest?
        for stage in stages {
            let result = try await buildStage(stage)
            stageImages[stage.index] = result
            image = result
        }
        guard let image else { throw StrataError(.invalidArgument, "the Dockerfile has no stage to build") }
        let unused = options.buildArgs.keys.filter { !usedArgs.contains($0) && !predefinedArgs.contains($0) }.sorted()
        if !unused.isEmpty { log("[Warning] One or more build-args [\(unused.joined(separator: " "))] were not consumed") }
        options.built?(image)
        log("Successfully built \(image.shortHex)")
        var tags: [String] = []
        for t in options.tags {
            try await store.tag(image.string, as: t)
            let familiar = try Reference(t).familiar
            tags.append(familiar)
            log("Successfully tagged \(familiar)")
        }
        return BuildResult(imageID: image, tags: tags, steps: step, cachedSteps: cachedSteps, unusedBuildArgs: unused)
    }

    /// `Step n/m : INSTRUCTION …`
    func announce(_ inst: Instruction) {
        step += 1
        log("Step \(step)/\(totalSteps) : \(inst.original)")
    }

    private func buildStage(_ stage: Stage) async throws -> Digest {
        announce(stage.from)
        guard case .words(let words) = stage.from.arguments, let first = words.first else {
            throw StrataError(.dockerfileSyntax, "Dockerfile line \(stage.from.line): FROM needs an image name")
        }
        // FROM sees the meta ARGs and, as in BuildKit, the automatic platform ARGs.
        let fromEnv = platformArgs.merging(metaArgs) { $1 }
        let name = try lexer.expand(first, env: fromEnv)
        var platform = options.platform
        if let p = stage.from.flag("platform"), !p.isEmpty {
            platform = try Platform(parsing: try lexer.expand(p, env: fromEnv))
        }
        let base: Digest
        var shown: String
        if name.lowercased() == "scratch" {
            base = try await store.scratchImage(platform: platform ?? .host)
            shown = ""
        } else if let s = file.stage(named: name), s.index < stage.index, Int(name) == nil, let img = stageImages[s.index] {
            base = img
            shown = img.shortHex
        } else {
            base = try await resolveImage(name, platform: platform)
            shown = base.shortHex
        }
        log(" ---> \(shown)")
        var state = StageState(image: base, settings: try ImageConfig.decode(try await store.imageConfigData(base), digest: base).config ?? ContainerConfig())
        // Docker and buildah give every stage a PATH when its base has none.
        if state.settings.environment["PATH"] == nil {
            state.settings.setEnv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        }
        // ONBUILD triggers of the base run first; the new image does not inherit them.
        let triggers = state.settings.OnBuild ?? []
        state.settings.OnBuild = nil
        if !triggers.isEmpty {
            log("# Executing \(triggers.count) build trigger\(triggers.count == 1 ? "" : "s")")
            for t in triggers {
                let parsed = try Dockerfile.parse("FROM scratch\n" + t)
                guard let inst = parsed.stages.first?.instructions.first else { continue }
                try await execute(inst, state: &state)
            }
        }
        for inst in stage.instructions {
            announce(inst)
            try await execute(inst, state: &state)
        }
        return state.image
    }

    /// An image by reference: in the store, else pulled through ``BuildOptions/pull``.
    func resolveImage(_ name: String, platform: Platform?) async throws -> Digest {
        do {
            return try await store.resolve(name)
        } catch let e as StrataError where e.code == .imageNotFound {
            guard let pull = options.pull else {
                throw StrataError(.imageNotFound, "image \(name) not found locally; run strata pull \(name)", cause: e)
            }
            return try await pull(name, platform ?? options.platform)
        }
    }

    // MARK: - Committing a step

    /// The cache key of a step: sha256 of the parent image ID, the normalised instruction
    /// (its created_by after expansion), extra inputs (COPY/ADD flags) and the timestamp.
    func cacheKey(parent: Digest, createdBy: String, extra: String) -> String {
        Digest.sha256(Data("strata-build-v1\n\(parent.string)\n\(createdBy)\n\(extra)\n\(options.timestamp.map(String.init) ?? "-")".utf8)).string
    }

    /// Runs one step through the cache: a hit moves to the cached image; a miss runs `work`
    /// in a temporary container (nil: a metadata-only step, no container), commits, records
    /// the cache entry and removes the container.
    /// - Parameter writes: the bytes `work` is expected to write into the container, when
    ///   known (a COPY's sources); a full disk's message counts them twice, for the container
    ///   and the layer.
    func commitStep(_ state: inout StageState, createdBy: String, extra: String = "", author: String? = nil, showContainer: Bool = false,
                    writes: Int64? = nil, work: ((String, BuildRootfs) async throws -> Void)?) async throws {
        let key = cacheKey(parent: state.image, createdBy: createdBy, extra: extra + (author.map { "\nauthor=\($0)" } ?? ""))
        if !options.noCache, let hit = try await store.cachedBuildResult(key: key), cacheSources?.contains(hit) ?? true {
            log(" ---> Using cache")
            log(" ---> \(hit.shortHex)")
            state.image = hit
            cachedSteps += 1
            return
        }
        let config = state.settings
        var containerID: String?
        stepSpace = (DiskSpace.available(at: store.root.path), writes.map { $0 * 2 })
        if let work {
            let (id, fs) = try await store.createBuildContainer(from: state.image)
            containerID = id
            if showContainer { log(" ---> Running in \(id.prefix(12))") }
            do {
                try await work(id, fs)
            } catch {
                _ = try? await store.removeContainer(id, force: true)
                throw error
            }
        }
        let result: Digest
        do {
            result = try await store.commitBuildStep(BuildStepCommit(
                parent: state.image, container: containerID, containerConfig: config, createdBy: createdBy,
                created: created, clampTime: options.timestamp, author: author))
            try await store.recordBuildCache(key: key, parent: state.image, instruction: createdBy, result: result)
        } catch {
            if let containerID { _ = try? await store.removeContainer(containerID, force: true) }
            throw error
        }
        log(" ---> \(result.shortHex)")
        if let containerID {
            _ = try await store.removeContainer(containerID, force: true)
            if showContainer { log("Removing intermediate container \(containerID.prefix(12))") }
        }
        state.image = result
    }

    /// `/bin/sh -c #(nop) ENV A=b`: the created_by of a metadata step, the SHELL in effect
    /// followed by `#(nop) ` and the instruction (the form buildah writes too).
    func nop(_ state: StageState, _ comment: String) -> String {
        nopString(state, comment)
    }

    /// `/bin/sh -c #(nop) WORKDIR /app`: the one-string form moby uses for WORKDIR, COPY and ADD.
    func nopString(_ state: StageState, _ comment: String) -> String {
        (state.shell + ["#(nop) " + comment]).joined(separator: " ")
    }
}
