"""Web processes behind nginx as the load balancer on 127.0.0.1, and a load of playback requests.

Shared by the rolling-restart test (tests/test_rolling_restart.py) and the benchmarks
bench/web_drain.py and bench/web_scaleout.py. Every process started here is stopped by its PID.

- `Web`: one web process (`python -m config.serve`, or daphne for the comparison) with its own log.
- `Balancer`: nginx with an upstream of the web processes. `Balancer.route(ports)` rewrites the
  upstream and reloads nginx, returning once the new configuration answers: what a load balancer's
  controller does when a backend's readiness fails or returns (Kubernetes' endpoints, an operator's
  `nginx -s reload`).
- `Load`: threads sending real requests through the balancer, one connection each (a fresh
  connection per request, so a reload never meets an idle client connection), recording each outcome
  with the backend that answered it (nginx's X-Upstream) and the phase it started in.
- `make_world`: a published lesson an enrolled learner may play, with objects on storage.
"""

from __future__ import annotations

import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def web_env(*, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The production settings for a served process (static files without the collectstatic
    manifest, as tests/security serves them), per-client limits lifted for a one-machine load."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.security.served_settings",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "WEB_ACCESS_LOG": "0",
        "THROTTLE_PLAYBACK_SESSION": "100000000/min",
        "MEDIA_PROVISIONAL": "0",
        **extra,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


@dataclass
class Web:
    """One web process on 127.0.0.1:port. ``server`` is "serve" (config/serve.py) or "daphne"."""

    port: int
    env: dict[str, str]
    log: Path
    server: str = "serve"
    cpu: int | None = None  # pinned to this core when set
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def command(self) -> list[str]:
        if self.server == "daphne":
            return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"]
        return [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as output:
            output.write(f"--- start {self.starts}\n".encode())
            output.flush()
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        if self.cpu is not None:
            os.sched_setaffinity(self.process.pid, {self.cpu})

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def readiness(self) -> int | None:
        """The status of /readyz asked directly (as a kubelet does), None when nothing answers."""
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            connection.request("GET", "/readyz", headers={"Connection": "close"})
            status = connection.getresponse().status
            connection.close()
            return status
        except OSError:
            return None

    def wait_readiness(self, status: int, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.readiness() != status:
            if self.process is not None and self.process.poll() is not None and status == 200:
                raise RuntimeError(f"web process on {self.port} exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"/readyz on {self.port} did not answer {status} in {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def refuses(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    def wait_refusing(self, *, timeout: float = 60.0) -> None:
        """Until the listening socket is closed (or the process is gone)."""
        deadline = time.monotonic() + timeout
        while not self.refuses():
            if self.process is not None and self.process.poll() is not None:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.port} still accepts connections after {timeout:.0f} s")
            time.sleep(0.01)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, *, timeout: float = STOP_TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        if self.server == "serve":  # end any readiness window at once, with a second signal once the
            # first was handled (two at once would arrive as one)
            deadline = time.monotonic() + 10
            while self.process.poll() is None and self.readiness() == 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Balancer:
    """nginx in front of web processes, with the proxy settings a load balancer needs: a refused or
    failed connection is retried on the next backend (`proxy_next_upstream error timeout`, nginx's
    default; a POST is retried only when nothing of it was sent), websockets upgraded, keep-alive
    connections to the backends."""

    def __init__(self, workdir: Path, ports: Sequence[int], *, cpu: int | None = None) -> None:
        self.workdir = workdir
        self.ports = list(ports)
        self.port = free_port()
        self.generation = 0
        self.cpu = cpu
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write(self, enabled: Sequence[int]) -> None:
        self.generation += 1
        work = self.workdir
        temp = "".join(f"  {n}_temp_path {work / n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        servers = "".join(f"    server 127.0.0.1:{port}{'' if port in enabled else ' down'};\n" for port in self.ports)
        (work / "nginx.conf").write_text(
            f"""daemon off;
worker_processes 1;
pid {work / "nginx.pid"};
error_log {work / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
{temp}  log_format lb '$msec $status $request_method $request_uri $upstream_addr $upstream_status';
  access_log {work / "access.log"} lb;
  map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
  upstream web {{
{servers}    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    location = /__lb_generation {{ access_log off; return 200 "{self.generation}"; }}
    location / {{
      proxy_pass http://web;
      client_max_body_size 20g;  # as deploy/nginx/lessons-site.conf: uploads
      proxy_request_buffering off;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_next_upstream error timeout;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
"""
        )

    def start(self) -> None:
        for folder in (self.workdir, *self.workdir.parents):  # nginx workers may run unprivileged
            if folder == Path("/tmp") or folder == Path("/"):
                break
            folder.chmod(folder.stat().st_mode | 0o755)
        self._write(self.ports)
        self.process = subprocess.Popen(
            [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(self.workdir / "nginx.conf")],
            stdin=subprocess.DEVNULL,
        )
        if self.cpu is not None:
            os.sched_setaffinity(self.process.pid, {self.cpu})
        self._wait_generation()

    def route(self, enabled: Sequence[int], *, timeout: float = 60.0) -> None:
        """Send requests only to ``enabled``; returns once nginx answers with the new config and its
        old workers have exited. An old worker finishes the requests it has, and may still be passing
        on one it read just before the reload to a backend no longer in the new config."""
        assert self.process is not None
        old = set(_children(self.process.pid))
        self._write(enabled)
        self.process.send_signal(signal.SIGHUP)
        self._wait_generation()
        deadline = time.monotonic() + timeout
        while old & set(_children(self.process.pid)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx's old workers {old} still running after {timeout:.0f} s")
            time.sleep(0.01)

    def _wait_generation(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        wanted = str(self.generation).encode()
        while True:
            try:
                with urllib.request.urlopen(self.base + "/__lb_generation", timeout=5) as response:
                    if response.read() == wanted:
                        break
            except OSError:
                pass
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.workdir / "error.log").read_text(errors="replace"))
            time.sleep(0.02)
        if self.cpu is not None:  # a reload starts new worker processes
            for child in _children(self.process.pid):
                os.sched_setaffinity(child, {self.cpu})

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *_children(self.process.pid)]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Call:
    """One kind of request the load sends, and the status that counts as success."""

    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    expect: int = 200


@dataclass(frozen=True)
class Outcome:
    call: str
    phase: int
    status: int | None  # None: no HTTP answer at all
    upstream: str  # the backend that answered last (after nginx's retries), "" if none
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class Load:
    """``threads`` senders, each looping over ``calls`` until stopped."""

    def __init__(self, base: str, calls: Sequence[Call], *, threads: int) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.calls = list(calls)
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self.phase = 0
        self.outcomes: list[Outcome] = []
        self.changed = threading.Condition()
        self.stopping = threading.Event()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=STOP_TIMEOUT)

    def _run(self, index: int) -> None:
        turn = index
        while not self.stopping.is_set():
            call = self.calls[turn % len(self.calls)]
            turn += 1
            outcome = self.send(call)
            with self.changed:
                self.outcomes.append(outcome)
                self.changed.notify_all()

    def send(self, call: Call) -> Outcome:
        phase = self.phase
        try:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            connection.request(call.method, call.path, headers={**call.headers, "Connection": "close"})
            response = connection.getresponse()
            response.read()
            upstream = (response.getheader("X-Upstream") or "").split(",")[-1].strip()
            connection.close()
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(call.name, phase, None, "", f"{type(exc).__name__}: {exc}")
        error = "" if response.status == call.expect else f"status {response.status}"
        return Outcome(call.name, phase, response.status, upstream, error)

    def served(self, phase: int) -> Counter[str]:
        return Counter(o.upstream for o in self.outcomes if o.phase == phase and o.ok)

    def wait_served(self, phase: int, upstreams: Sequence[str], *, at_least: int, timeout: float = 60.0) -> None:
        """Until every one of ``upstreams`` answered ``at_least`` requests that started in ``phase``."""
        with self.changed:
            if not self.changed.wait_for(
                lambda: all(self.served(phase)[u] >= at_least for u in upstreams), timeout=timeout
            ):
                raise RuntimeError(f"phase {phase}: served {dict(self.served(phase))}, wanted {at_least} each")

    def failures(self) -> list[Outcome]:
        with self.changed:
            return [o for o in self.outcomes if not o.ok]


@dataclass(frozen=True)
class World:
    token: str  # the learner's API token
    lesson_id: str
    key_prefix: str  # lessons/<id>/v1/
    stream_token: str  # a path token for every object under key_prefix
    segment: str  # a small object's key
    large: str  # a large object's key
    large_size: int
    staff_session: str  # a logged-in session key of a staff user (the live dashboard's websocket)

    def calls(self) -> list[Call]:
        auth = {"Authorization": f"Token {self.token}"}
        return [
            Call("playback session", "POST", f"/api/v1/lessons/{self.lesson_id}/playback/", auth),
            Call("segment", "GET", f"/stream/{self.stream_token}/{self.segment}"),
            Call("home page", "GET", "/"),
        ]


def make_world(*, large_size: int = 0, slug: str = "cluster-course") -> World:
    """A published lesson with version 1 on storage (a 64 KiB segment and, if asked, a large object),
    an enrolled learner with an API token. Needs Django set up, with the rows committed."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from courses.models import Course, Enrollment, Lesson
    from media_pipeline import storage
    from media_pipeline.models import MediaAsset
    from playback.tokens import token_issue

    course = Course.objects.create(slug=slug, title="Cluster course", published=True)
    lesson = Lesson.objects.create(course=course, title="Cluster lesson")
    prefix = f"lessons/{lesson.public_id}/v1/"
    lesson.asset = MediaAsset.objects.create(
        key_prefix=f"lessons/{lesson.public_id}", status="ready", published_version=1, building_version=1,
        duration_seconds=600.0,
    )  # fmt: skip
    lesson.save()
    learner = User.objects.create_user(f"{slug}-learner", password="cluster-pw-123")
    Enrollment.objects.create(user=learner, course=course)
    segment = prefix + "video_360p/1.m4s"
    storage.save_stream(key=segment, stream=io.BytesIO(bytes(range(256)) * 256))
    large = prefix + "original/large.mp4"
    if large_size:
        storage.save_stream(key=large, stream=io.BytesIO(_pattern(large_size)))
    staff = User.objects.create_user(f"{slug}-staff", password="cluster-pw-123", is_staff=True)
    stream_token = token_issue(
        secret=settings.PLAYBACK_TOKEN_SECRET.encode(), prefix=prefix, expires_at=int(time.time()) + 86_400
    )
    return World(
        token=Token.objects.create(user=learner).key,
        lesson_id=str(lesson.public_id),
        key_prefix=prefix,
        stream_token=stream_token,
        segment=segment,
        large=large,
        large_size=large_size,
        staff_session=_session_for(staff),
    )


def _session_for(user: Any) -> str:
    """A logged-in Django session, as the login view would leave it."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def _pattern(size: int) -> bytes:
    block = bytes(range(251)) * 4099  # a prime-length pattern: a shifted or short copy would not match
    return (block * (size // len(block) + 1))[:size]


class SlowDownload:
    """A GET of ``path`` straight to one web process through a small receive buffer, read a little at
    first and then not at all: the server cannot finish sending it until ``finish`` reads the rest,
    so it is provably in flight for as long as the caller wants."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        self.received = b""
        while b"\r\n\r\n" not in self.received:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"no response: {self.received!r}")
            self.received += chunk
        self.head, _, self.body_start = self.received.partition(b"\r\n\r\n")

    def finish(self) -> tuple[bytes, bytes]:
        """(status line and headers, the whole body) once the server closed the connection."""
        chunks = [self.body_start]
        while chunk := self.sock.recv(1 << 20):
            chunks.append(chunk)
        self.sock.close()
        return self.head, b"".join(chunks)

    def expected(self, size: int) -> bytes:
        return _pattern(size)
