"""Start the real services the suite needs on 127.0.0.1, run a command against them, stop them.

    python tests/harness.py [--keep-going] -- pytest -x ...

PostgreSQL 15 (as the `postgres` user: it refuses to run as root), Redis, and SeaweedFS S3 with
one access key so that every request's signature is really checked. Every process is stopped by
its PID, also when the command fails or the harness is interrupted.
"""

from __future__ import annotations

import json
import os
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

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
S3_ACCESS_KEY = "harness-access-key"
S3_SECRET_KEY = "harness-secret-key-0123456789abcdef"
S3_BUCKET = "lessons-test"


def free_port(*, span: int = 1) -> int:
    """A port P such that P .. P+span-1 and their +10000 gRPC twins look free."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + span + 10_000 > 65_000:
            continue
        if all(_port_free(p) for p in range(base, base + span)) and all(
            _port_free(p + 10_000) for p in range(base, base + span)
        ):
            return base
    raise RuntimeError("no free port range found")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(check: Callable[[], bool], *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s")


@dataclass
class Services:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    pg_data: Path | None = None

    # --- PostgreSQL ---------------------------------------------------------------------------
    def start_postgres(self) -> None:
        pg_dir = self.root / "pg"
        pg_dir.mkdir()
        shutil.chown(pg_dir, "postgres", "postgres")
        data, sockets = pg_dir / "data", pg_dir / "sock"
        sockets.mkdir()
        shutil.chown(sockets, "postgres", "postgres")
        port = free_port()
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        log = open(pg_dir / "postgres.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [*as_postgres, str(PG_BIN / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1",
             "-p", str(port), "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(("postgres", process))
        self.pg_data = data
        wait_for(
            lambda: subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True, timeout=5
            ).returncode
            == 0,
            what="PostgreSQL",
        )
        self.env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/lessons"
        subprocess.run(
            [str(PG_BIN.parent / "bin" / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "lessons"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    # --- Redis --------------------------------------------------------------------------------
    def start_redis(self) -> None:
        port = free_port()
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(("redis", process))

        def ping() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")

        wait_for(ping, what="Redis")
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"

    # --- SeaweedFS S3 -------------------------------------------------------------------------
    def start_seaweedfs(self) -> None:
        weed_dir = self.root / "weed"
        (weed_dir / "data").mkdir(parents=True)
        (weed_dir / "logs").mkdir()
        identities = {
            "identities": [
                {
                    "name": "harness",
                    "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = weed_dir / "s3.json"
        config.write_text(json.dumps(identities))
        base = free_port(span=8)
        s3_port = free_port()
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or "weed"
        process = subprocess.Popen(
            [weed, f"-logdir={weed_dir / 'logs'}", "mini", f"-dir={weed_dir / 'data'}",
             "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
             f"-master.port={base}", f"-filer.port={base + 1}", f"-admin.port={base + 2}",
             f"-volume.port={base + 7}", f"-s3.port={s3_port}", "-webdav=false", "-admin.ui=false",
             f"-s3.config={config}"],
            stdout=open(weed_dir / "weed.out", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip
        self.processes.append(("seaweedfs", process))
        endpoint = f"http://127.0.0.1:{s3_port}"
        client = s3_client(endpoint)

        def bucket_ready() -> bool:
            existing = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
            if S3_BUCKET not in existing:
                client.create_bucket(Bucket=S3_BUCKET)
            client.put_object(Bucket=S3_BUCKET, Key="harness-probe", Body=b"ok")
            return client.get_object(Bucket=S3_BUCKET, Key="harness-probe")["Body"].read() == b"ok"

        wait_for(bucket_ready, what="SeaweedFS S3", timeout=60)
        client.delete_object(Bucket=S3_BUCKET, Key="harness-probe")
        self.env.update(
            {
                "STORAGE_BACKEND": "s3",
                "S3_ENDPOINT_URL": endpoint,
                "S3_BUCKET": S3_BUCKET,
                "S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
                "S3_SECRET_ACCESS_KEY": S3_SECRET_KEY,
                "S3_REGION": "us-east-1",
            }
        )

    # --- Stop ---------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop_postgres()
        for name, process in reversed(self.processes):
            if process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"harness: {name} did not stop in 15 s; killing it", file=sys.stderr)
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()

    def _stop_postgres(self) -> None:
        # `runuser` does not pass signals on: stop the postmaster itself by the PID it recorded.
        pid_file = self.pg_data / "postmaster.pid" if self.pg_data else None
        if pid_file is None or not pid_file.exists():
            return
        pid = int(pid_file.read_text().splitlines()[0])
        try:
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def s3_client(endpoint: str, *, access_key: str = S3_ACCESS_KEY, secret_key: str = S3_SECRET_KEY):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: python tests/harness.py -- COMMAND ...", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    root = Path(tempfile.mkdtemp(prefix="lessons-harness-"))
    os.chmod(root, 0o755)
    services = Services(root=root)

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        started = time.monotonic()
        services.start_postgres()
        services.start_redis()
        services.start_seaweedfs()
        print(f"harness: PostgreSQL, Redis and SeaweedFS S3 up in {time.monotonic() - started:.1f} s", flush=True)
        env = {**os.environ, **services.env, "VAR_DIR": str(root / "var"), "DB_CONN_MAX_AGE": "0"}
        return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        services.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
