import Foundation
import OCI
import Testing
@testable import Strata
@testable import StrataBuild
@testable import StrataCLI

/// `commit -c` through the Dockerfile parser: the same quoting, forms and variable expansion
/// as the instruction in a Dockerfile (which the builder tests compare with buildah).
@Suite struct ConfigEditTests {
    @Test func changesParseAsDockerfileInstructions() throws {
        let env = ["HOME": "/root", "PATH": "/usr/bin"]
        #expect(try ConfigEdit.parse(#"ENV A="x y" B=z\ w"#, env: env) == [.env(key: "A", value: "x y"), .env(key: "B", value: "z w")])
        #expect(try ConfigEdit.parse("ENV LEGACY two words", env: env) == [.env(key: "LEGACY", value: "two words")])
        #expect(try ConfigEdit.parse("ENV PATH=$PATH:/opt/bin", env: env) == [.env(key: "PATH", value: "/usr/bin:/opt/bin")])
        #expect(try ConfigEdit.parse(#"LABEL "a b"=c version=1.0"#, env: env) == [.label(key: "a b", value: "c"), .label(key: "version", value: "1.0")])
        #expect(try ConfigEdit.parse(#"CMD ["apachectl", "-DFOREGROUND"]"#, env: env) == [.cmd(["apachectl", "-DFOREGROUND"])])
        #expect(try ConfigEdit.parse("CMD echo $HOME", env: env) == [.cmd(["/bin/sh", "-c", "echo $HOME"])])
        #expect(try ConfigEdit.parse("ENTRYPOINT [\"/bin/sh\", \"-c\"]", env: env) == [.entrypoint(["/bin/sh", "-c"])])
        #expect(try ConfigEdit.parse("EXPOSE 80 53/udp 8000-8001", env: env)
                == [.exposedPort("80/tcp"), .exposedPort("53/udp"), .exposedPort("8000/tcp"), .exposedPort("8001/tcp")])
        #expect(try ConfigEdit.parse(#"VOLUME ["/data", "/logs"]"#, env: env) == [.volume("/data"), .volume("/logs")])
        #expect(try ConfigEdit.parse("VOLUME /a /b", env: env) == [.volume("/a"), .volume("/b")])
        #expect(try ConfigEdit.parse("WORKDIR $HOME/app", env: env) == [.workingDir("/root/app")])
        #expect(try ConfigEdit.parse("user app:staff", env: env) == [.user("app:staff")])
        #expect(try ConfigEdit.parse("STOPSIGNAL SIGKILL", env: env) == [.stopSignal("SIGKILL")])
        #expect(try ConfigEdit.parse("ONBUILD RUN make", env: env) == [.onBuild("RUN make")])
        for bad in ["RUN make", "FROM x", "ENV", "CMD", "EXPOSE x/y/z", "nonsense", "ENV A=1\nCMD x"] {
            #expect(throws: StrataError.self, "\(bad)") { try ConfigEdit.parse(bad, env: env) }
        }
    }

    /// The CLI path: changes see the image's ENV and the ENV of earlier changes, and the
    /// committed config holds exactly what the instructions say.
    @Test func commitAppliesParsedChanges() async throws {
        guard BuildPeer.canRun else { return }
        let dir = try BuildTestDir()
        let store = try await dir.store()
        try await BuildFixtures.busyboxBase(store, in: dir)
        try dir.write(["Dockerfile": "x"], in: "ctx")
        let base = try await Builder(store: store).build(dir.file("ctx"), "FROM base:1\nENV ROOT=/srv\n", log: BuildLog(), tags: ["envbase:1"])
        let c = try await store.createContainer(from: base.imageID.string)
        let edits = try await commitEdits([#"ENV MSG="hello world" DIR=$ROOT/app"#, "WORKDIR $DIR", "CMD echo $MSG"], container: c.id, store: store)
        let image = try await store.commit(c.id, options: CommitOptions(edits: edits))
        let config = try await store.inspect(image.id.string).config.config
        #expect(config?.Env?.contains("MSG=hello world") == true)
        #expect(config?.Env?.contains("DIR=/srv/app") == true)
        #expect(config?.WorkingDir == "/srv/app")
        #expect(config?.Cmd == ["/bin/sh", "-c", "echo $MSG"])
    }
}
