import Foundation
import Strata

/// The body of `GET /images/json`, written directly as bytes. At 10,000 images, building a
/// dictionary per image and passing them through `JSONSerialization` took most of the
/// request's time; this writes the same document (the same keys, sorted, slashes not
/// escaped) in one pass.
enum ImageListJSON {
    /// `[{"Containers":…,"Created":…,"Id":…,"Labels":…,"ParentId":…,"RepoDigests":[…],
    /// "RepoTags":[…],"SharedSize":-1,"Size":…,"VirtualSize":…}, …]`, as
    /// ``ImageSummary/dockerJSON()`` describes each image.
    static func encode(_ images: [ImageSummary]) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(images.count * 400)
        out.append(UInt8(ascii: "["))
        for (n, i) in images.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            raw("{\"Containers\":\(i.containers),\"Created\":\(Int64(i.created?.timeIntervalSince1970 ?? 0)),\"Id\":", &out)
            string(i.id.string, &out)
            raw(",\"Labels\":", &out)
            if i.labels.isEmpty {
                raw("null", &out)
            } else {
                out.append(UInt8(ascii: "{"))
                for (k, (key, value)) in i.labels.sorted(by: { $0.key < $1.key }).enumerated() {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    string(key, &out)
                    out.append(UInt8(ascii: ":"))
                    string(value, &out)
                }
                out.append(UInt8(ascii: "}"))
            }
            raw(",\"ParentId\":", &out)
            string(i.parentID?.string ?? "", &out)
            raw(",\"RepoDigests\":", &out)
            array(i.repoDigests, &out)
            raw(",\"RepoTags\":", &out)
            array(i.tags, &out)
            raw(",\"SharedSize\":-1,\"Size\":\(i.size),\"VirtualSize\":\(i.size)}", &out)
        }
        out.append(UInt8(ascii: "]"))
        return Data(RawName.jsonSurrogateEscapes(out))
    }

    private static func raw(_ s: String, _ out: inout [UInt8]) {
        out.append(contentsOf: s.utf8)
    }

    private static func array(_ items: [String], _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (k, s) in items.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            string(s, &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
    /// escapes, everything else (UTF-8, `/`) as it is.
    static func string(_ s: String, _ out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, b])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, b])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20: out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
