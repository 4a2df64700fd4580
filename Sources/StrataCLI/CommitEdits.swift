import Strata
import StrataBuild

/// `commit -c` values as config edits: ``ConfigEdit/parse(changes:forContainer:in:)``, the
/// parse `POST /commit` of `strata serve` uses too.
func commitEdits(_ changes: [String], container: String, store: Store) async throws -> [ConfigEdit] {
    try await ConfigEdit.parse(changes: changes, forContainer: container, in: store)
}
