import Testing
@testable import Strata

/// `--tmpfs` options as dockerd merges them: `noexec,nosuid,nodev` first, a given flag
/// replacing its opposite, a given parameter replacing an earlier one; the rest refused.
@Suite struct TmpfsMountTests {
    @Test func optionsOverDockerdsDefaults() throws {
        #expect(try TmpfsMount(parsing: "/run").mountOptions == ["noexec", "nosuid", "nodev"])
        #expect(try TmpfsMount(parsing: "/run:exec,size=64m").mountOptions == ["nosuid", "nodev", "exec", "size=64m"])
        #expect(try TmpfsMount(parsing: "/x/../run/:ro,suid,dev,mode=1777,size=1k,size=2k").mountOptions
                == ["noexec", "ro", "suid", "dev", "mode=1777", "size=2k"])
        let t = try TmpfsMount(parsing: "/a//b/:size=1m")
        #expect(t.destination == "/a/b" && t.options == "size=1m")
    }

    @Test func refusesWhatTheKernelWouldRefuseLater() {
        for bad in ["relative", "/", "/x:bogus", "/x:mode=999", "/x:mode=77777", "/x:mode=", "/x:colour=red", "/x:exec=1"] {
            #expect(throws: StrataError.self, "\(bad)") { try TmpfsMount(parsing: bad) }
        }
    }
}
