"""Benchmark: time from upload complete to a stream that plays, for 1080p H.264/AAC lectures.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/time_to_playable.py [--minutes 1,5,10] [--rounds 3]

Runs under the test harness (PostgreSQL, Redis, SeaweedFS S3 on loopback). Sources: the lecture-like
1080p30 H.264 High / AAC video of bench/lecture_source.py (slides and a talking head, keyframes every
4 s), generated once per length and cached under var/bench/. One web process (`python -m
config.serve`) serves the site (the playback API and the Django origin); a production Dramatiq
worker (``manage.py rundramatiq --processes 1 --threads 1 --queues quick ladder``, the default
settings: MEDIA_PROVISIONAL on; with ``dramatiq_worker_timeout=100`` as ``make run`` starts it) runs
the pipeline. Each round:

1. the source is put in storage (the upload is complete), and the clock starts with
   ``services.asset_attach_source``, the call both upload paths end with;
2. an enrolled learner POSTs ``/api/v1/lessons/<id>/playback/`` every 50 ms until it answers 200;
3. through the origin: the HLS master, the first video variant's playlist, its init segment and first
   media segment (byte ranges or whole objects, as the playlist says). The clock stops here: "time to
   playable"; then ffmpeg must decode every frame of init + segment, or the run fails.

The full ladder starts encoding the moment the provisional stream is published and shares the two
cores with the web process here (in production workers have machines of their own); ``--worker-nice
10`` runs the worker at a lower priority to see that difference. After a round the worker is killed
(its process group: the full-ladder encode stops), the queues are flushed and the lesson deleted, so
rounds do not overlap. For sources up to ``--full-ladder-minutes``
one more round waits for the full ladder as well ("time to full ladder": what time to playable is
without the provisional stream). Targets (issue 3, Mux's median time-to-publish): 2.0 s, 3.3 s and
9.0 s for 1, 5 and 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

if TYPE_CHECKING:
    import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {1: 2.0, 5: 3.3, 10: 9.0}
POLL_SECONDS = 0.05

# (url, (first byte, last byte) or None) -> bytes
Fetch = Callable[[str, "tuple[int, int] | None"], bytes]

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def _attributes(line: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _ATTR.findall(line.split(":", 1)[1])}


def _byte_range(spec: str, previous_end: int) -> tuple[int, int]:
    """An HLS BYTERANGE ``length[@offset]`` as inclusive (first, last); no offset: after the previous."""
    length, _, offset = spec.partition("@")
    start = int(offset) if offset else previous_end
    return start, start + int(length) - 1


def first_segment(fetch: Fetch, master_url: str) -> bytes:
    """Init segment + first media segment of the master playlist's first video variant, fetched
    the way a player does (relative URIs, byte ranges when the playlist has them)."""
    master = fetch(master_url, None).decode()
    lines = [line.strip() for line in master.splitlines() if line.strip()]
    variant = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:"))
    playlist_url = urljoin(master_url, variant)
    playlist = [line.strip() for line in fetch(playlist_url, None).decode().splitlines() if line.strip()]
    map_attrs = _attributes(next(line for line in playlist if line.startswith("#EXT-X-MAP:")))
    init_range = _byte_range(map_attrs["BYTERANGE"], 0) if "BYTERANGE" in map_attrs else None
    init = fetch(urljoin(playlist_url, map_attrs["URI"]), init_range)
    start = playlist.index(next(line for line in playlist if line.startswith("#EXTINF:")))
    segment_range = None
    for line in playlist[start + 1 :]:
        if line.startswith("#EXT-X-BYTERANGE:"):
            segment_range = _byte_range(line.split(":", 1)[1], init_range[1] + 1 if init_range else 0)
        elif not line.startswith("#"):
            return init + fetch(urljoin(playlist_url, line), segment_range)
    raise ValueError("the media playlist lists no segment")


def decoded_frames(ffmpeg: str, media: bytes, workdir: Path) -> int:
    """Video frames ffmpeg decodes from ``media`` without an error (0 when it cannot)."""
    path = workdir / f"segment-{uuid.uuid4().hex}.mp4"
    path.write_bytes(media)
    try:
        completed = subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-xerror", "-progress", "pipe:1", "-i", str(path),
             "-map", "0:v:0", "-f", "null", "-"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        path.unlink(missing_ok=True)
    frames = re.findall(r"^frame=(\d+)$", completed.stdout, re.MULTILINE)
    return int(frames[-1]) if completed.returncode == 0 and frames else 0


@dataclass
class Timing:
    api: float  # the playback API answered 200
    playable: float  # the first segment was fetched through the origin and decoded
    frames: int
    provisional: bool
    full: float | None = None  # the full ladder was published (when waited for)
    fetches: list[float] = field(default_factory=list)  # master, media playlist, init, first segment


def http_fetch(session: requests.Session, base_url: str, took: list[float] | None = None) -> Fetch:
    def fetch(url: str, byte_range: tuple[int, int] | None) -> bytes:
        headers = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        started = time.monotonic()
        response = session.get(urljoin(base_url, url), headers=headers, timeout=30)
        response.raise_for_status()
        if took is not None:
            took.append(time.monotonic() - started)
        return response.content

    return fetch


def time_to_playable(
    *,
    asset_id: int,
    lesson_public_id: str,
    source: Path,
    base_url: str,
    api_token: str,
    ffmpeg: str,
    workdir: Path,
    timeout: float = 600,
    wait_full: bool = False,
) -> Timing:
    """Upload complete -> a stream that plays, through the running worker and web server."""
    import requests

    from media_pipeline import layout, services, storage
    from media_pipeline.models import AssetStatus, MediaAsset

    asset = MediaAsset.objects.get(pk=asset_id)
    key = layout.source_key(asset_public_id=str(asset.public_id), upload_id=uuid.uuid4().hex)
    storage.save_file(key=key, source=source)  # the upload is complete
    http = requests.Session()
    http.headers["Authorization"] = f"Token {api_token}"
    api = urljoin(base_url, f"/api/v1/lessons/{lesson_public_id}/playback/")
    started = time.monotonic()
    services.asset_attach_source(asset=asset, key=key, size=source.stat().st_size, source_name=source.name)
    while True:
        response = http.post(api, timeout=30)
        if response.status_code == 200:
            break
        if response.status_code != 409 or time.monotonic() - started > timeout:
            raise RuntimeError(f"playback API: {response.status_code} {response.text[:200]}")
        time.sleep(POLL_SECONDS)
    api_seconds = time.monotonic() - started
    body = response.json()
    took: list[float] = []
    media = first_segment(http_fetch(http, base_url, took), body["hls"])
    playable = time.monotonic() - started  # what a player needs to show the first picture is here
    frames = decoded_frames(ffmpeg, media, workdir)
    timing = Timing(api=api_seconds, playable=playable, frames=frames, provisional=body["provisional"], fetches=took)
    if wait_full:
        while True:
            state = MediaAsset.objects.get(pk=asset_id)
            if state.status == AssetStatus.READY and not state.published_provisional:
                timing.full = time.monotonic() - started
                break
            if state.status == AssetStatus.FAILED or time.monotonic() - started > timeout:
                raise RuntimeError(f"full ladder: {state.status} {state.failure_reason}")
            time.sleep(0.2)
    return timing


# --- The run ------------------------------------------------------------------------------------------


def _lesson(api_token_user: str) -> tuple[int, str, str]:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from courses.models import Course, Enrollment, Lesson
    from media_pipeline import services

    suffix = uuid.uuid4().hex[:8]
    course = Course.objects.create(slug=f"ttp-{suffix}", title="Time to playable", published=True)
    lesson = Lesson.objects.create(course=course, title="Lecture")
    lesson.asset = services.asset_create(key_prefix=f"lessons/{lesson.public_id}")
    lesson.save()
    learner, _ = User.objects.get_or_create(username=api_token_user)
    Enrollment.objects.create(user=learner, course=course)
    token, _ = Token.objects.get_or_create(user=learner)
    return lesson.asset.pk, str(lesson.public_id), token.key


def _start_worker(env: dict[str, str], log: Path, *, nice: int) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1",
               "--queues", "quick", "ladder"]  # fmt: skip
    worker = subprocess.Popen(
        ["nice", "-n", str(nice), *command] if nice else command,
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    time.sleep(4)  # imports the actors and connects to the broker (bench/worker_memory.py does the same)
    return worker


def _stop_worker(worker: subprocess.Popen) -> None:
    try:
        os.killpg(worker.pid, signal.SIGKILL)  # ffmpeg of an unfinished full ladder too
    except ProcessLookupError:
        pass
    worker.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="1,5,10")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full-ladder-minutes", type=float, default=1, help="also time the full ladder up to this")
    parser.add_argument(
        "--worker-nice", type=int, default=0, help="niceness of the worker (stands in for a machine of its own)"
    )
    args = parser.parse_args()
    if "S3_ENDPOINT_URL" not in os.environ:
        print("run under the harness: .venv/bin/python tests/harness.py -- .venv/bin/python bench/time_to_playable.py")
        return 2
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "THROTTLE_PLAYBACK_SESSION": "100000000/min", "MEDIA_PROVISIONAL": "1", "LOG_LEVEL": "WARNING",
           "dramatiq_worker_timeout": os.environ.get("dramatiq_worker_timeout", "100")}  # fmt: skip
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    import dramatiq
    from django.conf import settings

    from bench.lecture_source import lecture_source
    from bench.qoe_ingest import free_port, wait_port
    from media_pipeline import services

    minutes = [int(m) for m in args.minutes.split(",")]
    sources = {m: lecture_source(ffmpeg=settings.FFMPEG_BIN, seconds=m * 60) for m in minutes}
    workdir = Path(tempfile.mkdtemp(prefix="bench-ttp-"))
    log = workdir / "processes.log"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    print(f"worker: nice {args.worker_nice}, dramatiq_worker_timeout={env['dramatiq_worker_timeout']} ms", flush=True)
    results: dict[int, list[Timing]] = {m: [] for m in minutes}
    try:
        wait_port(port)
        for m in minutes:
            source = sources[m]
            print(f"{m} min: {source.name}, {source.stat().st_size / 1e6:.1f} MB", flush=True)
            full_round = m <= args.full_ladder_minutes
            for round_number in range(args.rounds + (1 if full_round else 0)):
                wait_full = full_round and round_number == args.rounds
                dramatiq.get_broker().flush_all()
                asset_id, lesson_id, token = _lesson("bench-ttp-learner")
                worker = _start_worker(env, log, nice=args.worker_nice)
                try:
                    timing = time_to_playable(
                        asset_id=asset_id, lesson_public_id=lesson_id, source=source, base_url=base,
                        api_token=token, ffmpeg=settings.FFMPEG_BIN, workdir=workdir, wait_full=wait_full,
                        timeout=3600 if wait_full else 600,
                    )  # fmt: skip
                finally:
                    _stop_worker(worker)
                    dramatiq.get_broker().flush_all()
                    services.asset_delete(asset_id=asset_id)
                if timing.frames <= 0:
                    raise SystemExit(f"{m} min: the first segment did not decode")
                results[m].append(timing)
                extra = f", full ladder {timing.full:.1f} s" if timing.full is not None else ""
                print(f"  round {round_number + 1}: API 200 after {timing.api:.2f} s, first segment decoded "
                      f"({timing.frames} frames) after {timing.playable:.2f} s (requests "
                      f"{' + '.join(f'{t * 1000:.0f}' for t in timing.fetches)} ms), provisional={timing.provisional}"
                      f"{extra}", flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    print()
    ok = True
    for m in minutes:
        timings = results[m][: args.rounds]
        median = statistics.median(t.playable for t in timings)
        target = TARGETS.get(m)
        met = target is None or median <= target
        ok &= met
        verdict = "no target" if target is None else f"target {target:.1f} s: {'met' if met else 'MISSED'}"
        full = [t.full for t in results[m] if t.full is not None]
        full_text = f"; full ladder {full[0]:.1f} s ({full[0] / median:.0f}x)" if full else ""
        print(f"{m:3d} min: time to playable {median:.2f} s (median of {len(timings)}; "
              f"min {min(t.playable for t in timings):.2f}, max {max(t.playable for t in timings):.2f}), "
              f"{verdict}{full_text}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
