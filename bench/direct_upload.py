"""Benchmark: the admin widget's direct upload to S3 in Chromium against a raw boto3 multipart upload.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/direct_upload.py [--size-mb 2048] [--tus] [--no-pin]

Runs under the test harness (PostgreSQL, Redis, SeaweedFS S3 on loopback). One file of random bytes
(``--size-mb``, default 2048; ``--size-mb 64`` for a smoke run) is written to a temporary folder. In
the same run, in this order:

- baseline: boto3 sends the file as a multipart upload with the widget's part size and parallelism
  (16 MiB parts, 6 at a time, each with its Content-MD5, as the widget sends them), from this process;
- ours: the production web process (python -m config.serve, static files collected) serves the
  lesson admin page to headless Chromium (/usr/bin/chromium); the file is chosen in the widget, which
  hashes the parts, asks the API for their URLs and PUTs them straight to SeaweedFS (the bucket's CORS
  rule set as the README says), then completes. After a 1 MiB warm-up upload, timed from choosing the
  file to the widget's "done" (hashing, part URLs, completion included); the web process's CPU seconds
  (utime + stime from /proc) are read before and after;
- the browser's ceiling: from a page of the same origin, Chromium PUTs the same parts to presigned
  URLs with the same parallelism and nothing else (no MD5, no API calls), to tell the browser's
  own cost from the widget's;
- with ``--tus``: the same widget with ``UPLOAD_DIRECT=0`` (a second web process), i.e. the tus path.

Where the CPU goes. An educator's browser runs on their own computer, not on the storage server; on a
machine of two cores, storage (SeaweedFS spends about 12 s of CPU per GB received) and the client
would otherwise take CPU from each other, and the figure would measure which client is cheaper to run
beside storage (Chromium spends more CPU per byte sent than boto3 whatever the page does) instead of
whether the widget keeps storage as busy as a native client does. So by default the servers (every
SeaweedFS, PostgreSQL and Redis process, and the web process) are pinned to CPU 0 and the client (this
process for boto3, Chromium for the widget) to CPU 1; ``--no-pin`` shares both cores. The CPU seconds
of storage and of the client are printed for each upload.

Prints each time and MB/s, the ratio baseline time / widget time (target: at least 0.9) and the web
process's CPU seconds during each widget upload (target: near zero for the direct path). The stored
objects' sizes are checked, then deleted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.web_cluster import Web, free_port  # noqa: E402

MIB = 1024 * 1024
PART = 16 * MIB  # settings.UPLOAD_DIRECT_PART_BYTES's default
PARALLEL = 6  # the widget's (static/js/lesson-upload.js)
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-password-123456"


def write_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            out.write(block)
            left -= len(block)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def pids_of(*names: str) -> list[int]:
    """Running processes whose command line contains one of these names."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(name in cmdline for name in names):
                found.append(int(entry.name))
    return found


def party_cpu() -> dict[str, float]:
    """CPU seconds so far of storage (every SeaweedFS process), the browser (every Chromium process) and
    this process (the boto3 client)."""

    def total(pids: list[int]) -> float:
        seconds = 0.0
        for pid in pids:
            try:
                seconds += cpu_seconds(pid)
            except (OSError, IndexError):
                pass  # a process that just ended
        return seconds

    return {"storage": total(pids_of("weed")), "browser": total(pids_of("chromium")), "boto3": total([os.getpid()])}


def cpu_since(before: dict[str, float]) -> dict[str, float]:
    after = party_cpu()
    return {name: after[name] - before[name] for name in before}


def cpu_text(spent: dict[str, float], client: str) -> str:
    return f"CPU: storage {spent['storage']:.1f} s, client {spent[client]:.1f} s"


