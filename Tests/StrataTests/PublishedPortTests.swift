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
    }

    @Test(arguments: [
        ("53/udp", "TCP ports only"), ("80/sctp", "TCP ports only"), ("0", "from 1 to 65535"), ("65536", "from 1 to 65535"),
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
}
