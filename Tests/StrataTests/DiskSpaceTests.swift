import Foundation
import GRDB
import Testing
@testable import Strata

/// The one rule that decides what a full disk is, and the line it becomes (issue #17).
@Suite struct DiskSpaceTests {
    @Test func everyWayAFullDiskArrivesIsRecognised() {
        #expect(DiskSpace.isDiskFull(StrataError.system("cannot write x", errno: ENOSPC)))
        #expect(DiskSpace.isDiskFull(StrataError.system("cannot write x", errno: EDQUOT)))
        #expect(DiskSpace.isDiskFull(DatabaseError(resultCode: .SQLITE_FULL)))
        #expect(DiskSpace.isDiskFull(POSIXError(.ENOSPC)))
        // Foundation's file errors carry the POSIX error underneath.
        #expect(DiskSpace.isDiskFull(NSError(domain: NSCocoaErrorDomain, code: NSFileWriteUnknownError,
                                             userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))])))
        // Wrapped once more, as a command's own error with the cause kept.
        #expect(DiskSpace.isDiskFull(StrataError(.io, "load failed", cause: POSIXError(.ENOSPC))))
        #expect(!DiskSpace.isDiskFull(StrataError.system("cannot read x", errno: EIO)))
        #expect(!DiskSpace.isDiskFull(DatabaseError(resultCode: .SQLITE_CONSTRAINT)))
        #expect(!DiskSpace.isDiskFull(StrataError(.corruptData, "bad")))
    }

    @Test func theLineSaysHowMuchMoreWasNeededOrHowMuchThereWas() {
        let cause = POSIXError(.ENOSPC)
        let tmp = FileManager.default.temporaryDirectory.path
        let mount = DiskSpace.mountPoint(of: tmp)
        let known = DiskSpace.error("loading app.tar", on: tmp, estimate: 35_000_000, freeBefore: 2_000_000, cause: cause)
        #expect(known.code == .diskFull)
        #expect(known.message.hasPrefix("disk full: loading app.tar needs about 33 MB more on \(mount) ("))
        #expect(known.message.hasSuffix(" MB free)"))
        let unknown = DiskSpace.error("building app:1", on: tmp, estimate: nil, freeBefore: 1_500_000, cause: cause)
        #expect(unknown.message.hasPrefix("disk full: building app:1 needs more than the 2 MB that were free on \(mount)"))
        #expect(!unknown.message.contains("\n"))
        #expect(DiskSpace.megabytes(1) == "1 MB" && DiskSpace.megabytes(1_000_000) == "1 MB" && DiskSpace.megabytes(0) == "0 MB")
    }

    @Test func estimatesComeFromRegularFilesOnly() throws {
        let dir = try TempDir()
        try Data(count: 12345).write(to: dir.file("f"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("link").path, withDestinationPath: "f")
        #expect(DiskSpace.fileSize(dir.file("f").path) == 12345)
        #expect(DiskSpace.fileSize(dir.file("link").path) == 12345)  // followed, not the link's own size
        #expect(DiskSpace.fileSize(dir.path) == nil)
        #expect(DiskSpace.inputName(URL(fileURLWithPath: "/dev/stdin")) == "standard input")
        #expect(DiskSpace.inputName(dir.file("app.tar")) == "app.tar")
    }

    @Test func mountPointsAndFreeSpace() {
        #expect(DiskSpace.mountPoint(of: "/proc/self/status") == "/proc")
        #expect(DiskSpace.mountPoint(of: "/") == "/")
        // A path that does not exist yet is judged by its nearest existing parent.
        #expect(DiskSpace.available(at: FileManager.default.temporaryDirectory.path + "/no/such/dir") != nil)
    }
}
