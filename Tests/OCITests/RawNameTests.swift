import Foundation
import Testing
@testable import OCI
import TestSupport

/// Names are bytes (law 9): the lossless mapping that carries a name's bytes in a `String`.
@Suite struct RawNameTests {
    @Test func everyByteStringRoundTrips() {
        var rng = SplitMix(seed: 20261205)
        // Bytes biased towards UTF-8 lead/continuation bytes and the reserved range's encoding.
        let interesting: [UInt8] = [0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0x8F, 0xBE, 0xFF, 0x2F, 0x61]
        for _ in 0..<5000 {
            let n = Int.random(in: 0...24, using: &rng)
            let bytes: [UInt8] = (0..<n).map { _ in
                Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 1...255, using: &rng)
            }
            let s = RawName.decode(bytes)
            #expect(RawName.encode(s) == bytes, "\(bytes)")
            #expect(RawName.cString(s).dropLast().map { UInt8(bitPattern: $0) } == bytes)
            if let valid = String(validating: bytes, as: UTF8.self), !bytes.contains(0xF4) {
                #expect(s == valid, "valid UTF-8 must decode to itself")
            }
        }
        // A name that really holds a reserved-range scalar keeps its 4 bytes.
        let reserved: [UInt8] = [0xF4, 0x8F, 0xBE, 0x80, 0x78]
        #expect(RawName.encode(RawName.decode(reserved)) == reserved)
    }

    /// Text output escapes as GNU `ls -b` does (in a UTF-8 locale), the ground truth here.
    @Test func escapedMatchesLsB() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rawname-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let names: [[UInt8]] = [Array("caf".utf8) + [0xE9] + Array(".txt".utf8), [0xFF, 0xFE] + Array("-bin".utf8),
                                Array("a\nb".utf8), Array("a\\b".utf8), Array("tab\there".utf8), Array("del".utf8) + [0x7F],
                                Array("é-ok".utf8), [0xC3] + Array("-cut".utf8), [0xE2, 0x82] + Array("-cut3".utf8)]
        for n in names {
            let path = Array(dir.path.utf8) + [0x2F] + n
            let fd = open(path.map { CChar(bitPattern: $0) } + [0], O_CREAT | O_WRONLY, 0o644)
            #expect(fd >= 0)
            close(fd)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/ls")
        p.arguments = ["-b", "-1", dir.path]
        p.environment = ["LC_ALL": "C.UTF-8"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let lsNames = Set(String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init))
        let ours = Set(names.map { RawName.escaped(RawName.decode($0)) })
        #expect(ours == lsNames)
    }

    /// JSON keeps the bytes: Python's json + os.fsencode (surrogateescape) gives them back.
    @Test func jsonCarriesTheBytes() throws {
        struct Row: Encodable { var path: String }
        let bytes: [UInt8] = Array("dir/caf".utf8) + [0xE9, 0xFF] + Array("é".utf8)
        let json = RawName.jsonSurrogateEscapes(Array(try JSONEncoder().encode(Row(path: RawName.decode(bytes)))))
        #expect(String(decoding: json, as: UTF8.self).contains("\\udce9\\udcff"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import json,os,sys; sys.stdout.buffer.write(os.fsencode(json.load(sys.stdin)['path']))"]
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        try p.run()
        inPipe.fileHandleForWriting.write(Data(json))
        try inPipe.fileHandleForWriting.close()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(Array(out) == bytes)
    }
}
