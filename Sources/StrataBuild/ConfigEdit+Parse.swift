import Foundation
import OCI
import Strata

extension ConfigEdit {
    /// Parses one `commit -c` change — a Dockerfile instruction — with the Dockerfile parser,
    /// as `docker commit --change` does: CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME, WORKDIR,
    /// USER, STOPSIGNAL, ONBUILD, HEALTHCHECK. Words are expanded against `env` (the image's variables),
    /// quotes are removed, `ENV A="x y" B=z` sets two variables, CMD and ENTRYPOINT take the
    /// exec form or `/bin/sh -c`. Anything else is a one-line error naming the change.
    public static func parse(_ change: String, env: [String: String] = [:]) throws -> [ConfigEdit] {
        func fail(_ why: String) -> StrataError { StrataError(.invalidArgument, "invalid change \"\(change)\": \(why)") }
        guard !change.contains("\n") else { throw fail("one instruction per -c") }
        let file: Dockerfile
        do {
            file = try Dockerfile.parse("FROM scratch\n" + change)
        } catch let e as StrataError {
            throw fail(e.message.replacingOccurrences(of: "Dockerfile line 2: ", with: ""))
        }
        guard let inst = file.stages.first?.instructions.first else { throw fail("expected INSTRUCTION ARGS") }
        let lexer = ShellLexer(escape: file.escape)
        func word(_ w: String) throws -> String { try lexer.expand(w, env: env) }
        func words() throws -> [String] {
            switch inst.arguments {
            case .words(let w): return try w.map(word)
            case .exec(let a): return a
            case .shell(let s): return try lexer.expandWords(s, env: env)
            default: return []
            }
        }
        func command() throws -> [String] {
            switch inst.arguments {
            case .exec(let a): return a
            case .shell(let s) where !s.trimmingCharacters(in: .whitespaces).isEmpty: return ["/bin/sh", "-c", s]
            case .words(let w) where !w.isEmpty: return ["/bin/sh", "-c", w.joined(separator: " ")]
            default: throw fail("\(inst.keyword) needs a command")
            }
        }
        func pairs() throws -> [(String, String)] {
            guard case .keyValues(let kv) = inst.arguments, !kv.isEmpty else { throw fail("\(inst.keyword) needs KEY=VALUE") }
            return try kv.map { (try word($0.key), try word($0.value ?? "")) }
        }
        func one() throws -> String {
            guard let w = try words().first, !w.isEmpty else { throw fail("\(inst.keyword) needs an argument") }
            return w
        }
        switch inst.keyword {
        case "CMD": return [.cmd(try command())]
        case "ENTRYPOINT": return [.entrypoint(try command())]
        case "ENV": return try pairs().map { .env(key: $0.0, value: $0.1) }
        case "LABEL": return try pairs().map { .label(key: $0.0, value: $0.1) }
        case "EXPOSE": return try words().flatMap { try BuildRun.portSpecs($0) }.map { .exposedPort($0) }
        case "VOLUME": return try words().filter { !$0.isEmpty }.map { .volume($0) }
        case "WORKDIR": return [.workingDir(try one())]
        case "USER": return [.user(try one())]
        case "STOPSIGNAL": return [.stopSignal(try one())]
        case "ONBUILD":
            guard case .onbuild(let trigger) = inst.arguments else { throw fail("ONBUILD needs an instruction") }
            return [.onBuild(trigger.original)]
        case "HEALTHCHECK":
            do {
                guard let value = try BuildRun.healthcheck(inst).0 else { throw fail("HEALTHCHECK needs CMD or NONE") }
                return [.healthcheck(value)]
            } catch let e as StrataError {
                throw fail(e.message.replacingOccurrences(of: "Dockerfile line 2: ", with: ""))
            }
        default:
            throw fail("\(inst.keyword) cannot be changed by commit: use CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, ONBUILD or HEALTHCHECK")
        }
    }
}

extension ConfigEdit {
    /// Parses the `commit -c` changes for a commit of `container` (``parse(_:env:)`` each, in
    /// order): words expand against the ENV of the container's image and of the changes before
    /// them, as `docker commit --change` does. Used by `strata commit` and `POST /commit`.
    ///
    /// ```swift
    /// let edits = try await ConfigEdit.parse(changes: ["ENV A=1", "CMD echo $A"], forContainer: "web", in: store)
    /// _ = try await store.commit("web", options: CommitOptions(edits: edits, reference: "app:2"))
    /// ```
    public static func parse(changes: [String], forContainer container: String, in store: Store) async throws -> [ConfigEdit] {
        guard !changes.isEmpty else { return [] }
        let c = try await store.container(container)
        var env: [String: String] = [:]
        for e in try await store.inspect(c.imageID.string).config.config?.Env ?? [] {
            let kv = e.split(separator: "=", maxSplits: 1).map(String.init)
            guard let key = kv.first else { continue }
            env[key] = kv.count > 1 ? kv[1] : ""
        }
        return try parse(changes: changes, env: env)
    }

    /// Parses `import -c` changes (``parse(_:env:)`` each, in order), for an image that has no
    /// config yet (`docker import --change`): words expand against the ENV of the changes
    /// before them, or of `env`.
    public static func parse(changes: [String], env: [String: String] = [:]) throws -> [ConfigEdit] {
        var env = env
        var edits: [ConfigEdit] = []
        for change in changes {
            let new = try parse(change, env: env)
            for case .env(let k, let v) in new { env[k] = v }
            edits += new
        }
        return edits
    }
}
