#!/usr/bin/env python3
"""The Docker SDK for Python (docker-py) against `strata serve`.

Usage: engine-sdk-test.py SOCKET REGISTRY WORKDIR

SOCKET is the server's unix socket; REGISTRY (HOST:PORT, plain HTTP on loopback) holds
team/base:1; WORKDIR is a scratch directory. Lists (also by label), pulls, builds, saves,
loads, runs containers to completion and reads their logs, copies files in and out of a
container, lists its changes, commits it, and reads the disk usage. Exit 0 when everything
agrees, 1 with a message when something does not, 77 when the SDK is not installed.
"""
import time
import urllib.request
import io
import os
import sys
import tarfile

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
    built, logs = client.images.build(path=ctx, tag="app:1", labels={"stage": "sdk"})
    check("app:1" in built.tags, "images.build() tags %s" % built.tags)
    check(any("Successfully built" in (m.get("stream") or "") for m in logs), "build log")
    check(built.labels == {"stage": "sdk"}, "image.labels %s" % built.labels)
    listed = client.images.list(filters={"label": "stage=sdk"})
    check([i.id for i in listed] == [built.id], "images.list(filters={'label': 'stage=sdk'})")

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

    since = int(time.time()) - 1
    c = client.containers.create("app:1", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    c.start()
    result = c.wait()
    # The events of that run, as docker-py decodes them.
    seen = [(e["Type"], e["Action"], e["Actor"]["Attributes"].get("exitCode"))
            for e in client.events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": c.id})]
    check(seen == [("container", "create", None), ("container", "start", None), ("container", "die", "3")], "events() %s" % seen)
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

    # Files: put_archive, get_archive, diff, commit (docker cp, docker diff, docker commit).
    w = client.containers.create("app:1", ["sh"], name="files")
    data = b"from the sdk\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("sdk.txt")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    check(w.put_archive("/", buf.getvalue()), "container.put_archive()")
    bits, stat = w.get_archive("/sdk.txt")
    with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
        got = t.extractfile("sdk.txt").read()
    check(got == data, "container.get_archive() gave %r" % got)
    check(stat["name"] == "sdk.txt" and stat["size"] == len(data), "get_archive stat %s" % stat)
    changes = w.diff()
    check({"Path": "/sdk.txt", "Kind": 1} in changes, "container.diff() %s" % changes)
    committed = w.commit(repository="app", tag="2", changes=["ENV FROM_SDK=1"], message="sdk commit")
    check("app:2" in committed.tags, "container.commit() tags %s" % committed.tags)
    check("FROM_SDK=1" in committed.attrs["Config"]["Env"], "committed Env %s" % committed.attrs["Config"]["Env"])
    out = client.containers.run("app:2", ["cat", "/sdk.txt"], remove=True)
    check(out == data, "the committed image has the file: %r" % out)
    w.remove()

    # A long-running container: exec_run, stop with its handler's status, restart, kill, prune.
    svc = client.containers.run("app:1", ["sh", "-c", "trap 'exit 7' TERM; while true; do busybox sleep 0.1; done"],
                                detach=True, name="svc")
    code, out = svc.exec_run(["sh", "-c", "echo in-$(hostname)"])
    check(code == 0 and out == b"in-" + svc.id[:12].encode() + b"\n", "exec_run() %r %r" % (code, out))
    code, out = svc.exec_run("no-such-program")
    check(code == 127 and b"executable file not found" in out, "exec_run() of no program: %r %r" % (code, out))
    svc.stop(timeout=5)
    svc.reload()
    check(svc.status == "exited" and svc.attrs["State"]["ExitCode"] == 7, "container.stop() %s" % svc.attrs["State"])
    svc.restart(timeout=1)
    svc.reload()
    check(svc.status == "running", "container.restart() %s" % svc.attrs["State"])
    svc.kill()
    check(svc.wait()["StatusCode"] == 137, "container.kill()")
    pruned = client.containers.prune()
    check(pruned["ContainersDeleted"] == [svc.id], "containers.prune() %s" % pruned)

    # Labels (the image's, then the given ones), the none and host networks, volume prune.
    lab = client.containers.create("app:1", ["true"], labels={"sdk": "yes"}, name="lab")
    check(lab.labels.get("sdk") == "yes", "container labels %s" % lab.labels)
    check([c.id for c in client.containers.list(all=True, filters={"label": "sdk=yes"})] == [lab.id], "containers.list(label=)")
    check(sorted(n.name for n in client.networks.list()) == ["host", "none"], "networks.list()")
    check(list(lab.attrs["NetworkSettings"]["Networks"]) == ["none"], "NetworkSettings.Networks")
    lab.remove()
    shared = client.containers.run("app:1", ["sh", "-c", "ls /sys/class/net | wc -l"], network_mode="host", remove=True)
    own = client.containers.run("app:1", ["sh", "-c", "ls /sys/class/net"], remove=True)
    check(own == b"lo\n" and int(shared) >= 2, "network_mode='host' sees the host's interfaces: %r, its own only lo: %r" % (shared, own))
    # A published port on a free host port, read back from the container's NetworkSettings.
    web = client.containers.run("app:1", ["busybox", "httpd", "-f", "-p", "80", "-h", "/"], ports={"80/tcp": None}, detach=True)
    web.reload()
    bindings = web.attrs["NetworkSettings"]["Ports"].get("80/tcp") or [{}]
    page = b""
    for _ in range(50):
        try:
            page = urllib.request.urlopen("http://127.0.0.1:%s/greeting" % bindings[0].get("HostPort"), timeout=2).read()
            break
        except (OSError, ValueError):
            time.sleep(0.1)
    check(page == b"hello from strata\n", "ports={'80/tcp': None} publishes %s: %r" % (bindings, page))
    web.remove(force=True)
    client.volumes.create("sdk-spare")
    check(client.volumes.prune()["VolumesDeleted"] is None, "volumes.prune() keeps named volumes")
    check(client.volumes.prune(filters={"all": True})["VolumesDeleted"] == ["sdk-spare"], "volumes.prune(all)")

    df = client.df()
    check(sorted(i["Id"] for i in df["Images"]) == sorted(i.id for i in client.images.list(all=True)), "client.df() images")
    check(df["Containers"] == [] and isinstance(df["BuildCache"], list), "client.df() containers and build cache")
    print("all ok")


if __name__ == "__main__":
    main()
