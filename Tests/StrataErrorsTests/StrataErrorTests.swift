import Foundation
import Testing
import StrataErrors

/// A failed system call keeps its errno, and the code tells a full disk and a refusal apart.
@Suite struct StrataErrorTests {
    @Test func systemErrorsKeepErrnoAndCode() throws {
        // A real ENOSPC: every write to /dev/full fails with it.
        let fd = open("/dev/full", O_WRONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let n = write(fd, "x", 1)
        #expect(n == -1)
        let full = StrataError.system("cannot write /dev/full")
        #expect(full.code == .diskFull)
        #expect(full.errno == ENOSPC)
        #expect(full.message == "cannot write /dev/full: No space left on device")
        // A real ENOENT.
        #expect(open("/nonexistent-\(UUID())", O_RDONLY) == -1)
        let missing = StrataError.system("cannot open it")
        #expect(missing.code == .io && missing.errno == ENOENT)
        #expect(StrataError.system("x", errno: EACCES).code == .permissionDenied)
        #expect(StrataError.system("x", errno: EROFS).code == .permissionDenied)
        #expect(StrataError.system("x", errno: EDQUOT).code == .diskFull)
        #expect(StrataError(.io, "no errno").errno == nil)
    }
}
