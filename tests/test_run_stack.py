"""`make run`'s supervisor (scripts/run.py): the embedded stack starts and answers; Ctrl-C stops every
process it started; a second run keeps the admin password; a child dying on its own stops the rest
and makes the exit code non-zero."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
READY = {
    "status": "ok",
    "checks": {"database": "ok", "migrations": "ok", "broker": "ok", "storage": "ok", "static": "ok"},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid`, with its command name."""
    parents: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        state, ppid = rest.split()[0], int(rest.split()[1])
        if state != "Z":
            parents.setdefault(ppid, []).append(int(entry.name))
            names[int(entry.name)] = name
    found: dict[int, str] = {}
    stack = [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found[child] = names[child]
            stack.append(child)
    return found


def _alive(pids: dict[int, str]) -> list[str]:
    alive = []
    for pid, name in pids.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(f"{pid} {name}")
    return alive


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _start(tmp_path: Path, port: int, redis_port: int, log_name: str) -> tuple[subprocess.Popen[bytes], Path]:
    # The embedded defaults: none of the harness's services or secrets, so SQLite, Valkey (which run.py
    # marks REDIS_EMBEDDED=1), media and the secret files under VAR_DIR.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "STORAGE_BACKEND", "DJANGO_ALLOW_ASYNC_UNSAFE", "REDIS_EMBEDDED"}
        and not key.startswith(("S3_", "SECRET_KEY", "CONTENT_KEY_SECRET", "LTI_KEY_PASSPHRASE"))
    }
    env.update({"VAR_DIR": str(tmp_path / "var"), "RUN_SEED_DEMO": "0"})
    log = tmp_path / log_name
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "scripts/run.py", "--port", str(port), "--redis-port", str(redis_port)],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return process, log


def _wait_until_serving(process: subprocess.Popen[bytes], log: Path, port: int) -> None:
    deadline = time.monotonic() + 120
    while "Press Ctrl-C to stop." not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)
    assert _get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})
    assert _get(f"http://127.0.0.1:{port}/readyz") == (200, READY)


def _finish(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def test_run_serves_the_embedded_stack_stops_cleanly_and_restarts(tmp_path: Path) -> None:
    port, redis_port = _free_port(), _free_port()
    process, log = _start(tmp_path, port, redis_port, "first.log")
    try:
        _wait_until_serving(process, log, port)
        var = tmp_path / "var"
        assert (var / "db.sqlite3").exists()
        assert (var / "redis" / "appendonlydir").is_dir()  # Valkey keeps its data under VAR_DIR
        # The embedded default's secrets are files made by run.py, read because REDIS_URL is its own Valkey.
        assert sorted(p.name for p in var.iterdir() if p.name.endswith(("_key", "_secret", "_passphrase"))) == [
            "content_key_secret", "lti_key_passphrase", "secret_key",
        ]  # fmt: skip
        password_file = var / "admin-password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        password = password_file.read_text().strip()
        assert f"user admin / {password}" in log.read_text()
        spawned = _descendants(process.pid)
        names = " ".join(spawned.values())
        assert "valkey-server" in names or "valkey" in names, spawned
        assert sum("python" in name for name in spawned.values()) >= 3, spawned
        # A full Valkey refuses writes rather than evicting queued tasks (docs/adr/0020).
        valkey = redis.Redis(host="127.0.0.1", port=redis_port)
        config = valkey.config_get("maxmemory*")
        assert (config["maxmemory"], config["maxmemory-policy"]) == (str(1024**3), "noeviction")
        valkey.close()

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        _finish(process)
    time.sleep(0.2)
    assert _alive(spawned) == []
    for closed in (port, redis_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", closed)) != 0

    # Second run: same account and password; then a child dies and the supervisor gives up loudly.
    started = time.monotonic()
    process, log = _start(tmp_path, port, redis_port, "second.log")
    try:
        _wait_until_serving(process, log, port)
        assert time.monotonic() - started < 60
        assert f"user admin / {password}" in log.read_text()
        spawned = _descendants(process.pid)
        web = [pid for pid in spawned if b"config.serve" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(web[0], signal.SIGKILL)
        assert process.wait(timeout=60) == 1
        assert "web exited unexpectedly" in log.read_text()
    finally:
        _finish(process)
    time.sleep(0.2)
    assert _alive(spawned) == []
