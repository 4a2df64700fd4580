import Foundation
import Testing

/// `strata find`, `image diff`, `analyze` and `reindex` end to end: output shapes, exit codes.
@Suite struct IndexCLITests {
    /// A two-layer docker-archive: layer 2 rewrites /etc/app.conf and deletes /etc/old.conf.
    static func archive(_ env: CLITests.Env, tag: String, second: String) throws -> String {
        try env.shell("""
            w=$(mktemp -d "$PWD/arch.XXXX"); cd "$w"
            mkdir -p l0/etc l1/etc
            head -c 4000 /dev/zero > l0/etc/app.conf; echo old > l0/etc/old.conf; echo keep > l0/etc/keep.txt
            \(second)
            for l in l0 l1; do (cd $l && find . -mindepth 1 | sed 's|^\\./||' | LC_ALL=C sort > ../$l.list && tar --no-recursion -cf ../$l.tar -T ../$l.list); done
            d0=$(sha256sum l0.tar | cut -d' ' -f1); d1=$(sha256sum l1.tar | cut -d' ' -f1)
            printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},"history":[{"created_by":"ADD base"},{"created_by":"RUN edit"}]}' $d0 $d1 > c.json
            c=$(sha256sum c.json | cut -d' ' -f1); mv c.json $c.json
            printf '[{"Config":"%s.json","RepoTags":["\(tag)"],"Layers":["l0.tar","l1.tar"]}]' $c > manifest.json
            tar -cf ../\(tag.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ":", with: "_")).tar manifest.json $c.json l0.tar l1.tar
            """)
        return env.dir.appendingPathComponent(tag.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ":", with: "_") + ".tar").path
    }

    @Test func findDiffAnalyzeAndCI() throws {
        let env = try CLITests.Env()
        let a = try Self.archive(env, tag: "idx/app:1", second: "head -c 5000 /dev/zero > l1/etc/app.conf; : > l1/etc/.wh.old.conf")
        let b = try Self.archive(env, tag: "idx/app:2", second: "echo small > l1/etc/app.conf; chmod 600 l1/etc/app.conf")
        #expect(try env.run(["load", "-i", a]).status == 0)
        #expect(try env.run(["load", "-i", b]).status == 0)

        let find = try env.run(["find", "idx/app:1", "etc/*.conf"])
        #expect(find.status == 0)
        let rows = find.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(rows.first?.prefix(2) == ["STATUS", "PATH"])
        #expect(rows.dropFirst().map { Array($0.prefix(2)) } == [["C", "/etc/app.conf"], ["D", "/etc/old.conf"]])
        #expect(find.out.contains("RUN edit"))
        let json = try env.run(["find", "--format", "json", "idx/app:1", "keep.txt"])
        let files = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        #expect(files?.first?["path"] as? String == "/etc/keep.txt")
        #expect(files?.first?["status"] as? String == "added")

        let diff = try env.run(["image", "diff", "idx/app:1", "idx/app:2"])
        #expect(diff.status == 0)
        #expect(diff.out.split(separator: "\n").map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == ["C /etc/app.conf", "A /etc/old.conf"])
        #expect(diff.out.contains("(size, content, mode)"))
        let diffJSON = try JSONSerialization.jsonObject(with: Data(try env.run(["image", "diff", "--format", "json", "idx/app:1", "idx/app:2"]).out.utf8)) as? [[String: Any]]
        #expect(diffJSON?.map { $0["kind"] as? String } == ["C", "A"])

        let analyze = try env.run(["analyze", "idx/app:1"])
        #expect(analyze.status == 0)
        #expect(analyze.out.contains("/etc/app.conf"))
        #expect(analyze.out.contains("Image efficiency score:"))
        // app.conf: 4000 + 5000 wasted; old.conf: 4 + 0.
        let report = try JSONSerialization.jsonObject(with: Data(try env.run(["analyze", "--format", "json", "idx/app:1"]).out.utf8)) as? [String: Any]
        let analysis = report?["analysis"] as? [String: Any]
        #expect(analysis?["wastedBytes"] as? Int == 9004)
        let fail = try env.run(["analyze", "--ci", "idx/app:1"])
        #expect(fail.status == 1)
        #expect(fail.out.contains("FAIL: lowestEfficiency"))
        #expect(fail.out.contains("Result:FAIL"))
        let pass = try env.run(["analyze", "--ci", "--lowest-efficiency", "0.1", "--highest-user-wasted-percent", "1", "idx/app:1"])
        #expect(pass.status == 1)  // user bytes 5000, wasted 9004: above 100 %
        let pass2 = try env.run(["analyze", "--ci", "--lowest-efficiency", "0", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "10KB", "idx/app:2"])
        #expect(pass2.status == 0, "\(pass2.out)")
        #expect(try env.run(["analyze", "--ci", "--highest-wasted-bytes", "1KB", "idx/app:2"]).status == 1)

        #expect(try env.run(["reindex"]).out == "Indexed 0 layers\n")
        // Both base layers may be the same bytes (tar mtimes in the same second): count diffIDs.
        var diffIDs = Set<String>()
        for tag in ["idx/app:1", "idx/app:2"] {
            let layers = try JSONSerialization.jsonObject(with: Data(try env.run(["layers", "--format", "json", tag]).out.utf8)) as? [[String: Any]]
            for l in layers ?? [] { if let d = l["diffID"] as? String { diffIDs.insert(d) } }
        }
        #expect(diffIDs.count >= 3)
        #expect(try env.run(["reindex", "--force"]).out == "Indexed \(diffIDs.count) layers\n")
        #expect(try env.run(["find", "idx/app:2", "etc/app.conf"]).out.contains("C "))
    }

    @Test func badInputIsOneLineAndLeavesTheStoreAlone() throws {
        let env = try CLITests.Env()
        let missing = try env.run(["find", "nosuch:1", "*"])
        #expect(missing.status == 1)
        #expect(missing.err.hasPrefix("error: ") && missing.err.split(separator: "\n").count == 1)
        #expect(try env.run(["analyze", "--lowest-efficiency", "2", "x"]).status == 2)
        #expect(try env.run(["analyze", "--highest-wasted-bytes", "lots", "x"]).status == 2)
        #expect(try env.run(["analyze", "--lowest-efficiency", "high", "x"]).status == 2)
        #expect(try env.run(["image", "diff", "a:1"]).status == 2)
        let a = try Self.archive(env, tag: "idx/app:1", second: "echo x > l1/etc/x")
        #expect(try env.run(["load", "-i", a]).status == 0)
        let empty = try env.run(["find", "idx/app:1", "/"])
        #expect(empty.status == 1)
        #expect(empty.err.hasPrefix("error: "))
    }
}
