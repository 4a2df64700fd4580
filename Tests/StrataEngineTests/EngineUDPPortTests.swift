import Foundation
import Testing

/// A published UDP port (`docker run -p 127.0.0.1::5353/udp`) through the docker CLI: a UDP
/// echo server inside the container (the host's python3, bound in read-only, since busybox
/// has none) answers datagrams sent to the host port, each client on a flow of its own, and
/// the port reads back as dockerd writes it (`5353/udp` in inspect, `docker port`, `docker ps`).
@Suite struct EngineUDPPortTests {
    @Test func udpDatagramsReachTheContainerAndComeBack() throws {
        guard EngineHarness.dockerAvailable() else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("CI=true but /usr/bin/python3 is missing: run tools/setup") }
            return
        }
        let h = try EngineHarness()
        try h.importBusybox()
        try h.start()
        defer { h.stop() }
        let server = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('127.0.0.1', 5353))
            while True:
                d, a = s.recvfrom(65536)
                s.sendto(b'echo:' + d, a)
            """
        let run = try h.docker(["run", "-d", "--name", "udp", "-p", "127.0.0.1::5353/udp", "-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro",
                                "-v", "/usr/lib64:/lib64:ro", "busybox:latest", "/usr/bin/python3", "-c", server])
        #expect(run.status == 0, "\(run)")
        defer { _ = try? h.docker(["rm", "-f", "udp"]) }
        let port = try h.docker(["port", "udp", "5353/udp"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(port.hasPrefix("127.0.0.1:"), "\(port)")
        let hostPort = port.split(separator: ":").last.map(String.init) ?? ""
        #expect(try h.docker(["inspect", "--format", "{{json .NetworkSettings.Ports}}", "udp"]).out
                == "{\"5353/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"\(hostPort)\"}]}\n")
        #expect(try h.docker(["ps", "--format", "{{.Ports}}"]).out == "127.0.0.1:\(hostPort)->5353/udp\n")
        // Two clients, each sending until the server is up; each gets its own answers.
        let client = """
            import socket, sys, time
            port = int(sys.argv[1])
            a, b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
            for s in (a, b): s.settimeout(0.2)
            def ask(s, msg):
                for _ in range(50):
                    s.sendto(msg, ('127.0.0.1', port))
                    try:
                        return s.recvfrom(65536)[0]
                    except socket.timeout:
                        pass
                return b'no answer'
            print(ask(a, b'one').decode(), ask(b, b'two').decode(), ask(a, b'x' * 4000).decode()[:9])
            """
        let answers = try h.run("/usr/bin/python3", ["-c", client, hostPort])
        #expect(answers.out == "echo:one echo:two echo:xxxx\n", "\(answers)")
        // SCTP is refused by name.
        let sctp = try h.docker(["run", "--rm", "-p", "5000/sctp", "busybox:latest", "true"])
        #expect(sctp.status != 0 && sctp.err.contains("5000/sctp"), "\(sctp)")
    }
}
