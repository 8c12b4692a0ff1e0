"""Start a real nginx with the shipped edge config (deploy/nginx) in front of an origin, for tests.

The files are laid out as docs/operations.md says (a folder `lessons/` beside nginx.conf): the
http-level part lessons-edge-http.conf inside http {}, with only its cache folder and origin address
rewritten; the server-level part lessons-edge.conf inside a server {}."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"


@contextmanager
def run_edge(
    *,
    workdir: Path,
    origin: str,
    edge_secret: str,
    origin_secret: str,
    region: str = "",
    processes: list | None = None,
    binding: str = "",
) -> Iterator[str]:
    """Yield the edge's base URL; ``origin`` is host:port of the Django app, ``region`` the storage
    region it serves ("" for the primary). ``processes`` receives the nginx process (to stop it early);
    ``binding`` is the nginx value of $lessons_binding ("" or "$remote_addr")."""
    for folder in (workdir, *workdir.parents):  # nginx workers run unprivileged
        if folder == Path("/tmp"):
            break
        folder.chmod(folder.stat().st_mode | 0o755)
    (workdir / "lessons").mkdir(exist_ok=True)
    for conf in DEPLOY.glob("*.conf"):
        shutil.copy(conf, workdir / "lessons" / conf.name)
    edge_http = workdir / "lessons" / "lessons-edge-http.conf"
    edge_http.write_text(edge_http_for_test(edge_http.read_text(), cache=workdir / "cache", origin=origin))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = "".join(f"{n}_temp_path {workdir / n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / "nginx.conf").write_text(
        f"""daemon off;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"};
events {{}}
http {{
  {temp}
  include lessons/lessons-edge-http.conf;
  access_log {workdir / "access.json.log"} lessons_json;
  server {{
    listen 127.0.0.1:{port};
    set $lessons_secret "{edge_secret}";
    set $lessons_origin_secret "{origin_secret}";
    set $lessons_origin_host "{origin}";
    set $lessons_region "{region}";
    set $lessons_binding "{binding}";
    include lessons/lessons-edge.conf;
    location / {{ return 404; }}
    location = /__edge_ready {{ access_log off; return 204; }}
  }}
}}
"""
    )
    process = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(workdir / "nginx.conf")])
    if processes is not None:
        processes.append(process)
    try:
        # Ready when this nginx answers its own probe location: a bare TCP connect could reach another
        # process that took the port between our probe and nginx's bind (tests run side by side).
        deadline = time.monotonic() + 10
        while not _answers_ready(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((workdir / "error.log").read_text())
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=10)


def edge_http_for_test(text: str, *, cache: Path, origin: str) -> str:
    """The shipped http-level part with only its cache folder and origin address changed."""
    shipped_cache, shipped_origin = "/var/cache/nginx/lessons ", "server 127.0.0.1:8000;"
    assert shipped_cache in text and shipped_origin in text, "lessons-edge-http.conf changed: update the test"
    return text.replace(shipped_cache, f"{cache} ").replace(shipped_origin, f"server {origin};")


def _answers_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/__edge_ready", timeout=1) as response:
            return response.status == 204
    except (OSError, http.client.HTTPException):
        return False
