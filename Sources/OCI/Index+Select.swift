/// Which entries of an image index are images, and which one a platform gets: the one rule
/// load and pull share (law 10).
///
/// The OCI image-index spec says an entry whose `mediaType` is unknown "MUST be ignored": such
/// an entry is never chosen as an image. It is named in an error only when it is what the
/// platform asked for would have been — the entry for that platform, or the index's only one.
extension Index {
    /// Docker marks the manifests that carry an image's attestations (build provenance, SBOM)
    /// with this annotation; they are manifests of a known type, but not images to run.
    public static let referenceTypeAnnotation = "vnd.docker.reference.type"

    /// Whether strata can read this entry as an image: an image manifest, or (with `nested`)
    /// another index; an attestation manifest is not an image.
    public static func isImageEntry(_ d: Descriptor, nested: Bool) -> Bool {
        knowsType(d, nested: nested) && d.annotations?[referenceTypeAnnotation] == nil
    }

    private static func knowsType(_ d: Descriptor, nested: Bool) -> Bool {
        MediaType.isManifest(d.mediaType) || (nested && MediaType.isIndex(d.mediaType))
    }

    /// The entries that are images (``isImageEntry(_:nested:)``), in index order.
    public func imageEntries(nested: Bool) -> [Descriptor] {
        manifests.filter { Self.isImageEntry($0, nested: nested) }
    }

    /// The entry to use on `platform`: one whose platform is exactly it, else one it can run
    /// (``Platform/matches(_:)``), else — unless the platform was asked for explicitly — the
    /// index's only entry. `what` names the index in errors ("index sha256:…").
    ///
    /// - Throws: `.unsupportedMediaType` naming the type and digest when the entry that would
    ///   be chosen has a media type strata does not know; `.platformNotFound` otherwise.
    public func select(_ platform: Platform, explicit: Bool, nested: Bool, what: String) throws -> Descriptor {
        let images = imageEntries(nested: nested)
        let exact = images.first { $0.platform.map { $0.os == platform.os && $0.architecture == platform.architecture && $0.variant == platform.variant } ?? false }
        if let chosen = exact ?? images.first(where: { $0.platform.map(platform.matches) ?? false }) { return chosen }
        let unknown = manifests.filter { !$0.mediaType.isEmpty && !Self.knowsType($0, nested: nested) }
        if let u = unknown.first(where: { $0.platform.map(platform.matches) ?? false }) {
            throw StrataError(.unsupportedMediaType,
                              "unsupported media type \(MediaType.quoted(u.mediaType)) for \(u.digest), the \(platform) entry of \(what)")
        }
        if !explicit, manifests.count == 1, let only = manifests.first {
            if !only.mediaType.isEmpty && !Self.knowsType(only, nested: nested) {
                throw StrataError(.unsupportedMediaType,
                                  "unsupported media type \(MediaType.quoted(only.mediaType)) for \(only.digest), the only entry of \(what)")
            }
            return only
        }
        let available = images.compactMap { $0.platform?.description }.joined(separator: ", ")
        throw StrataError(.platformNotFound,
                          "\(what) has no image for \(platform) (available: \(available.isEmpty ? "none" : available)); choose one with --platform")
    }
}
