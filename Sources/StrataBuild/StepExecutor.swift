import Foundation
import OCI
import Strata

/// What each instruction does to the stage: its config change, its created_by (the
/// normalised instruction the cache key is made of) and, for RUN, WORKDIR, COPY and ADD,
/// the work done in the step's temporary container.
extension BuildRun {
    func execute(_ inst: Instruction, state: inout StageState) async throws {
        let env = state.expansionEnv
        func expand(_ word: String) throws -> String { try lexer.expand(word, env: env) }
        func fail(_ message: String) -> StrataError {
            StrataError(.dockerfileSyntax, "Dockerfile line \(inst.line): \(message)")
        }
        switch inst.keyword {
        case "RUN":
            try await run(inst, state: &state)
        case "COPY", "ADD":
            try await copy(inst, state: &state)
        case "ENV":
            guard case .keyValues(let pairs) = inst.arguments, !pairs.isEmpty else { throw fail("ENV needs KEY=VALUE") }
            var parts: [String] = []
            for kv in pairs {
                let k = try expand(kv.key)
                let v = try expand(kv.value ?? "")
                state.settings.setEnv(k, v)
                parts.append("\(k)=\(v)")
            }
            try await commitStep(&state, createdBy: nop(state, "ENV " + parts.joined(separator: " ")), work: nil)
        case "ARG":
            guard case .keyValues(let pairs) = inst.arguments, !pairs.isEmpty else { throw fail("ARG needs a name") }
            var parts: [String] = []
            for kv in pairs {
                var value: String? = try kv.value.map(expand)
                parts.append(value.map { "\(kv.key)=\($0)" } ?? kv.key)
                if let v = options.buildArgs[kv.key] {
                    value = v
                    usedArgs.insert(kv.key)
                } else if value == nil, let v = metaArgs[kv.key] {
                    value = v
                } else if value == nil, let v = platformArgs[kv.key] {
                    value = v  // BUILDPLATFORM, TARGETARCH, …: declared in the stage, BuildKit's value
                }
                state.args[kv.key] = .some(value)
            }
            try await commitStep(&state, createdBy: nop(state, "ARG " + parts.joined(separator: " ")), work: nil)
        case "LABEL":
            guard case .keyValues(let pairs) = inst.arguments, !pairs.isEmpty else { throw fail("LABEL needs KEY=VALUE") }
            var parts: [String] = []
            for kv in pairs {
                let k = try expand(kv.key)
                let v = try expand(kv.value ?? "")
                state.settings.addLabel(k, v)
                parts.append("\(k)=\(v)")
            }
            try await commitStep(&state, createdBy: nop(state, "LABEL " + parts.joined(separator: " ")), work: nil)
        case "MAINTAINER":
            let who = try words(inst).map(expand).joined(separator: " ")
            try await commitStep(&state, createdBy: nop(state, "MAINTAINER " + who), author: who, work: nil)
        case "WORKDIR":
            guard let raw = try words(inst).first else { throw fail("WORKDIR needs a path") }
            // An absolute path is kept as written (a trailing slash included); a relative one is
            // joined to the current directory and cleaned — docker's and buildah's rule.
            let path = try expand(raw)
            let written = path.hasPrefix("/") ? path : Self.absolute(path, relativeTo: (state.settings.WorkingDir ?? ""))
            let dir = Self.absolute(written, relativeTo: "/")
            state.settings.WorkingDir = written.isEmpty ? nil : written
            let user = state.settings.User ?? ""
            try await commitStep(&state, createdBy: nopString(state, "WORKDIR " + written)) { _, fs in
                try fs.makeDirectory(dir, owner: fs.workdirOwner(user))  // new directories belong to USER
            }
        case "USER":
            guard let raw = try words(inst).first else { throw fail("USER needs a user") }
            let user = try expand(raw)
            state.settings.User = user.isEmpty ? nil : user
            try await commitStep(&state, createdBy: nop(state, "USER " + user), work: nil)
        case "CMD":
            let cmd = try command(inst, state: state)
            state.settings.Cmd = cmd
            state.cmdSet = true
            try await commitStep(&state, createdBy: nop(state, "CMD " + Self.goQuoted(cmd)), work: nil)
        case "ENTRYPOINT":
            let ep = try command(inst, state: state)
            state.settings.Entrypoint = ep
            if !state.cmdSet { state.settings.Cmd = nil }
            try await commitStep(&state, createdBy: nop(state, "ENTRYPOINT " + Self.goQuoted(ep)), work: nil)
        case "EXPOSE":
            var ports: [String] = []
            for w in try words(inst) {
                let p = try expand(w)
                ports.append(p)
                for spec in try Self.portSpecs(p) { state.settings.addExposedPort(spec) }
            }
            try await commitStep(&state, createdBy: nop(state, "EXPOSE " + ports.joined(separator: " ")), work: nil)
        case "VOLUME":
            var paths: [String] = []
            switch inst.arguments {
            case .exec(let a): paths = try a.map(expand)
            case .words(let w): paths = try w.map(expand)
            default: throw fail("VOLUME needs a path")
            }
            for p in paths where !p.isEmpty { state.settings.addVolume(p) }
            // Metadata only: the mount point appears when a later RUN mounts the volume (docker's
            // classic builder; buildah too, except that it also creates it when VOLUME is last).
            try await commitStep(&state, createdBy: nop(state, "VOLUME [" + paths.joined(separator: " ") + "]"), work: nil)
        case "STOPSIGNAL":
            guard let raw = try words(inst).first else { throw fail("STOPSIGNAL needs a signal") }
            let sig = try expand(raw)
            state.settings.StopSignal = sig
            try await commitStep(&state, createdBy: nop(state, "STOPSIGNAL " + sig), work: nil)
        case "SHELL":
            guard case .exec(let shell) = inst.arguments, !shell.isEmpty else {
                throw fail("SHELL requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]")
            }
            state.settings.Shell = shell
            try await commitStep(&state, createdBy: nop(state, "SHELL [" + shell.joined(separator: " ") + "]"), work: nil)
        case "HEALTHCHECK":
            let (value, comment) = try Self.healthcheck(inst)
            state.settings.Healthcheck = value
            try await commitStep(&state, createdBy: nop(state, "HEALTHCHECK " + comment), work: nil)
        case "ONBUILD":
            guard case .onbuild(let trigger) = inst.arguments else { throw fail("ONBUILD needs an instruction") }
            guard !["ONBUILD", "FROM", "MAINTAINER"].contains(trigger.keyword) else {
                throw fail("\(trigger.keyword) isn't allowed as an ONBUILD trigger")
            }
            state.settings.OnBuild = (state.settings.OnBuild ?? []) + [trigger.original]
            try await commitStep(&state, createdBy: nop(state, "ONBUILD " + trigger.original), work: nil)
        default:
            throw fail("unknown instruction \(inst.keyword)")
        }
    }

