import Foundation
import Testing
@testable import Strata

/// `-p` as docker reads it, and what strata refuses with the value named.
@Suite struct PublishedPortTests {
    @Test func dockersFormsParse() throws {
        #expect(try PublishedPort(parsing: "80") == PublishedPort(containerPort: 80))
        #expect(try PublishedPort(parsing: "80/tcp") == PublishedPort(containerPort: 80))
        #expect(try PublishedPort(parsing: "8080:80") == PublishedPort(hostPort: 8080, containerPort: 80))
        #expect(try PublishedPort(parsing: "127.0.0.1:8080:80/tcp") == PublishedPort(hostIP: "127.0.0.1", hostPort: 8080, containerPort: 80))
        #expect(try PublishedPort(parsing: "127.0.0.1::80") == PublishedPort(hostIP: "127.0.0.1", containerPort: 80))
        #expect(try PublishedPort(parsing: ":0:65535").hostPort == 0)
        #expect(try PublishedPort(parsing: "80").key == "80/tcp")
        #expect(try PublishedPort(parsing: "127.0.0.1:5353:53/udp") == PublishedPort(hostIP: "127.0.0.1", hostPort: 5353, containerPort: 53, proto: "udp"))
        #expect(try PublishedPort(parsing: "53/udp").key == "53/udp")
    }

    /// A record written before UDP was served has no protocol: TCP; a TCP port is written as
    /// before (no `proto` key), a UDP one with it.
    @Test func recordsKeepTheirProtocol() throws {
        let old = try JSONDecoder().decode(PublishedPort.self, from: Data(#"{"hostIP":"","hostPort":0,"containerPort":80}"#.utf8))
        #expect(old == PublishedPort(containerPort: 80))
        #expect(String(decoding: try JSONEncoder().encode(PublishedPort(containerPort: 80)), as: UTF8.self).contains("proto") == false)
        let udp = PublishedPort(containerPort: 53, proto: "udp")
        #expect(try JSONDecoder().decode(PublishedPort.self, from: try JSONEncoder().encode(udp)) == udp)
    }

    @Test(arguments: [
        ("80/sctp", "TCP and UDP ports only"), ("53/udp/x", "TCP and UDP ports only"), ("0", "from 1 to 65535"), ("65536", "from 1 to 65535"),
        ("x", "from 1 to 65535"), ("8080-8081:80", "host port"), ("99999:80", "host port"), ("1.2.3:80:80", "not an IPv4 address"),
        ("::1:80:80", "use [IP:][HOSTPORT:]PORT"), ("", "from 1 to 65535"), ("+80", "from 1 to 65535"),
    ])
    func badValuesAreRefusedByName(_ value: String, _ words: String) {
        #expect {
            _ = try PublishedPort(parsing: value)
        } throws: { e in
            guard let e = e as? StrataError else { return false }
            return e.code == .invalidArgument && e.message.contains(words) && (value.isEmpty || e.message.contains(value))
        }
    }

    /// The proxy binds at once (a port in use is a conflict naming it), and frees its ports
    /// when stopped, started or not (a start that failed after the bind leaves none bound).
    @Test func portsAreBoundAtOnceAndFreedWhenStopped() throws {
        let first = try PortProxy([PublishedPort(hostIP: "127.0.0.1", containerPort: 80)]) { nil }
        let port = try #require(first.bound.first?.hostPort)
        #expect(port > 0)
        #expect {
            _ = try PortProxy([PublishedPort(hostIP: "127.0.0.1", hostPort: port, containerPort: 80)]) { nil }
        } throws: { e in
            (e as? StrataError)?.code == .conflict && "\(e)".contains("127.0.0.1:\(port)")
        }
        first.stop()  // never started
        let again = try PortProxy([PublishedPort(hostIP: "127.0.0.1", hostPort: port, containerPort: 80)]) { nil }
        again.start()
        again.stop()
        var bound = false
        for _ in 0..<50 where !bound {  // the accept thread closes its listener as it ends
            bound = (try? PortProxy([PublishedPort(hostIP: "127.0.0.1", hostPort: port, containerPort: 80)]) { nil })
                .map { $0.stop(); return true } ?? false
            if !bound { usleep(20_000) }
        }
        #expect(bound)
    }
}
