"""CMCD read from a real nginx's JSON access log, written with the shipped log format."""

from __future__ import annotations

import io
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from django.core.management import call_command
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cmcd_from_the_edge_log(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    # nginx's workers run as an unprivileged user: the served files must be world-readable.
    for folder in (tmp_path, *tmp_path.parents):
        if folder == Path("/tmp"):
            break
        folder.chmod(folder.stat().st_mode | 0o755)
    site = tmp_path / "site" / "lessons" / "x" / "v1" / "video_360p"
    site.mkdir(parents=True)
    (site / "1.m4s").write_bytes(b"\0" * 100)
    port = _free_port()
    log = tmp_path / "access.json.log"
    temp_paths = "".join(
        f"{name}_temp_path {tmp_path / name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"""
daemon off;
pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"};
events {{}}
http {{
  {temp_paths}
  include {ROOT / "deploy" / "nginx" / "log-format.conf"};
  access_log {log} lessons_json;
  server {{
    listen 127.0.0.1:{port};
    root {tmp_path / "site"};
  }}
}}
"""
    )
    process = subprocess.Popen([nginx, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "error.log").read_text()
                time.sleep(0.05)
        cmcd = "bl%3D300%2Cbs%2Cbr%3D800%2Cot%3Dv%2Csid%3D%22view-1%22"
        for query in (f"?CMCD={cmcd}", ""):
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/lessons/x/v1/video_360p/1.m4s{query}", timeout=5
            ) as r:
                assert r.status == 200
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=10)

    lines = log.read_text().splitlines()
    assert len(lines) == 2
    before = (_value("qoe_cmcd_requests_total", object="video"), _value("qoe_cmcd_buffer_starvation_total"))
    out = io.StringIO()
    call_command("cmcd_ingest_log", str(log), stdout=out)
    assert out.getvalue().strip() == "read CMCD from 1 request(s)"
    assert _value("qoe_cmcd_requests_total", object="video") - before[0] == 1
    assert _value("qoe_cmcd_buffer_starvation_total") - before[1] == 1
