import Strata
import Testing

/// `GoDuration`, the HEALTHCHECK duration syntax.
@Suite struct GoDurationTests {
    @Test func parsesGoDurations() {
        #expect(GoDuration.nanoseconds("30s") == 30_000_000_000)
        #expect(GoDuration.nanoseconds("1m30s") == 90_000_000_000)
        #expect(GoDuration.nanoseconds("1.5h") == 5_400_000_000_000)
        #expect(GoDuration.nanoseconds("500ms") == 500_000_000)
        #expect(GoDuration.nanoseconds("2us") == 2_000 && GoDuration.nanoseconds("2µs") == 2_000)
        #expect(GoDuration.nanoseconds("0") == 0 && GoDuration.nanoseconds("-1s") == -1_000_000_000)
        for bad in ["", "5", "s", "1x", "1.2.3s", "--1s", "1s ", "9999999999h"] {
            #expect(GoDuration.nanoseconds(bad) == nil, "\(bad)")
        }
    }

    /// Go's Duration.String (time/time.go), as `fmt.Println(d)` prints these.
    @Test func printsAsGoDoes() {
        let cases: [(Int64, String)] = [(0, "0s"), (1, "1ns"), (1_500, "1.5µs"), (500_000_000, "500ms"), (1_500_000_000, "1.5s"),
                                        (30_000_000_000, "30s"), (90_000_000_000, "1m30s"), (3_600_000_000_000, "1h0m0s"),
                                        (9_930_500_000_000, "2h45m30.5s"), (-2_000_000, "-2ms"), (1_000_001, "1.000001ms")]
        for (ns, text) in cases {
            #expect(GoDuration.format(nanoseconds: ns) == text)
            #expect(GoDuration.nanoseconds(text) == ns, "\(text)")
        }
    }
}
