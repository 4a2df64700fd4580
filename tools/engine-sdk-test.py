#!/usr/bin/env python3
"""The Docker SDK for Python (docker-py) against `strata serve`.

Usage: engine-sdk-test.py SOCKET REGISTRY WORKDIR

SOCKET is the server's unix socket; REGISTRY (HOST:PORT, plain HTTP on loopback) holds
team/base:1; WORKDIR is a scratch directory. Lists, pulls, builds, saves, loads, runs a
container to completion and reads its logs. Exit 0 when everything agrees, 1 with a message
when something does not, 77 when the SDK is not installed.
"""
import os
import sys

try:
    import docker
except ImportError:
    print("the docker SDK for Python is not installed (python3 -m pip install docker)")
    sys.exit(77)


def check(cond, what):
    if not cond:
        print("FAILED: " + what)
        sys.exit(1)
    print("ok: " + what)


def main():
    sock, registry, work = sys.argv[1], sys.argv[2], sys.argv[3]
    client = docker.DockerClient(base_url="unix://" + sock)
    check(client.ping(), "ping")

    check(client.images.list() == [], "images.list() on an empty store")

    pulled = client.images.pull(registry + "/team/base", tag="1")
    check(registry + "/team/base:1" in pulled.tags, "images.pull() tags %s" % pulled.tags)
    check(len(client.images.list()) == 1, "images.list() after the pull")

    ctx = os.path.join(work, "ctx")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM %s/team/base:1\nCOPY greeting /greeting\nCMD [\"cat\", \"/greeting\"]\n" % registry)
    with open(os.path.join(ctx, "greeting"), "w") as f:
        f.write("hello from strata\n")
    built, logs = client.images.build(path=ctx, tag="app:1")
    check("app:1" in built.tags, "images.build() tags %s" % built.tags)
    check(any("Successfully built" in (m.get("stream") or "") for m in logs), "build log")

    archive = os.path.join(work, "app.tar")
    with open(archive, "wb") as f:
        for chunk in client.images.get("app:1").save(named=True):
            f.write(chunk)
    check(os.path.getsize(archive) > 0, "image.save() wrote %d bytes" % os.path.getsize(archive))
    client.images.remove("app:1")
    check(all("app:1" not in i.tags for i in client.images.list()), "images.remove()")
    with open(archive, "rb") as f:
        loaded = client.images.load(f.read())
    check([i.id for i in loaded] == [built.id], "images.load() gives back %s" % built.id)

    out = client.containers.run("app:1", "echo hi", remove=True)
    check(out == b"hi\n", "containers.run(remove=True) printed %r" % out)
    check(client.containers.list(all=True) == [], "containers.run(remove=True) left no container")
    default = client.containers.run("app:1", name="job")
    check(default == b"hello from strata\n", "containers.run() with the image's CMD printed %r" % default)
    job = client.containers.get("job")
    check(job.status == "exited" and job.attrs["State"]["ExitCode"] == 0, "containers.get('job') %s" % job.attrs["State"])
    check(job.logs() == b"hello from strata\n", "job.logs() %r" % job.logs())
    job.remove()

    c = client.containers.create("app:1", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    c.start()
    result = c.wait()
    check(result["StatusCode"] == 3, "container.wait() %s" % result)
    check(c.logs(stdout=True, stderr=False) == b"out\n", "container.logs(stdout) %r" % c.logs(stdout=True, stderr=False))
    check(c.logs(stdout=False, stderr=True) == b"err\n", "container.logs(stderr)")
    c.reload()
    check(c.status == "exited" and c.attrs["State"]["ExitCode"] == 3, "container state %s" % c.attrs["State"])
    try:
        client.containers.run("app:1", ["sh", "-c", "exit 5"])
        check(False, "a failing run raises ContainerError")
    except docker.errors.ContainerError as e:
        check(e.exit_status == 5, "ContainerError exit status %d" % e.exit_status)
        e.container.remove()
    c.remove()
    check(client.containers.list(all=True) == [], "container.remove() left no container")
    print("all ok")


if __name__ == "__main__":
    main()
