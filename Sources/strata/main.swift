import Foundation
import OCI
import StrataCLI

// Arguments are bytes too (law 9): a path argument that is not UTF-8 (`strata cp 'caf\xe9' c:/`)
// is carried losslessly (RawName) instead of Swift's lossy decoding of argv.
let arguments = (1..<Int(CommandLine.argc)).compactMap { i in CommandLine.unsafeArgv[i].map { RawName.decode(cString: $0) } }
// Without root: into the user namespace first (it re-executes this program and does not return).
if let status = Rootless.enterIfNeeded(arguments: arguments) { exit(status) }
await StrataCommand.runAsProcess(arguments: arguments)
