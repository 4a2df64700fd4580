import ArgumentParser
import Foundation
import Strata

struct TreeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tree",
        abstract: "Show an image's parent chain and layer chain as a tree.",
        discussion: """
            With --whatrequires, show the images that build on this one instead.

            Examples:
              strata tree app:1
              strata tree --whatrequires busybox
            """)

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Show the images that depend on this one.")
    var whatrequires = false
    enum Format: String, ExpressibleByArgument, CaseIterable { case tree, json }
    @Option(help: "Output format: tree or json.")
    var format: Format = .tree
    @Argument var image: String

    func run() async throws {
        let store = try await global.openStore()
        let details = try await store.inspect(image)
        if whatrequires {
            let deps = try await store.dependents(of: image)
            if format == .json { print(try Output.json(deps)); return }
            print(header(details))
            print("Required by:")
            if deps.count <= 1 { print("(no images depend on this one)") }
            for (i, n) in deps.enumerated() where n.depth > 0 {
                let last = !deps[(i + 1)...].contains { $0.depth == n.depth }
                let indent = String(repeating: "    ", count: n.depth - 1)
                print(indent + (last ? "└── " : "├── ") + describe(n))
            }
            return
        }
        let lineage = try await store.lineage(of: image)
        let layers = try await store.layers(of: image)
        if format == .json {
            struct Tree: Encodable { var lineage: [ImageNode]; var layers: [LayerInfo] }
            print(try Output.json(Tree(lineage: lineage, layers: layers)))
            return
        }
        print(header(details))
        print("Parent chain:")
        for (i, n) in lineage.enumerated() {
            print(String(repeating: "    ", count: i) + "└── " + describe(n))
        }
        print("Image Layers:")
        for (i, l) in layers.enumerated() {
            var line = (i == layers.count - 1 ? "└── " : "├── ") + "ID: \(l.chainID.shortHex) Size: \(Units.size(l.size))"
            if !l.topLayerOf.isEmpty { line += " Top Layer of: [\(l.topLayerOf.joined(separator: " "))]" }
            print(line)
        }
    }

    private func header(_ d: ImageDetails) -> String {
        "Image ID: \(d.id.shortHex)\nTags:     [\(d.repoTags.joined(separator: " "))]\nSize:     \(Units.size(d.size))"
    }

    private func describe(_ n: ImageNode) -> String {
        var s = n.id.shortHex
        if !n.tags.isEmpty { s += " [\(n.tags.joined(separator: " "))]" }
        s += " \(Units.size(n.size)), \(n.layerCount) layer\(n.layerCount == 1 ? "" : "s")"
        if !n.createdBy.isEmpty { s += ": " + Units.ellipsis(n.createdBy, 45) }
        return s
    }
}