    /// The raw words of WORKDIR, USER, EXPOSE, STOPSIGNAL, MAINTAINER.
    private func words(_ inst: Instruction) throws -> [String] {
        switch inst.arguments {
        case .words(let w): return w
        case .shell(let s): return [s]
        case .exec(let a): return a
        default: throw StrataError(.dockerfileSyntax, "Dockerfile line \(inst.line): \(inst.keyword) has unexpected arguments")
        }
    }

    /// CMD/ENTRYPOINT/RUN argv: exec form as written, shell form through the SHELL.
    private func command(_ inst: Instruction, state: StageState) throws -> [String] {
        switch inst.arguments {
        case .exec(let a): return a
        case .shell(let s): return state.shell + [s]
        case .words(let w): return state.shell + [w.joined(separator: " ")]
        default: throw StrataError(.dockerfileSyntax, "Dockerfile line \(inst.line): \(inst.keyword) needs a command")
        }
    }

    // MARK: COPY and ADD

    private func copy(_ inst: Instruction, state: inout StageState) async throws {
        let env = state.expansionEnv
        var raw: [String]
        switch inst.arguments {
        case .exec(let a): raw = a
        case .words(let w): raw = w
        case .shell(let s): raw = s.split(separator: " ").map(String.init)
        default: raw = []
        }
        guard raw.count >= 2 else {
            throw StrataError(.dockerfileSyntax, "Dockerfile line \(inst.line): \(inst.keyword) requires at least two arguments: SOURCE... DEST")
        }
        let destRaw = try lexer.expand(raw.removeLast(), env: env)
        var dest = Self.absolute(destRaw, relativeTo: (state.settings.WorkingDir ?? ""))
        if destRaw.hasSuffix("/") || destRaw == "." || destRaw.hasSuffix("/.") { dest += dest.hasSuffix("/") ? "" : "/" }
        let chown = try inst.flag("chown").map { try lexer.expand($0, env: env) }
        var chmod: UInt32?
        if let m = inst.flag("chmod") {
            let text = try lexer.expand(m, env: env)
            guard let v = UInt32(text, radix: 8), v <= 0o7777 else {
                throw StrataError(.invalidArgument, "Dockerfile line \(inst.line): invalid --chmod=\(text): give octal permissions such as 755")
            }
            chmod = v
        }
        let from = try inst.flag("from").map { try lexer.expand($0, env: env) }

        // The tree sources come from: the context, or another stage's / image's rootfs.
        var tree = context
        var fromContainer: String?
        if let from {
            let image: Digest
            if let s = file.stage(named: from), let img = stageImages[s.index] {
                image = img
            } else if file.stage(named: from) != nil {
                throw StrataError(.invalidArgument, "Dockerfile line \(inst.line): --from=\(from) names a stage that is not built before this one")
            } else {
                image = try await resolveImage(from, platform: options.platform)
            }
            let (id, fs) = try await store.createBuildContainer(from: image)
            fromContainer = id
            tree = SourceTree(root: fs.root, ignore: nil, what: "--from=\(from)")
        }
        do {
            try await copy(inst, from: tree, flags: (chown, chmod, from), raw: raw, dest: dest, destRaw: destRaw, state: &state)
        } catch {
            if let fromContainer { _ = try? await store.removeContainer(fromContainer, force: true) }
            throw error
        }
        if let fromContainer { _ = try await store.removeContainer(fromContainer, force: true) }
    }

