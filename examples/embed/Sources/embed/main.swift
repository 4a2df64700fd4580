// Usage: embed STORE_DIR ROOTFS.tar
// Imports a rootfs as an image, tags it, lists images and history, walks the lineage,
// makes and removes a container, saves the image and loads it back into a second store.
import Foundation
import Strata

let args = CommandLine.arguments
guard args.count == 3 else {
    FileHandle.standardError.write(Data("usage: embed STORE_DIR ROOTFS.tar\n".utf8))
    exit(2)
}
do {
    // As a user without root: into the user namespace the strata command uses, before any
    // thread starts (nothing as root). Without it, loading and listing work, but unpacking
    // layers (containers) and running them fail with a StrataError that says what to do.
    try UserNamespace.enterIfNeeded()
    let store = try await Store.open(at: URL(fileURLWithPath: args[1]))
    let image = try await store.importRootfs(from: URL(fileURLWithPath: args[2]), reference: "embedded/base:1")
    let container = try await store.createContainer(from: image.id.string)
    print("container \(container.id.prefix(12)) \(geteuid() == 0 && UserNamespace.isNested ? "in the user namespace" : "made as uid \(geteuid())")")
    _ = try await store.removeContainer(container.id)
    try await store.tag("embedded/base:1", as: "embedded/base:latest")
    for i in try await store.images() {
        print("image \(i.id.shortHex) tags=\(i.tags) size=\(i.size)")
    }
    for step in try await store.history(of: "embedded/base:latest") {
        print("history \(step.id?.shortHex ?? "<missing>") \(step.comment) \(step.size)")
    }
    print("lineage \(try await store.lineage(of: image.id.string).map(\.id.shortHex))")
    let archive = URL(fileURLWithPath: args[1]).appendingPathComponent("../embed-save.tar").standardizedFileURL
    try await store.save(["embedded/base:latest"], to: archive)
    let second = try await Store.open(at: URL(fileURLWithPath: args[1] + "-copy"))
    let loaded = try await second.load(from: archive)
    guard loaded.map(\.id) == [image.id] else {
        print("round trip changed the image ID")
        exit(1)
    }
    print("round trip ok: \(loaded[0].id)")
} catch let e as StrataError {
    FileHandle.standardError.write(Data("error: \(e.message) [\(e.code.rawValue)]\n".utf8))
    exit(1)
}
