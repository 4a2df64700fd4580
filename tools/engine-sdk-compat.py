#!/usr/bin/env python3
"""What the Docker SDK for Python (docker-py) expects of dockerd, asked of `strata serve`.

Usage: engine-sdk-compat.py SOCKET IMAGE

SOCKET is the server's unix socket; IMAGE a busybox image in the store. Each check is a
behaviour of dockerd that docker-py (or a program on it) relies on and that a server can
get wrong while the docker CLI still works: the order of a build's messages and its RUN's
standard error, `cache_from`, `extra_hosts` and `network_mode` in builds, a failed RUN's
status, frames of a TTY exec started without Tty, one log frame per line, output readable
as soon as `start` returns, SIGKILL that returns once the container stopped, dockerd's
words when removing a running container, an unnamed volume that prune takes, commit's
default pause, and a load error inside a 200 stream. Exit 0 when everything agrees, 1 with
a message when something does not, 77 when the SDK is not installed.
"""
import io
import struct
import sys
import time

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


def frames(sock, want):
    """Reads multiplexed frames until `want` payload bytes came: [(stream, payload)]."""
    out, got, buf = [], 0, b""
    deadline = time.time() + 10
    while got < want and time.time() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            stream, size = struct.unpack(">BxxxL", buf[:8])
            if len(buf) < 8 + size:
                break
            out.append((stream, buf[8:8 + size]))
            got += size
            buf = buf[8 + size:]
    return out


def build(api, lines, **kw):
    return list(api.build(fileobj=io.BytesIO("\n".join(lines).encode()), decode=True, **kw))


