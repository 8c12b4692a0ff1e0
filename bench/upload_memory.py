"""Benchmark: web-process memory during a large tus upload, against a plain boto3 upload of the same bytes.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/upload_memory.py [--size-mb 2048] [--chunk-mb 16]

Runs under the test harness (PostgreSQL, Redis, SeaweedFS S3 on loopback). The bytes are generated
as they are read (a seekable stream repeating a random 1 MiB block), never stored. In the same run:

- baseline: a child process streams the bytes to S3 with boto3 ``upload_fileobj`` (its default
  transfer settings); its RSS is sampled from /proc;
- ours: the production web process (`python -m config.serve`) receives the same bytes over tus
  from tuspy (``--chunk-mb`` per PATCH, the admin widget's default chunk size) and puts them into
  an S3 multipart upload; the server's RSS is sampled from /proc every 50 ms.

Prints, for both, the time, MB/s and RSS before / peak / growth, and the ratios ours/baseline.
Target (issue 3): the web process's RSS grows by under 100 MB for a 2 GB upload.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MIB = 1024 * 1024


class GeneratedStream(io.RawIOBase):
    """``size`` bytes repeating one random 1 MiB block; seekable, nothing kept but the block."""

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0
        self.block = os.urandom(MIB)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, min(self.size, base + offset))
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            start = (self.pos + len(out)) % MIB
            out += self.block[start : start + n - len(out)]
        self.pos += n
        return bytes(out)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(0.05)

    def stop(self) -> float:
        self.running = False
        self.join(timeout=2)
        return self.peak


BASELINE_CHILD = """
import os, sys, time
sys.path.insert(0, {root!r})
from bench.upload_memory import GeneratedStream
from tests.harness import s3_client
client = s3_client(os.environ["S3_ENDPOINT_URL"])
stream = GeneratedStream({size})
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
started = time.monotonic()
client.upload_fileobj(stream, os.environ["S3_BUCKET"], {key!r})
sys.stdout.write(f"{{time.monotonic() - started}}\\n"); sys.stdout.flush()
"""


def run_baseline(size: int, key: str) -> dict[str, float]:
    code = BASELINE_CHILD.format(root=str(ROOT), size=size, key=key)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        before = rss_mb(child.pid)
        sampler = RssSampler(child.pid)
        sampler.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        seconds = float(child.stdout.readline())
        peak = sampler.stop()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return {"seconds": seconds, "before": before, "peak": peak}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _setup_django() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from courses.models import Course, Lesson

    call_command("migrate", verbosity=0)
    user = User.objects.create_user(f"bench-{uuid.uuid4().hex[:8]}", is_staff=True)
    course = Course.objects.create(slug=f"bench-{uuid.uuid4().hex[:8]}", title="Bench")
    course.educators.add(user)
    lesson = Lesson.objects.create(course=course, title="Big upload")
    return lesson, {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def run_tus(base_url: str, auth: dict[str, str], lesson: Any, size: int, chunk: int, server_pid: int) -> dict[str, Any]:
    from tusclient import client as tus_client

    def upload(n: int) -> str:
        uploader = tus_client.TusClient(f"{base_url}/api/v1/uploads/", headers=auth).uploader(
            file_stream=GeneratedStream(n), chunk_size=chunk, metadata={"lesson": str(lesson.public_id)}
        )
        uploader.upload()
        return uploader.url

    upload(2 * chunk + 12345)  # warm-up: every import, the S3 client, the code paths of a whole upload
    time.sleep(1)
    before = rss_mb(server_pid)
    sampler = RssSampler(server_pid)
    sampler.start()
    started = time.monotonic()
    url = upload(size)
    seconds = time.monotonic() - started
    peak = sampler.stop()
    return {"seconds": seconds, "before": before, "peak": peak, "after": rss_mb(server_pid), "url": url}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--chunk-mb", type=int, default=16)
    args = parser.parse_args()
    if "S3_ENDPOINT_URL" not in os.environ:
        print("run under the harness: .venv/bin/python tests/harness.py -- .venv/bin/python bench/upload_memory.py")
        return 2
    size, chunk = args.size_mb * MIB, args.chunk_mb * MIB
    lesson, auth = _setup_django()
    from tests.harness import s3_client

    s3, bucket = s3_client(os.environ["S3_ENDPOINT_URL"]), os.environ["S3_BUCKET"]
    port = _free_port()
    log = open(Path(os.environ.get("VAR_DIR", "/tmp")) / "bench-web.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        baseline_key = f"bench/baseline-{uuid.uuid4().hex}"
        print(f"uploading {args.size_mb} MiB twice: boto3 baseline, then tus in {args.chunk_mb} MiB chunks", flush=True)
        base = run_baseline(size, baseline_key)
        ours = run_tus(base_url, auth, lesson, size, chunk, server.pid)

        from media_pipeline.models import ResumableUpload

        row = ResumableUpload.objects.get(public_id=ours["url"].rsplit("/", 1)[1])
        stored = s3.head_object(Bucket=bucket, Key=row.storage_key)["ContentLength"]
        assert stored == size, f"stored {stored} bytes, expected {size}"
        s3.delete_object(Bucket=bucket, Key=baseline_key)
        s3.delete_object(Bucket=bucket, Key=row.storage_key)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

    mb = size / 1e6
    base_growth, our_growth = base["peak"] - base["before"], ours["peak"] - ours["before"]
    print(f"baseline boto3 upload_fileobj: {base['seconds']:.1f} s, {mb / base['seconds']:.1f} MB/s, "
          f"RSS {base['before']:.0f} -> peak {base['peak']:.0f} MB (+{base_growth:.0f} MB)")  # fmt: skip
    print(f"ours, tus through the web tier: {ours['seconds']:.1f} s, {mb / ours['seconds']:.1f} MB/s, "
          f"RSS {ours['before']:.0f} -> peak {ours['peak']:.0f} MB (+{our_growth:.0f} MB), "
          f"after {ours['after']:.0f} MB")  # fmt: skip
    print(f"ratio throughput ours/baseline: {base['seconds'] / ours['seconds']:.2f}")
    print(f"ratio RSS growth ours/baseline: {our_growth / max(base_growth, 1):.2f}")
    verdict = "met" if our_growth < 100 else "NOT met"
    print(f"target: web-process RSS growth under 100 MB for {args.size_mb} MiB: {verdict}")
    return 0 if our_growth < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
