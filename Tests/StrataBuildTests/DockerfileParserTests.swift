import Testing
@testable import StrataBuild
