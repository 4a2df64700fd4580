import Foundation
import OCI

extension String {
    /// This path's exact bytes as a C string for a system call (law 9): a name that holds
    /// bytes which are not UTF-8 is carried through ``RawName``'s mapping and turned back here.
    package var cPath: [CChar] { RawName.cString(self) }
}

/// A symlink's target, as exact bytes carried in a `String` (see ``RawName``).
func readLinkTarget(_ path: String) -> String? {
    var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = buf.withUnsafeMutableBufferPointer { p in
        p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { readlink(path.cPath, $0, Int(PATH_MAX)) }
    }
    guard n >= 0 else { return nil }
    return RawName.decode(buf[0..<n])
}

/// The names in a directory (no `.` and `..`), as exact bytes carried in `String`s (see
/// ``RawName``), unsorted. Empty when the directory cannot be read. Unlike
/// `FileManager.contentsOfDirectory`, a name that is not UTF-8 is neither dropped nor altered.
///
/// ```swift
/// for name in rawDirectoryEntries("/srv/context").sorted() { print(RawName.escaped(name)) }
/// ```
public func rawDirectoryEntries(_ path: String) -> [String] {
    guard let d = opendir(path.cPath) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: &e.pointee.d_name) { p in
            p.withMemoryRebound(to: CChar.self, capacity: 256) { RawName.decode(cString: $0) }
        }
        if name == "." || name == ".." { continue }
        names.append(name)
    }
    return names
}
