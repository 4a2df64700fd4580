import Strata
import Testing

/// `--log-opt` as dockerd reads it (moby's jsonfilelog and local drivers, go-units'
/// FromHumanSize for max-size: decimal units).
@Suite struct LogRotationTests {
    @Test func sizesAndFilesAsDockerdReadsThem() throws {
        #expect(try LogRotation.parse(driver: nil, options: ["max-size": "10m"]) == LogRotation(maxSize: 10_000_000, maxFiles: 1))
        #expect(try LogRotation.parse(driver: "json-file", options: ["max-size": "32KiB", "max-file": "4"]) == LogRotation(maxSize: 32_000, maxFiles: 4))
        #expect(try LogRotation.parse(driver: "", options: ["max-size": "1.5g"]) == LogRotation(maxSize: 1_500_000_000, maxFiles: 1))
        #expect(try LogRotation.parse(driver: nil, options: ["max-size": "512"]) == LogRotation(maxSize: 512, maxFiles: 1))
        // max-file alone: no rotation; local: dockerd's 20 MB × 5 unless told.
        #expect(try LogRotation.parse(driver: nil, options: ["max-file": "3"]) == nil)
        #expect(try LogRotation.parse(driver: "local", options: [:]) == LogRotation(maxSize: 20_000_000, maxFiles: 5))
        #expect(try LogRotation.parse(driver: "local", options: ["max-file": "2"]) == LogRotation(maxSize: 20_000_000, maxFiles: 2))
        #expect(try LogRotation.parse(driver: "none", options: [:]) == nil)
    }

    @Test func refusalsInDockerdsWords() {
        let cases: [(String?, [String: String], String)] = [
            ("none", ["max-size": "1m"], "unknown log opt 'max-size' for none log driver"),
            ("local", ["tag": "x"], "unknown log opt 'tag' for local log driver"),
            (nil, ["max-size": "0"], "max-size must be a positive number"),
            (nil, ["max-size": "ten"], "invalid size: 'ten'"),
            (nil, ["max-size": "1m", "max-file": "-2"], "max-file cannot be less than 1"),
        ]
        for (driver, options, message) in cases {
            #expect(throws: StrataError.self) { try LogRotation.parse(driver: driver, options: options) }
            do { _ = try LogRotation.parse(driver: driver, options: options) } catch let e as StrataError {
                #expect(e.message == message)
            } catch {}
        }
    }
}
