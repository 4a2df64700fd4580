import Foundation
import Testing

/// Names are bytes at the CLI too: a name that is not UTF-8 goes in as an argument, comes out
/// of `find` escaped as `ls -b` escapes it, out of `--format json` as bytes Python's
/// surrogateescape gives back, and out of `cp` onto the host unchanged.
@Suite struct RawNameCLITests {
    @Test func rawNamesThroughImportFindDiffAndCp() throws {
        guard RemoteContextTests.available("python3") else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rawcli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = """
            set -euo pipefail
            S="\(CLITests.binary) --root \(dir.path)/store"
            cd '\(dir.path)'
            python3 -c '
            import tarfile, io
            with tarfile.open("l.tar", "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as t:
                for n in [b"caf\\xe9.txt", b"\\xff\\xfe-bin"]:
                    i = tarfile.TarInfo(n.decode("utf-8", "surrogateescape")); i.size = 3; t.addfile(i, io.BytesIO(b"abc"))
            '
            $S import l.tar raw:1 >/dev/null
            # Text output: ls -b escapes.
            $S find raw:1 '*' | grep -q '/caf\\\\351.txt'
            $S find raw:1 '*' | grep -q '/\\\\377\\\\376-bin'
            # JSON: the exact bytes through surrogateescape.
            $S find raw:1 '*' --format json | python3 -c '
            import json, os, sys
            got = sorted(os.fsencode(f["path"]) for f in json.load(sys.stdin))
            assert got == [b"/caf\\xe9.txt", b"/\\xff\\xfe-bin"], got
            '
            # An argument with such bytes, in and out of a container.
            c=$($S create raw:1 sh)
            printf new > "$(printf 'host\\xe9')"
            $S cp "$(printf 'host\\xe9')" "$c:/"
            $S diff "$c" | grep -q '^A /host\\\\351$'
            mkdir out
            $S cp "$c:/$(printf 'caf\\xe9.txt')" out/
            [ "$(cat "out/$(printf 'caf\\xe9.txt')")" = abc ]
            $S rm "$c" >/dev/null
            # build: COPY of a directory and of a glob from a context with such a name.
            mkdir -p ctx/sub
            printf x > "ctx/sub/$(printf 'caf\\xe9.txt')"
            printf 'FROM scratch\nCOPY sub/ /dst/\nCOPY sub/caf* /glob/\n' > ctx/Dockerfile
            $S build -q -t rawb:1 ctx >/dev/null
            $S find rawb:1 '*' --format json | python3 -c '
            import json, os, sys
            got = sorted(os.fsencode(f["path"]) for f in json.load(sys.stdin))
            assert got == [b"/dst", b"/dst/caf\\xe9.txt", b"/glob", b"/glob/caf\\xe9.txt"], got
            '
            echo OK
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(p.terminationStatus == 0 && text.contains("OK"), "\(text)")
    }
}