def pin(pid: int, cpu: int) -> None:
    """Every thread of a running process onto one core (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except OSError:
            pass  # a thread that just ended


def baseline(path: Path, size: int, key: str) -> float:
    """A raw boto3 multipart upload: same part size, same parallelism, each part with its Content-MD5."""
    from tests.harness import s3_client

    client, bucket = s3_client(os.environ["S3_ENDPOINT_URL"]), os.environ["S3_BUCKET"]
    count = -(-size // PART)

    def send(number: int) -> dict[str, Any]:
        with path.open("rb") as source:
            source.seek((number - 1) * PART)
            body = source.read(PART)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - S3's Content-MD5
        etag = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, ContentMD5=md5
        )["ETag"]
        return {"PartNumber": number, "ETag": etag}

    started = time.monotonic()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    with ThreadPoolExecutor(PARALLEL) as pool:
        parts = list(pool.map(send, range(1, count + 1)))
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    return time.monotonic() - started


def setup_django() -> tuple[Any, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from courses.models import Course

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    user = User.objects.create_superuser(f"bench-{uuid.uuid4().hex[:8]}", password=PASSWORD)
    course = Course.objects.create(slug=f"bench-{uuid.uuid4().hex[:8]}", title="Bench")
    return user, course


def widget_upload(browser: Any, base_url: str, username: str, lesson: Any, path: Path, pid: int) -> dict[str, Any]:
    """Log in, open the lesson's admin page, choose the file; time and web CPU until the widget is done."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base_url}/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{base_url}/admin/")
        page.goto(f"{base_url}/admin/courses/lesson/{lesson.pk}/change/")
        page.wait_for_selector("#upload-box")
        cpu_before = cpu_seconds(pid)
        parties = party_cpu()
        started = time.monotonic()
        page.set_input_files("#id_video", str(path))
        # The page reloads after a finished upload: the state is taken the moment it is final.
        final = page.wait_for_function(
            "['done', 'failed'].includes(window.lessonUpload.state) && JSON.stringify(window.lessonUpload)",
            timeout=3_600_000,
            polling=100,
        )
        seconds = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_before
        spent = cpu_since(parties)
        state = json.loads(final.json_value())
    finally:
        context.close()
    if state["state"] != "done":
        raise RuntimeError(f"the widget failed: {state['error']}")
    if os.environ.get("BENCH_TIMINGS"):
        for timing in state["timings"]:
            print("  " + ", ".join(f"{name} {value:.0f}" for name, value in timing.items()), flush=True)
    return {"seconds": seconds, "cpu": cpu, "transport": state["transport"], "parties": spent}


RAW_PUTS = """async ([urls, part, parallel]) => {
  const file = document.getElementById("bench-raw").files[0];
  const todo = urls.map((url, i) => [i, url]);
  const etags = [];
  const started = performance.now();
  async function worker() {
    while (todo.length) {
      const [i, url] = todo.shift();
      const answer = await fetch(url, {method: "PUT", body: file.slice(i * part, (i + 1) * part)});
      if (!answer.ok) throw new Error("PUT " + answer.status);
      etags[i] = answer.headers.get("ETag");
    }
  }
  await Promise.all(Array.from({length: parallel}, worker));
  return [(performance.now() - started) / 1000, etags];
}"""