    private func copy(_ inst: Instruction, from tree: SourceTree, flags: (chown: String?, chmod: UInt32?, from: String?), raw: [String],
                      dest: String, destRaw: String, state: inout StageState) async throws {
        let isAdd = inst.keyword == "ADD"
        let env = state.expansionEnv
        let (chown, chmod, from) = flags
        var sources: [MatchedSource] = []
        var heredocFiles: [MatchedSource] = []
        var unmatchedGlobs: [String] = []
        for word in raw {
            if let h = inst.heredoc(forWord: word) {
                let dir = try store.makeBuildScratchFile()
                scratch.append(dir)
                let body = h.expand ? try lexer.expandHeredoc(h.content, env: env) : h.content
                let path = dir + "/" + h.name
                guard FileManager.default.createFile(atPath: path, contents: Data(body.utf8), attributes: [.posixPermissions: 0o644]) else {
                    throw StrataError(.io, "cannot write the heredoc \(h.name)")
                }
                heredocFiles.append(MatchedSource(name: h.name, isDirectory: false, entries: [SourceEntry(path: path, relative: "", isDirectory: false)]))
                continue
            }
            let src = try lexer.expand(word, env: env)
            if src.hasPrefix("http://") || src.hasPrefix("https://") || src.hasPrefix("git@") {
                throw StrataError(.invalidArgument, isAdd
                    ? "Dockerfile line \(inst.line): ADD from a URL (\(src)) is not supported: download it into the context and ADD the local file"
                    : "Dockerfile line \(inst.line): source can't be a URL for COPY: \(src)")
            }
            let matched: [MatchedSource]
            do {
                matched = try tree.match(src)
            } catch let e as DanglingMatch {
                throw Self.notFound(inst, tree, e.path)
            }
            if matched.isEmpty {
                // A wildcard that matches nothing is skipped when another source matches
                // (docker, buildah); a plain path must exist.
                if src.contains(where: { "*?[".contains($0) }) {
                    unmatchedGlobs.append(src)
                    continue
                }
                throw Self.notFound(inst, tree, src)
            }
            sources += matched
        }
        sources += heredocFiles
        if sources.isEmpty, let src = unmatchedGlobs.first { throw Self.notFound(inst, tree, src) }
        // More than one source argument: the destination is a directory, with or without a
        // trailing slash (buildah and BuildKit; the classic builder refuses it). One wildcard
        // that matches several files into a path that is not a directory is refused, as the
        // Dockerfile reference says: buildah and BuildKit (moby/buildkit#4550) keep only the
        // last match there.
        let manyMatches = sources.count > 1 && raw.count == 1
        let dest = raw.count > 1 && !dest.hasSuffix("/") ? dest + "/" : dest
        let sum = try SourceTree.checksum(sources)
        let kind = sources.count > 1 ? "multi" : (sources.first?.isDirectory == true ? "dir" : "file")
        let createdBy = nopString(state, "\(inst.keyword) \(kind):\(sum) in \(destRaw) ")
        let extra = "chown=\(chown ?? "")\nchmod=\(chmod.map { String($0, radix: 8) } ?? "")\nfrom=\(from ?? "")"
        let extract = isAdd
        try await commitStep(&state, createdBy: createdBy, extra: extra, writes: Self.bytes(in: sources)) { _, fs in
            var dest = dest
            if manyMatches, !dest.hasSuffix("/") {
                guard fs.isDirectory(dest) else {
                    throw StrataError(.invalidArgument, "Dockerfile line \(inst.line): \(raw[0]) matches \(sources.count) files: when using \(inst.keyword) with more than one source file, the destination must be a directory and end with a /")
                }
                dest += "/"
            }
            let owner = try chown.map { try fs.owner($0) }
            var items: [BuildCopyItem] = []
            var archives: [(String, String)] = []
            for s in sources {
                if s.isDirectory {
                    let base = dest.hasSuffix("/") ? String(dest.dropLast()) : dest
                    try fs.makeDirectory(base.isEmpty ? "/" : base, owner: owner)
                    for e in s.entries where !e.relative.isEmpty {
                        items.append(BuildCopyItem(source: e.path, destination: (base.isEmpty ? "" : base) + "/" + e.relative))
                    }
                } else if let e = s.entries.first {
                    if extract, try Builder.isArchive(e.path) {
                        archives.append((e.path, dest.hasSuffix("/") ? String(dest.dropLast()) : dest))
                        continue
                    }
                    let target: String
                    if dest.hasSuffix("/") || fs.isDirectory(dest) {
                        target = (dest.hasSuffix("/") ? String(dest.dropLast()) : dest) + "/" + (s.name.split(separator: "/").last.map(String.init) ?? s.name)
                    } else {
                        // A destination that is a symlink (dangling too) is written through,
                        // as BuildKit and the classic builder resolve it; the link stays.
                        target = try fs.followingFinalLink(dest)
                    }
                    items.append(BuildCopyItem(source: e.path, destination: target))
                }
            }
            // From another stage or image, the source's owner stays unless --chown (docker, buildah).
            try fs.copy(items, owner: owner, mode: chmod, keepOwner: from != nil)
            for (archive, dir) in archives { try fs.extract(archive: archive, into: dir.isEmpty ? "/" : dir) }
        }
    }

