import Strata
import StrataBuild

/// `commit -c` values as config edits: each goes through the Dockerfile parser
/// (``ConfigEdit/parse(_:env:)``), its words expanded against the image's ENV and the ENV
/// of the changes before it.
func commitEdits(_ changes: [String], container: String, store: Store) async throws -> [ConfigEdit] {
    guard !changes.isEmpty else { return [] }
    let c = try await store.container(container)
    var env: [String: String] = [:]
    for e in try await store.inspect(c.imageID.string).config.config?.Env ?? [] {
        let kv = e.split(separator: "=", maxSplits: 1).map(String.init)
        env[kv[0]] = kv.count > 1 ? kv[1] : ""
    }
    var edits: [ConfigEdit] = []
    for change in changes {
        let new = try ConfigEdit.parse(change, env: env)
        for case .env(let k, let v) in new { env[k] = v }
        edits += new
    }
    return edits
}
