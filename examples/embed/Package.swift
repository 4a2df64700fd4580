// swift-tools-version:6.0
// A small program that embeds the strata store as a library.
import Foundation
import PackageDescription

// A path dependency's package identity is its directory name, whatever the checkout is called.
let strataRoot = URL(fileURLWithPath: Context.packageDirectory).appendingPathComponent("../..").standardizedFileURL
let strataIdentity = strataRoot.lastPathComponent.lowercased()

let package = Package(
    name: "embed",
    dependencies: [.package(path: strataRoot.path)],
    targets: [
        .executableTarget(name: "embed", dependencies: [.product(name: "Strata", package: strataIdentity)]),
    ],
    swiftLanguageModes: [.v6]
)
