// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "strata",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "StrataErrors", targets: ["StrataErrors"]),
        .library(name: "OCI", targets: ["OCI"]),
        .library(name: "Strata", targets: ["Strata"]),
        .executable(name: "strata", targets: ["strata"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Already in the graph through async-http-client; named here for the Engine API's
        // TLS listener (`strata serve --tlsverify`).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.36.0"),
    ],
    targets: [
        // libarchive, zlib, zstd and xxhash through a small C shim (streaming decompression,
        // XXH3-128 file digests, locale-safe helpers, constants Swift cannot import as macros).
        .target(
            name: "CArchive",
            linkerSettings: [.linkedLibrary("archive"), .linkedLibrary("z"), .linkedLibrary("zstd"), .linkedLibrary("xxhash")]
        ),
        // The one error type, below every other module.
        .target(name: "StrataErrors"),
        .target(
            name: "OCI",
            dependencies: ["StrataErrors", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .executableTarget(name: "EmbedMigrations"),
        .plugin(
            name: "EmbedMigrationsPlugin",
            capability: .buildTool(),
            dependencies: ["EmbedMigrations"]
        ),
        .target(
            name: "Strata",
            dependencies: [
                "OCI", "CArchive",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for listings that read thousands of rows (RawRows).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            plugins: ["EmbedMigrationsPlugin"]
        ),
        .target(name: "StrataBuild", dependencies: ["Strata", "OCI", "CArchive", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "StrataRegistry",
            dependencies: ["Strata", "OCI", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The Docker Engine API on a unix socket (and TCP, loopback or TLS with client
        // certificates): a thin HTTP adapter over the store.
        .target(
            name: "StrataEngine",
            dependencies: ["Strata", "OCI", "StrataBuild", "StrataRegistry",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .target(
            name: "StrataCLI",
            dependencies: [
                "Strata", "OCI", "StrataBuild", "StrataRegistry", "StrataEngine", "CArchive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "strata", dependencies: ["StrataCLI"]),
        // Helpers the test targets share (a seeded generator); not a product.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "StrataErrorsTests", dependencies: ["StrataErrors"]),
        .testTarget(name: "OCITests", dependencies: ["OCI", "TestSupport"]),
        .testTarget(name: "StrataTests", dependencies: ["Strata", "OCI", "CArchive", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "StrataCLITests", dependencies: ["StrataCLI", "Strata", "OCI"]),
        .testTarget(name: "StrataRegistryTests", dependencies: ["StrataRegistry", "Strata", "OCI"]),
        .testTarget(name: "StrataEngineTests", dependencies: ["StrataEngine", "Strata", "OCI", .product(name: "NIOHTTP1", package: "swift-nio")]),
        .testTarget(name: "StrataBuildTests", dependencies: ["StrataBuild", "StrataCLI", "Strata", "OCI", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
