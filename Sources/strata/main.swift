import Foundation
import OCI
import StrataCLI

// Arguments are bytes too (law 9): a path argument that is not UTF-8 (`strata cp 'caf\xe9' c:/`)
// is carried losslessly (RawName) instead of Swift's lossy decoding of argv.
let arguments = (1..<Int(CommandLine.argc)).compactMap { i in CommandLine.unsafeArgv[i].map { RawName.decode(cString: $0) } }
exit(await StrataCommand.main(arguments: arguments))
