"""METRICS_PORT: the metrics on a port of their own, outside Django (no Host check, no HTTPS redirect),
the way deploy/kubernetes scrapes web pods by address; a second process of the pod starts anyway."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"SECRET_KEY": "k" * 50, "CONTENT_KEY_SECRET": "c" * 40, "LTI_KEY_PASSPHRASE": "p" * 40}
# Sets Django up (django_prometheus starts the exporter in its AppConfig.ready), says so, and stays
# until its stdin closes.
HOLD = "import sys, django; django.setup(); print('ready', flush=True); sys.stdin.read()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until set up (or the process died: "")
    assert line == "ready\n", process.communicate(timeout=30)
    return process


def stop(process: subprocess.Popen[str]) -> str:
    _, stderr = process.communicate(input="", timeout=30)
    assert process.returncode == 0, stderr
    return stderr


def test_the_metrics_port_serves_the_registry_with_https_and_any_host(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(tmp_path),
        "HTTPS": "1",
        "ALLOWED_HOSTS": "lessons.example.org",
        "METRICS_PORT": str(port),
        "METRICS_ADDRESS": "127.0.0.1",
        **SECRETS,
    }
    first = start(env)
    try:
        second = start(env)  # the port is taken: it logs that and runs
        assert "no available ports" in stop(second)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert response.status == 200
            page = response.read().decode()
        assert "python_info" in page and "media_tool_network_isolated" in page  # the process's own registry
    finally:
        stop(first)
