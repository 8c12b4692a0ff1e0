"""Start a real nginx with the shipped edge config (deploy/nginx) in front of an origin, for tests."""

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
    for conf in DEPLOY.glob("*.conf"):
        shutil.copy(conf, workdir / conf.name)
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
  include log-format.conf;
  access_log {workdir / "access.json.log"} lessons_json;
  proxy_cache_path {workdir / "cache"} keys_zone=lessons:10m max_size=200m inactive=30d use_temp_path=off;
  upstream lessons_origin {{ server {origin}; keepalive 4; }}
  server {{
    listen 127.0.0.1:{port};
    set $lessons_secret "{edge_secret}";
    set $lessons_origin_secret "{origin_secret}";
    set $lessons_region "{region}";
    set $lessons_binding "{binding}";
    include lessons-edge.conf;
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


def _answers_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/__edge_ready", timeout=1) as response:
            return response.status == 204
    except (OSError, http.client.HTTPException):
        return False
