"""`make run`'s supervisor: the embedded stack starts, answers, and Ctrl-C stops every process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pgid is the 5th field after the command in parentheses
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pid or int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def test_run_serves_the_embedded_stack_and_stops_cleanly(tmp_path: Path) -> None:
    port, redis_port = _free_port(), _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "STORAGE_BACKEND"} and not key.startswith("S3_")
    }
    env.update(
        {"VAR_DIR": str(tmp_path), "RUN_PORT": str(port), "RUN_REDIS_PORT": str(redis_port), "RUN_SEED_DEMO": "0"}
    )
    process = subprocess.Popen(
        [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    ready = json.loads(response.read())
                    break
            except OSError:
                time.sleep(0.5)
        assert ready == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "storage": "ok"}}
        # The embedded defaults are in use: SQLite and media under VAR_DIR, admin password kept there.
        assert (tmp_path / "db.sqlite3").exists()
        assert (tmp_path / "admin-password").exists()
        assert (tmp_path / "redis").is_dir()
        spawned = _children(process.pid)
        assert len(spawned) >= 5  # valkey, worker, web, qoe-drain, qoe-live

        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
        assert process.returncode == 0, output
        assert "user admin / " in output
        time.sleep(0.5)
        alive = [
            pid
            for pid in spawned
            if Path(f"/proc/{pid}").exists()
            and "Z" not in (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0])
        ]
        assert alive == []
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
