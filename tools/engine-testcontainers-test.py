#!/usr/bin/env python3
"""testcontainers-python, a tool built on the Docker SDK, against `strata serve`.

Usage: engine-testcontainers-test.py SOCKET PORT WORKDIR

It builds an image from a context (DockerImage), runs a web server in a container on the host's
network with an environment variable and a bind mount, waits for its log line, fetches a page
from it, runs a command in it, reads its logs, runs another with an exposed port published on
a free host port (get_exposed_port) and fetches the page through it, and leaves: testcontainers
removes the containers (with their volumes) and the image. Every step is checked against what testcontainers and the
server say, and the files the container wrote. Exit 77 when testcontainers is not installed.

Ryuk, testcontainers' reaper, is an image from Docker Hub: it is turned off. The connection mode
is the docker host's (testcontainers guesses another when it runs inside a container).
"""
import os
import sys
import urllib.request

socket, port, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.environ["DOCKER_HOST"] = "unix://" + socket
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"
try:
    import docker
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.image import DockerImage
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy
except ImportError as e:
    print("testcontainers is not installed: %s" % e)
    sys.exit(77)

failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)


client = docker.DockerClient(base_url="unix://" + socket)
ctx = os.path.join(work, "ctx")
data = os.path.join(work, "data")
os.makedirs(ctx, exist_ok=True)
os.makedirs(data, exist_ok=True)
with open(os.path.join(ctx, "index.html"), "w") as f:
    f.write("served by a testcontainer\n")
with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM busybox\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-h\", \"/www\"]\n")

with DockerImage(path=ctx, tag="tc-app:1") as image:
    built = client.images.get("tc-app:1").id
    check(str(image) == "tc-app:1" and built == image.get_wrapped_image().id, "DockerImage built tc-app:1 (%s)" % built)
    server = (DockerContainer("tc-app:1")
              .with_command(["sh", "-c", "echo listening on %d; exec httpd -f -p 127.0.0.1:%d -h /www" % (port, port)])
              .with_env("GREETING", "hello from the environment")
              .with_volume_mapping(data, "/data", "rw")
              .with_kwargs(network_mode="host")
              .waiting_for(LogMessageWaitStrategy("listening on %d" % port)))
    with server as c:
        cid = c.get_wrapped_container().id
        host = c.get_container_host_ip()
        check(host == "localhost", "get_container_host_ip() %r" % host)
        page = b""
        for _ in range(50):
            try:
                page = urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port, timeout=2).read()
                break
            except OSError:
                import time
                time.sleep(0.1)
        check(page == b"served by a testcontainer\n", "the page from the container %r" % page)
        r = c.exec(["sh", "-c", "echo \"$GREETING\" > /data/out; cat /www/index.html; exit 3"])
        check(r.exit_code == 3 and r.output == b"served by a testcontainer\n", "exec() %r" % (r,))
        with open(os.path.join(data, "out")) as f:
            written = f.read()
        check(written == "hello from the environment\n", "the bind mount has what the exec wrote: %r" % written)
        out, err = c.get_logs()
        check(out == b"listening on %d\n" % port and err == b"", "get_logs() %r %r" % (out, err))
        check(c.get_wrapped_container().attrs["HostConfig"]["NetworkMode"] == "host", "NetworkMode host")
    # A published port, as testcontainers asks for one (a free host port) and reads it back.
    published = (DockerContainer("tc-app:1")
                 .with_command(["sh", "-c", "echo serving; exec httpd -f -p 80 -h /www"])
                 .with_exposed_ports(80)
                 .waiting_for(LogMessageWaitStrategy("serving")))
    with published as p:
        mapped = p.get_exposed_port(80)
        page = b""
        for _ in range(50):
            try:
                page = urllib.request.urlopen("http://%s:%s/index.html" % (p.get_container_host_ip(), mapped), timeout=2).read()
                break
            except OSError:
                import time
                time.sleep(0.1)
        check(page == b"served by a testcontainer\n", "get_exposed_port(80) = %s serves the page: %r" % (mapped, page))
    # testcontainers removed the container (force, with its volumes).
    check(cid not in [x.id for x in client.containers.list(all=True)], "the container is gone after the with block")
# ...and the image.
check("tc-app:1" not in [t for i in client.images.list() for t in i.tags], "the image is gone after the with block")

if failures:
    print("%d failed" % len(failures))
    sys.exit(1)
