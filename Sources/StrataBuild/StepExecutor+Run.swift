import Foundation
import OCI
import Strata

/// RUN: the command, its heredocs, and its `--mount`s (BuildKit's cache, bind, tmpfs,
/// secret and ssh mounts) in the step's temporary container.
extension BuildRun {
    // MARK: RUN

    func run(_ inst: Instruction, state: inout StageState) async throws {
        var args: [String]
        switch inst.arguments {
        case .exec(let a):
            args = a
        case .shell(var s):
            // `RUN <<EOF` alone: the body is the script (as BuildKit runs it). Otherwise the
            // heredocs go to the shell as written: `cmd <<EOF` followed by the body.
            if inst.heredocs.count == 1, let h = inst.heredocs.first,
               Heredoc.marker(s.trimmingCharacters(in: .whitespaces))?.name == h.name {
                args = state.shell + [h.content]  // the shell expands, as it runs the script
                break
            }
            for h in inst.heredocs {
                let body = h.content  // the delimiter's quoting is in `s`: the shell decides expansion
                s += "\n" + body + (body.hasSuffix("\n") || body.isEmpty ? "" : "\n") + h.name
            }
            args = state.shell + [s]
        default:
            throw StrataError(.dockerfileSyntax, "Dockerfile line \(inst.line): RUN needs a command")
        }
        guard !args.isEmpty else { throw StrataError(.dockerfileSyntax, "Dockerfile line \(inst.line): RUN needs a command") }
        let runArgs = state.runArgs
        var createdBy = args.joined(separator: " ")
        if !runArgs.isEmpty {
            createdBy = "|\(runArgs.count) " + runArgs.map { "\($0.0)=\($0.1)" }.joined(separator: " ") + " " + createdBy
        }
        var env = state.settings.Env ?? []
        if !env.contains(where: { $0.hasPrefix("PATH=") }) {
            env.append("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        }
        env += runArgs.map { "\($0.0)=\($0.1)" }
        for (k, v) in options.buildArgs.sorted(by: { $0.key < $1.key }) where predefinedArgs.contains(k) && state.args[k] == nil {
            env.append("\(k)=\(v)")
        }
        var command = BuildCommand(args: args, env: env, user: state.settings.User ?? "",
                                   workingDir: Self.absolute((state.settings.WorkingDir ?? ""), relativeTo: "/"),
                                   output: options.runOutput, volumes: state.settings.Volumes ?? [])
        command.errors = options.runErrors
        command.extraHosts = options.extraHosts
        command.hostNetwork = options.hostNetwork
        let mounts = try await runMounts(inst, state: state)
        let store = self.store
        let shown = args.joined(separator: " ")
        // The mounts are in the key by their spec, a context bind also by its content's
        // checksum, a stage/image bind by the image ID; a cache mount's content never is.
        let extra = mounts.isEmpty ? "" : "mounts=" + mounts.map(\.key).joined(separator: "\n")
        try await commitStep(&state, createdBy: createdBy, extra: extra, showContainer: true) { id, _ in
            var containers: [String] = []
            var scratchDirs: [String] = []
            defer { for d in scratchDirs { try? FileManager.default.removeItem(atPath: d) } }
            do {
                for m in mounts {
                    switch m.spec {
                    case .cache(let cacheID, let uid, let gid, let mode, let sharing, let ro):
                        command.mounts.append(BuildMount(kind: .cache(id: cacheID, uid: uid, gid: gid, mode: mode, sharing: sharing, readOnly: ro), target: m.target))
                    case .tmpfs(let size):
                        command.mounts.append(BuildMount(kind: .tmpfs(size: size), target: m.target))
                    case .secret(let secret, let uid, let gid, let mode, let envName, let asFile):
                        let data = try secret.read()
                        if let envName {
                            // BuildKit's env=: the value in the step's environment only.
                            guard let text = String(data: data, encoding: .utf8) else {
                                throw StrataError(.invalidArgument, "Dockerfile line \(inst.line): the secret for \(envName) is not text")
                            }
                            command.env.removeAll { $0.hasPrefix(envName + "=") }
                            command.env.append(envName + "=" + text)
                        }
                        guard asFile else { continue }
                        // A private copy with the mount's owner and mode, bound read-only.
                        let dir = try store.makeBuildScratchFile()
                        scratchDirs.append(dir)
                        let copy = dir + "/secret"
                        guard FileManager.default.createFile(atPath: copy, contents: data, attributes: [.posixPermissions: Int(mode)]) else {
                            throw StrataError(.io, "cannot write a copy of the secret in \(dir)")
                        }
                        chmod(copy, mode_t(mode))
                        chown(copy, uid, gid)
                        command.mounts.append(BuildMount(kind: .bind(source: copy, readOnly: true), target: m.target))
                    case .ssh(let socket, let setEnv):
                        // The agent's socket, bound where the step expects it; SSH_AUTH_SOCK
                        // names the first one, as BuildKit does.
                        command.mounts.append(BuildMount(kind: .bind(source: socket, readOnly: false), target: m.target))
                        if setEnv, !command.env.contains(where: { $0.hasPrefix("SSH_AUTH_SOCK=") }) {
                            command.env.append("SSH_AUTH_SOCK=" + m.target)
                        }
                    case .bindImage(let image, let source, let ro):
                        let (cid, fs) = try await store.createBuildContainer(from: image)
                        containers.append(cid)
                        command.mounts.append(BuildMount(kind: .bind(source: try fs.resolve(source), readOnly: ro), target: m.target))
                    case .bindContext(let matched, let ro):
                        // The context's matched files (.dockerignore applied) in a scratch copy:
                        // the step sees them, its writes (rw) go nowhere.
                        let dir = try store.makeBuildScratchFile()
                        scratchDirs.append(dir)
                        let scratch = BuildRootfs(root: dir)
                        var items: [BuildCopyItem] = []
                        var source = dir
                        if matched.isDirectory {
                            for e in matched.entries where !e.relative.isEmpty { items.append(BuildCopyItem(source: e.path, destination: "/" + e.relative)) }
                        } else if let e = matched.entries.first {
                            items.append(BuildCopyItem(source: e.path, destination: "/file"))
                            source = dir + "/file"
                        }
                        try scratch.copy(items, owner: nil, mode: nil)
                        command.mounts.append(BuildMount(kind: .bind(source: source, readOnly: ro), target: m.target))
                    }
                }
                let status = try await store.runBuildCommand(in: id, command)
                if status != 0 {
                    let quoted = inst.arguments.isExec ? Self.jsonArray(args) : shown
                    let failed = "The command '\(quoted)' returned a non-zero code: \(status)"
                    // A command that failed while the store's disk is full (its writes land
                    // there) most likely failed of it: say so, since its own message is gone.
                    if let free = DiskSpace.available(at: store.root.path), free < 1 << 20 {
                        throw StrataError(.diskFull, "disk full: \(failed), with \(free / 1024) KB left free on \(DiskSpace.mountPoint(of: store.root.path))")
                    }
                    throw StrataError(.buildStepFailed, failed, cause: BuildCommandStatus(status: status))
                }
            } catch {
                for c in containers { _ = try? await store.removeContainer(c, force: true) }
                throw error
            }
            for c in containers { _ = try await store.removeContainer(c, force: true) }
        }
    }

    /// One parsed `RUN --mount`.
    struct RunMount {
        enum Spec {
            case cache(id: String, uid: UInt32, gid: UInt32, mode: UInt32, sharing: BuildMount.CacheSharing, readOnly: Bool)
            case tmpfs(size: Int64?)
            case bindImage(Digest, source: String, readOnly: Bool)
            case bindContext(MatchedSource, readOnly: Bool)
            /// `env`: the variable that gets the value; `asFile`: mounted at the target too.
            case secret(BuildSecret, uid: UInt32, gid: UInt32, mode: UInt32, env: String?, asFile: Bool)
            /// An SSH agent socket; `setEnv` for the first ssh mount of the step.
            case ssh(socket: String, setEnv: Bool)
        }
        var spec: Spec
        var target: String
        /// What the cache key holds of it.
        var key: String
    }

    /// `--mount=type=cache|bind|tmpfs,...` as BuildKit reads them (comma-separated key=value,
    /// keys case-insensitive, `type` bind by default, bind read-only unless `rw`).
    private func runMounts(_ inst: Instruction, state: StageState) async throws -> [RunMount] {
        var out: [RunMount] = []
        var sshCount = 0
        func fail(_ m: String) -> StrataError { StrataError(.invalidArgument, "Dockerfile line \(inst.line): --mount: \(m)") }
        for flag in inst.flags where flag.name == "mount" {
            let text = try lexer.expand(flag.value ?? "", env: state.expansionEnv)
            var fields: [String: String] = [:]
            for part in text.split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                let key = kv[0].trimmingCharacters(in: .whitespaces).lowercased()
                guard !key.isEmpty else { continue }
                fields[key] = kv.count > 1 ? kv[1] : "true"
            }
            func bool(_ k: String) -> Bool { fields[k].map { ["true", "1", ""].contains($0.lowercased()) } ?? false }
            let type = fields["type"]?.lowercased() ?? "bind"
            let rawTarget = fields["target"] ?? fields["dst"] ?? fields["destination"] ?? ""
            if rawTarget.isEmpty && type != "secret" && type != "ssh" {
                throw fail("target is required, e.g. --mount=type=\(type),target=/path")
            }
            let target = Self.absolute(rawTarget, relativeTo: (state.settings.WorkingDir ?? ""))
            let readWrite = bool("rw") || bool("readwrite")
            let readOnly = bool("ro") || bool("readonly")
            func number(_ k: String, radix: Int = 10) throws -> UInt32 {
                guard let v = fields[k] else { return k == "mode" ? 0o755 : 0 }
                guard let n = UInt32(v, radix: radix) else { throw fail("invalid \(k)=\(v)") }
                return n
            }
            switch type {
            case "cache":
                let id = fields["id"] ?? target
                let (uid, gid, mode) = (try number("uid"), try number("gid"), try number("mode", radix: 8))
                let sharingText = fields["sharing"]?.lowercased() ?? "shared"
                guard let sharing = BuildMount.CacheSharing(rawValue: sharingText) else { throw fail("sharing must be shared, private or locked") }
                if fields["from"] != nil { throw fail("a cache mount from a stage is not supported; use type=bind") }
                out.append(RunMount(spec: .cache(id: id, uid: uid, gid: gid, mode: mode, sharing: sharing, readOnly: readOnly),
                                    target: target, key: "cache id=\(id) target=\(target) uid=\(uid) gid=\(gid) mode=\(String(mode, radix: 8)) sharing=\(sharingText) ro=\(readOnly)"))
            case "tmpfs":
                let size = try fields["size"].map { v -> Int64 in
                    guard let n = Int64(v), n >= 0 else { throw fail("invalid size=\(v): give bytes") }
                    return n
                }
                out.append(RunMount(spec: .tmpfs(size: size), target: target, key: "tmpfs target=\(target) size=\(size.map(String.init) ?? "")"))
            case "bind":
                let ro = !readWrite
                if let from = fields["from"] {
                    let image: Digest
                    if let s = file.stage(named: from), let img = stageImages[s.index] {
                        image = img
                    } else if file.stage(named: from) != nil {
                        throw fail("from=\(from) names a stage that is not built before this one")
                    } else {
                        image = try await resolveImage(from, platform: options.platform)
                    }
                    let source = Self.absolute(fields["source"] ?? fields["src"] ?? "/", relativeTo: "/")
                    out.append(RunMount(spec: .bindImage(image, source: source, readOnly: ro), target: target,
                                        key: "bind from=\(image.string) source=\(source) target=\(target) ro=\(ro)"))
                } else {
                    let source = fields["source"] ?? fields["src"] ?? "."
                    let found: MatchedSource?
                    do { found = try context.match(source).first } catch is DanglingMatch { found = nil }
                    guard let matched = found else {
                        throw fail("source \(source) is not in the build context (or .dockerignore excludes it)")
                    }
                    let sum = try SourceTree.checksum([matched])
                    out.append(RunMount(spec: .bindContext(matched, readOnly: ro), target: target,
                                        key: "bind context source=\(matched.name) sum=\(sum) target=\(target) ro=\(ro)"))
                }
            case "secret":
                // BuildKit: id defaults to the target's base name, the target to /run/secrets/ID;
                // env=VAR puts the value in VAR, and then a file only when a target is given.
                // A missing secret is skipped unless required. Only the id is in the cache key.
                let explicitTarget = fields["target"] ?? fields["dst"] ?? fields["destination"]
                let rawID = fields["id"] ?? explicitTarget.map { splitBase($0) } ?? ""
                guard !rawID.isEmpty else { throw fail("a secret mount needs id= or target=") }
                let secretTarget = explicitTarget.map { Self.absolute($0, relativeTo: (state.settings.WorkingDir ?? "")) } ?? "/run/secrets/" + rawID
                let envName = fields["env"].flatMap { $0.isEmpty ? nil : $0 }
                if let envName, envName.contains("=") { throw fail("invalid env=\(envName): give a variable name") }
                guard let secret = options.secrets[rawID] else {
                    if bool("required") { throw fail("secret \(rawID) is required: give it with --secret id=\(rawID),src=PATH") }
                    continue
                }
                let asFile = envName == nil || explicitTarget != nil
                out.append(RunMount(spec: .secret(secret, uid: try number("uid"), gid: try number("gid"),
                                                  mode: fields["mode"] == nil ? 0o400 : try number("mode", radix: 8), env: envName, asFile: asFile),
                                    target: secretTarget, key: "secret id=\(rawID) target=\(asFile ? secretTarget : "") env=\(envName ?? "")"))
            case "ssh":
                // BuildKit: id "default", target /run/buildkit/ssh_agent.N (N counts the step's
                // ssh mounts), SSH_AUTH_SOCK set to the first; skipped unless required when
                // no agent was given for the id. The socket keeps the agent's own owner and
                // mode, so only BuildKit's defaults (uid 0, gid 0, mode 0600) are accepted.
                let id = fields["id"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
                let index = sshCount
                sshCount += 1
                let sshTarget = rawTarget.isEmpty ? "/run/buildkit/ssh_agent.\(index)" : target
                if try number("uid") != 0 || number("gid") != 0 || (fields["mode"] != nil && number("mode", radix: 8) != 0o600) {
                    throw fail("an ssh mount keeps the agent socket's own owner and mode: drop uid=, gid= and mode=, or run the step as root")
                }
                guard let socket = options.sshAgents[id] else {
                    if bool("required") { throw fail("ssh agent \(id) is required: give it with --ssh \(id)[=SOCKET]") }
                    continue
                }
                out.append(RunMount(spec: .ssh(socket: socket, setEnv: index == 0), target: sshTarget, key: "ssh id=\(id) target=\(sshTarget)"))
            default:
                throw fail("unknown type=\(type): use bind, cache, tmpfs, secret or ssh")
            }
        }
        return out
    }
}

private func splitBase(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? ""
}