def main():
    sock, image = sys.argv[1], sys.argv[2]
    client = docker.DockerClient(base_url="unix://" + sock)
    api = client.api

    # Builds: dockerd sends the aux ID before "Successfully built", so "Successfully tagged"
    # is the last line; a RUN's standard error comes in red.
    out = build(api, ["FROM " + image, "RUN echo to-out; echo to-err >&2"], tag="compat:1", nocache=True)
    streams = [m.get("stream", "") for m in out]
    check(streams[-1] == "Successfully tagged compat:1\n", "last build line %r" % streams[-1])
    aux = [i for i, m in enumerate(out) if "aux" in m]
    built = [i for i, s in enumerate(streams) if s.startswith("Successfully built")]
    check(len(aux) == 1 and built and aux[0] < built[0], "aux ID before Successfully built: %s" % out[-4:])
    check("to-out\n" in streams and "\x1b[91mto-err\n\x1b[0m" in streams, "RUN's stderr in red: %s" % streams)

    # cache_from: only steps whose image descends to one of them count as cached.
    steps = ["FROM " + image, "ENV COMPAT=1", "RUN touch /a", "RUN touch /b"]
    build(api, steps, tag="compat-cache:1")
    def cached(**kw):
        return sum("Using cache" in m.get("stream", "") for m in build(api, steps, **kw))
    check(cached(cache_from=["compat-cache:1"]) == 3, "cache_from=[the image]: 3 steps cached")
    check(cached(cache_from=["no-such-image"]) == 0, "cache_from=[no such image]: nothing cached")
    check(cached() == 3, "no cache_from: the whole cache")

    # extra_hosts reach the RUN's /etc/hosts; network_mode none leaves it only a loopback; a
    # failed RUN's status is the errorDetail's code (the docker CLI's exit status).
    build(api, ["FROM " + image, "RUN cp /etc/hosts /hosts-file"], tag="compat-hosts:1", nocache=True,
          extra_hosts={"extra.compat.test": "127.0.0.2"})
    hosts = client.containers.run("compat-hosts:1", ["cat", "/hosts-file"], remove=True)
    check(b"127.0.0.2\textra.compat.test\n" in hosts, "extra_hosts in a RUN's /etc/hosts: %r" % hosts)
    none = build(api, ["FROM " + image, "RUN ls /sys/class/net; exit 3"], network_mode="none", nocache=True)
    check(any(m.get("stream") == "lo\n" for m in none), "network_mode='none': only lo: %s" % none)
    detail = none[-1].get("errorDetail", {})
    check(detail.get("code") == 3 and "returned a non-zero code: 3" in detail.get("message", ""), "failed RUN: %s" % none[-1])

    # Output is there once start returns; the log comes one frame per line.
    # (The process runs when start returns: it has its PID at once; a start that returned
    # before runc ran it had none yet. Its output follows within moments.)
    c = api.create_container(image, ["sh", "-c", "echo one; echo two; echo three >&2; sleep 1"])
    api.start(c)
    pid = api.inspect_container(c)["State"]["Pid"]
    check(pid > 0, "the process runs when start returns: Pid %d" % pid)
    first = api.logs(c, stderr=False)
    for _ in range(100):
        if first:
            break
        time.sleep(0.02)
        first = api.logs(c, stderr=False)
    check(first.startswith(b"one\n"), "logs after start: %r" % first)
    api.wait(c)
    lines = list(api.logs(c, stream=True, follow=True, stderr=False))
    check(lines == [b"one\n", b"two\n"], "logs(stream=True): one frame per line: %r" % lines)
    check(api.logs(c, stdout=False) == b"three\n", "logs(stdout=False): %r" % api.logs(c, stdout=False))
    api.remove_container(c)

    # A TTY exec started without Tty answers in frames (dockerd frames by the start's Tty);
    # detach keys given as `detachKeys` (docker-py's spelling) are taken.
    long = api.create_container(image, ["cat"], stdin_open=True)
    api.start(long)
    e = api.exec_create(long, ["busybox", "printf", "framed"], tty=True)
    s = api.exec_start(e, socket=True)
    got = frames(s._sock, 6)
    s.close()
    check(got == [(1, b"framed")], "TTY exec started with Tty false: frames %r" % got)
    api._general_configs["detachKeys"] = "ctrl-p"
    e = api.exec_create(long, ["cat"], stdin=True, tty=True)
    # dockerd's inspect has them as Go's []byte: base64 of the key bytes (ctrl-p, 0x10).
    check(api.exec_inspect(e).get("DetachKeys") == "EA==", "exec detachKeys: %s" % api.exec_inspect(e))
    del api._general_configs["detachKeys"]

    # Removing a running container: dockerd's words; SIGKILL returns once it stopped.
    try:
        api.remove_container(long)
        check(False, "removing a running container is refused")
    except docker.errors.APIError as err:
        check(err.status_code == 409 and "stop the container before removing or force remove" in err.explanation,
              "remove a running container: %s" % err.explanation)
    # Commit pauses a running container by default and thaws it after.
    api.commit(long, repository="compat-commit", tag="1")
    check(api.inspect_container(long)["State"]["Status"] == "running", "commit(pause=True) thaws it")
    api.kill(long)
    state = api.inspect_container(long)["State"]
    check(state["Status"] == "exited" and state["ExitCode"] == 137, "kill() returns once exited: %s" % state)
    api.remove_container(long)

    # dockerd's init layer: the process sees /.dockerenv, its hostname and localhost in
    # /etc/hosts, and diff (so commit) has only what it changed, even on an image without
    # /proc, /sys, /dev or /tmp (docker-py's test_diff).
    c = client.containers.run(image, ["sh", "-c", "busybox touch /test; cat /etc/hostname /etc/hosts; ls /.dockerenv"], detach=True)
    c.wait()
    check(c.diff() == [{"Path": "/test", "Kind": 1}], "diff() of a run: %s" % c.diff())
    seen = c.logs()
    check(seen.startswith(c.id[:12].encode() + b"\n127.0.0.1\tlocalhost\n") and seen.endswith(b"/.dockerenv\n"), "init files: %r" % seen)
    c.commit("compat-init", "1")
    c.remove()

    # An unnamed volume is anonymous, as dockerd makes it: prune takes it.
    v = api.create_volume()
    check("com.docker.volume.anonymous" in (v.get("Labels") or {}), "create_volume(): anonymous %s" % v)
    check(v["Name"] in (api.prune_volumes().get("VolumesDeleted") or []), "prune_volumes() takes it")

    # A body that is no image archive: a 200 stream with the error (ImageLoadError).
    try:
        client.images.load(b"abc")
        check(False, "loading garbage fails")
    except docker.errors.ImageLoadError as err:
        check(True, "load(b'abc') raises ImageLoadError: %s" % err)
    print("all ok")


if __name__ == "__main__":
    main()
