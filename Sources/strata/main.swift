import Foundation
import StrataCLI

exit(await StrataCommand.main(arguments: Array(CommandLine.arguments.dropFirst())))
