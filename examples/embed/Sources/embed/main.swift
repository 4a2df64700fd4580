// Usage: embed STORE_DIR ROOTFS.tar
// Imports a rootfs as an image, tags it, lists images and history, walks the lineage,
// saves the image and loads it back into a second store.
import Foundation
import Strata

let args = CommandLine.arguments
guard args.count == 3 else {
    FileHandle.standardError.write(Data("usage: embed STORE_DIR ROOTFS.tar\n".utf8))
    exit(2)
}
do {
    let store = try await Store.open(at: URL(fileURLWithPath: args[1]))
    let image = try await store.importRootfs(from: URL(fileURLWithPath: args[2]), reference: "embedded/base:1")
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
