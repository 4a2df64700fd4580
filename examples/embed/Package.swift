// swift-tools-version:6.0
// A small program that embeds the strata store as a library.
import PackageDescription

let package = Package(
    name: "embed",
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(name: "embed", dependencies: [.product(name: "Strata", package: "main")]),
    ],
    swiftLanguageModes: [.v6]
)