    /// What copying `sources` writes: their regular files' sizes, plus a tar header's worth
    /// (512 bytes) per entry for the layer.
    static func bytes(in sources: [MatchedSource]) -> Int64 {
        var total: Int64 = 0
        for s in sources {
            for e in s.entries {
                var st = stat()
                if lstat(e.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
                total += 512
            }
        }
        return total
    }

    private static func notFound(_ inst: Instruction, _ tree: SourceTree, _ src: String) -> StrataError {
        StrataError(.invalidArgument, "\(inst.keyword) failed: file not found in \(tree.what) or excluded by .dockerignore: stat \(src): file does not exist")
    }

    // MARK: HEALTHCHECK

    /// A HEALTHCHECK's config object (Docker's `Healthcheck`) and the classic builder's
    /// history comment for it; also a `commit`/`import` change.
    static func healthcheck(_ inst: Instruction) throws -> (JSONValue?, String) {
        var test: [String]
        switch inst.arguments {
        case .words(let w) where w.map { $0.uppercased() } == ["NONE"]:
            return (.object(["Test": .strings(["NONE"])]), "&{[\"NONE\"] \"0s\" \"0s\" \"0s\" \"0s\" '\\x00'}")
        case .exec(let a): test = ["CMD"] + a
        case .shell(let s): test = ["CMD-SHELL", s]
        case .words(let w): test = ["CMD-SHELL", w.joined(separator: " ")]
        default: throw StrataError(.dockerfileSyntax, "Dockerfile line \(inst.line): HEALTHCHECK needs CMD or NONE")
        }
        var object: [String: JSONValue] = ["Test": .strings(test)]
        var durations: [Int64] = []
        for name in ["interval", "timeout", "start-period", "start-interval"] {
            var ns: Int64 = 0
            if let v = inst.flag(name) {
                guard let d = GoDuration.nanoseconds(v) else {
                    throw StrataError(.invalidArgument, "Dockerfile line \(inst.line): invalid --\(name)=\(v): use a duration such as 30s or 1m30s")
                }
                ns = d
            }
            durations.append(ns)
            let key = ["interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod", "start-interval": "StartInterval"][name] ?? name
            if ns != 0 { object[key] = .number(Double(ns)) }
        }
        var retries = 0
        if let r = inst.flag("retries") {
            guard let n = Int(r), n >= 0 else { throw StrataError(.invalidArgument, "Dockerfile line \(inst.line): invalid --retries=\(r)") }
            retries = n
            if n != 0 { object["Retries"] = .number(Double(n)) }
        }
        let comment = "&{" + Self.goQuoted(test) + " " + durations.prefix(3).map { "\"" + GoDuration.format(nanoseconds: $0) + "\"" }.joined(separator: " ")
            + " " + "\"" + GoDuration.format(nanoseconds: durations[3]) + "\"" + " '\\x" + String(format: "%02x", retries) + "'}"
        return (.object(object), comment)
    }

    // MARK: Helpers

    /// A container path made absolute against the working directory and cleaned.
    static func absolute(_ path: String, relativeTo wd: String) -> String {
        let joined = path.hasPrefix("/") ? path : (wd.isEmpty ? "/" : wd) + "/" + path
        var out: [Substring] = []
        for c in joined.split(separator: "/") {
            if c == "." || c.isEmpty { continue }
            if c == ".." { _ = out.popLast(); continue }
            out.append(c)
        }
        return "/" + out.joined(separator: "/")
    }

    /// Go's `%q` of a []string: `["/bin/sh" "-c" "echo hi"]`.
    static func goQuoted(_ a: [String]) -> String {
        "[" + a.map { s in
            var out = "\""
            for ch in s.unicodeScalars {
                switch ch {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                default: out.unicodeScalars.append(ch)
                }
            }
            return out + "\""
        }.joined(separator: " ") + "]"
    }

    static func jsonArray(_ a: [String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: a, options: [.withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, `80/udp`, `8000/tcp` … `8002/tcp`.
    static func portSpecs(_ spec: String) throws -> [String] {
        let parts = spec.split(separator: "/", maxSplits: 1).map(String.init)
        guard let range = parts.first, !range.isEmpty else { throw StrataError(.invalidArgument, "invalid EXPOSE port \"\(spec)\"") }
        let proto = parts.count > 1 ? parts[1].lowercased() : "tcp"
        guard ["tcp", "udp", "sctp"].contains(proto) else { throw StrataError(.invalidArgument, "invalid EXPOSE protocol in \"\(spec)\": use tcp, udp or sctp") }
        let bounds = range.split(separator: "-", maxSplits: 1).map { Int($0) }
        guard let lo = bounds.first ?? nil, lo > 0, lo <= 65535 else { throw StrataError(.invalidArgument, "invalid EXPOSE port \"\(spec)\"") }
        var hi = lo
        if bounds.count == 2 {
            guard let h = bounds[1], h >= lo, h <= 65535 else { throw StrataError(.invalidArgument, "invalid EXPOSE port range \"\(spec)\"") }
            hi = h
        }
        return (lo...hi).map { "\($0)/\(proto)" }
    }
}

extension Arguments {
    var isExec: Bool {
        if case .exec = self { return true }
        return false
    }
}
