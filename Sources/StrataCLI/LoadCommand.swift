import ArgumentParser
import Foundation
import Strata
import StrataRegistry

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load images from a docker-archive, an oci-archive or an OCI layout directory.",
        discussion: """
            Accepts the legacy docker-archive (manifest.json + <id>/layer.tar), the Docker 25+ \
            archive, an oci-archive tar and an OCI layout directory; a tar may be gzip or zstd \
            compressed as a whole. Every digest and size is verified.

            Examples:
              strata load -i busybox.tar
              strata load -i app.oci.tar.zst --platform linux/arm64
              strata load -i ./oci-layout-dir
              gunzip -c app.tar.gz | strata load
            """)

    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .customLong("input")], help: "The archive or OCI layout directory to read (default: standard input).")
    var input: String?
    @Option(help: "Platform to pick from image indexes (os/arch[/variant]); defaults to the host's.")
    var platform: String?
    @Flag(name: .shortAndLong, help: "Print nothing.")
    var quiet = false

    func run() async throws {
        let p = try platform.map { try Platform(parsing: $0) }
        if input == nil, isatty(0) != 0 {
            throw StrataError(.invalidArgument, "no input: use -i FILE or pipe an archive into strata load")
        }
        let store = try await global.openStore()
        let loaded = try await store.load(from: URL(fileURLWithPath: input ?? "/dev/stdin"), options: LoadOptions(platform: p))
        guard !quiet else { return }
        for image in loaded {
            if image.tags.isEmpty {
                print("Loaded image ID: \(image.id)")
            } else {
                for t in image.tags { print("Loaded image: \(t)") }
            }
        }
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Make a one-layer image from a root filesystem tarball.",
        discussion: """
            Example:
              strata import rootfs.tar base:1
              strata import -c 'CMD ["/bin/sh"]' -c 'ENV LANG=C.UTF-8' rootfs.tar base:1
              strata import https://example.com/rootfs.tar.gz base:1
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "A tar (plain, gzip or zstd) holding the root filesystem, or its http(s) URL (downloaded into the store first, at most 2 GB).")
    var file: String
    @Argument(help: "Name for the image, e.g. base:1.")
    var reference: String?
    @Option(name: .shortAndLong, help: "Commit message for the history entry.")
    var message: String?
    @Option(help: "Platform to record (os/arch[/variant]); defaults to the host's.")
    var platform: String?
    @Option(name: [.customShort("c"), .customLong("change")],
            help: "A Dockerfile instruction for the image's config (CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, ONBUILD).")
    var change: [String] = []

    func run() async throws {
        let p = try platform.map { try Platform(parsing: $0) }
        let edits = try ConfigEdit.parse(changes: change)
        if let reference { _ = try Reference(reference) }
        let store = try await global.openStore()
        let options = ImportOptions(message: message, platform: p, edits: edits)
        let image = file.hasPrefix("http://") || file.hasPrefix("https://")
            ? try await Download.importRootfs(file, into: store, reference: reference, options: options)
            : try await store.importRootfs(from: URL(fileURLWithPath: file), reference: reference, options: options)
        print(image.id)
    }
}

struct SaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Save images to one archive (layers shared between them are written once).",
        discussion: """
            The default format is the Docker 25+ archive, which docker, podman, skopeo, \
            containerd and umoci all load. The output is byte-reproducible.

            Examples:
              strata save -o app.tar app:latest base:1
              strata save --format oci-archive -o app.oci.tar app:latest
              strata save --format oci-dir -o ./layout app:latest
            """)

    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Output file (or directory for oci-dir). Without it, the tar goes to standard output.")
    var output: String?
    @Option(help: "docker, oci-archive or oci-dir.")
    var format: String = "docker"
    @Argument(help: "Images to save.")
    var images: [String]

    func validate() throws {
        guard ArchiveFormat(rawValue: format) != nil else {
            throw ValidationError("invalid --format \"\(format)\": use docker, oci-archive or oci-dir")
        }
        guard !images.isEmpty else { throw ValidationError("save needs at least one image") }
    }

    func run() async throws {
        let f = ArchiveFormat(rawValue: format) ?? .docker
        if output == nil, isatty(1) != 0 {
            throw StrataError(.invalidArgument, "refusing to write an archive to a terminal: use -o FILE or redirect standard output")
        }
        let store = try await global.openStore()
        try await store.save(images, to: output.map { URL(fileURLWithPath: $0) }, format: f)
    }
}
