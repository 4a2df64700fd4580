import OCI

/// `Digest` is OCI's (Crypto has a protocol of the same name).
typealias Digest = OCI.Digest