def browser_raw(
    browser: Any, base_url: str, path: Path, size: int, s3: Any, bucket: str
) -> tuple[float, dict[str, float]]:
    """The browser's own ceiling: Chromium PUTs the parts to presigned URLs (no MD5, no API, no page
    logic), same part size and parallelism, from a page of the site's origin (the CORS rule)."""
    key = f"bench/raw-{uuid.uuid4().hex}"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    count = -(-size // PART)
    urls = [
        s3.generate_presigned_url(
            "upload_part", Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": n}, ExpiresIn=3600
        )
        for n in range(1, count + 1)
    ]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base_url}/admin/login/")
        page.evaluate(
            "() => { const i = document.createElement('input');"
            " i.type = 'file'; i.id = 'bench-raw'; document.body.append(i); }"
        )
        page.set_input_files("#bench-raw", str(path))
        before = party_cpu()
        seconds, etags = page.evaluate(RAW_PUTS, [urls, PART, PARALLEL])
        spent = cpu_since(before)
    finally:
        context.close()
    parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == size
    s3.delete_object(Bucket=bucket, Key=key)
    return float(seconds), spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--tus", action="store_true", help="also time the widget over tus (UPLOAD_DIRECT=0)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the servers on CPU 0, the client (boto3, Chromium) on CPU 1 (default); --no-pin shares both cores",
    )
    args = parser.parse_args()
    if "S3_ENDPOINT_URL" not in os.environ:
        print("run under the harness: .venv/bin/python tests/harness.py -- .venv/bin/python bench/direct_upload.py")
        return 2
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"  # ORM calls beside Playwright's event loop (as tests/e2e)
    size = args.size_mb * MIB
    user, course = setup_django()
    from playwright.sync_api import sync_playwright

    from courses.models import Lesson
    from media_pipeline.models import ResumableUpload
    from tests.conftest import CHROMIUM_ARGS
    from tests.harness import s3_client

    s3, bucket = s3_client(os.environ["S3_ENDPOINT_URL"]), os.environ["S3_BUCKET"]
    server_cpu = None
    if args.pin:
        server_cpu = 0
        for pid in pids_of("weed", "postgres", "redis-server"):
            pin(pid, 0)
        pin(os.getpid(), 1)
    placement = "servers pinned to CPU 0, the client to CPU 1" if args.pin else "not pinned: both cores shared"
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores; {placement}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    raw_seconds, raw_cpu = 0.0, {}
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as folder:
        path = Path(folder) / "lecture.mp4"
        write_file(path, size)
        small = Path(folder) / "warm-up.mp4"
        write_file(small, MIB)
        baseline_key = f"bench/baseline-{uuid.uuid4().hex}"
        print(f"uploading {args.size_mb} MiB: raw boto3 multipart, then the widget in Chromium", flush=True)
        before = party_cpu()
        base_seconds = baseline(path, size, baseline_key)
        base_cpu = cpu_since(before)
        s3.delete_object(Bucket=bucket, Key=baseline_key)
        runs = [("direct", {})] + ([("tus", {"UPLOAD_DIRECT": "0"})] if args.tus else [])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for name, env in runs:
                    port = free_port()
                    base_url = f"http://127.0.0.1:{port}"
                    s3.put_bucket_cors(
                        Bucket=bucket,
                        CORSConfiguration={
                            "CORSRules": [
                                {
                                    "AllowedOrigins": [base_url],
                                    "AllowedMethods": ["PUT"],
                                    "AllowedHeaders": ["content-md5", "content-type"],
                                    "ExposeHeaders": ["ETag"],
                                    "MaxAgeSeconds": 3600,
                                }
                            ]
                        },
                    )
                    log = Path(os.environ.get("VAR_DIR", "/tmp")) / f"bench-web-{port}.log"
                    server = Web(port=port, env={**os.environ, **env}, log=log, cpu=server_cpu)
                    server.start()
                    try:
                        server.wait_readiness(200)
                        # Warm-up: every import, the S3 clients, the code paths of a whole upload.
                        warm = Lesson.objects.create(course=course, title=f"Warm-up ({name})")
                        widget_upload(browser, base_url, user.username, warm, small, server.pid)
                        lesson = Lesson.objects.create(course=course, title=f"Big upload ({name})")
                        results[name] = widget_upload(browser, base_url, user.username, lesson, path, server.pid)
                        if name == "direct":
                            raw_seconds, raw_cpu = browser_raw(browser, base_url, path, size, s3, bucket)
                    finally:
                        server.stop()
                        s3.delete_bucket_cors(Bucket=bucket)
                    row = ResumableUpload.objects.get(asset__lesson=lesson)
                    stored = s3.head_object(Bucket=bucket, Key=row.storage_key)["ContentLength"]
                    assert stored == size, f"{name}: stored {stored} bytes, expected {size}"
                    assert results[name]["transport"] == name, results[name]
                    s3.delete_object(Bucket=bucket, Key=row.storage_key)
            finally:
                browser.close()

    mb = size / 1e6
    print(f"baseline, boto3 multipart ({PART // MIB} MiB parts, {PARALLEL} at a time): "
          f"{base_seconds:.1f} s, {mb / base_seconds:.1f} MB/s; {cpu_text(base_cpu, 'boto3')}")  # fmt: skip
    print(f"browser ceiling, Chromium PUTs the parts (no MD5, no API): {raw_seconds:.1f} s, "
          f"{mb / raw_seconds:.1f} MB/s, ratio {base_seconds / raw_seconds:.2f}; "
          f"{cpu_text(raw_cpu, 'browser')}")  # fmt: skip
    for name, result in results.items():
        print(f"widget, {name:6}: {result['seconds']:.1f} s, {mb / result['seconds']:.1f} MB/s, "
              f"ratio {base_seconds / result['seconds']:.2f}, web-process CPU {result['cpu']:.2f} s; "
              f"{cpu_text(result['parties'], 'browser')}")  # fmt: skip
    ratio = base_seconds / results["direct"]["seconds"]
    print(f"target: direct widget at least 0.9 of boto3: {'met' if ratio >= 0.9 else 'NOT met'} ({ratio:.2f})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
