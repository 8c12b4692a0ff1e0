"""The capacity model of docs/scaling.md: what 10 k, 100 k and 1 M concurrent viewers and 1,000 upload
hours a day cost, each figure derived from a measured benchmark in bench/ (named next to it).

    .venv/bin/python bench/capacity.py            # prints the tables docs/scaling.md holds

Nothing here is measured: every input is a figure some benchmark printed on this machine kind
(bench/README.md has the runs) or a constant of the code (named with its module), plus the few
assumptions about viewers that no benchmark can give (marked as such). Change an input when a
benchmark moves, run this, and paste the output into docs/scaling.md; tests/bench/test_capacity.py
fails until the two agree.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media_pipeline.ladder import AUDIO_BITRATE_KBPS, GOP_SECONDS, LADDER  # noqa: E402


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    source: str


# What a viewer does (the code's own intervals, and assumptions about learners).
PROGRESS_EVERY_S = Figure(15, "s", "static/js/player.js: a progress report every 15 s while playing")
BEACON_EVERY_S = Figure(10, "s", "static/js/player.js: a beacon batch every 10 s while playing")
VIEW_MINUTES = Figure(10, "min", "assumption: a learner watches a lesson for 10 minutes per playback session")
SEGMENT_REQUESTS_PER_S = Figure(
    2 / GOP_SECONDS,
    "req/s",
    f"media_pipeline/ladder.py GOP_SECONDS={GOP_SECONDS}: one video and one audio segment each",
)
# What one viewer's stream weighs.
LECTURE_720P_KBPS = Figure(
    273 + AUDIO_BITRATE_KBPS, "kbit/s", "bench/rate_control.py: the 720p rung on the lecture source (273) + audio"
)
TOP_RUNG_CAP_KBPS = Figure(
    LADDER[0][1] + AUDIO_BITRATE_KBPS,
    "kbit/s",
    "media_pipeline/ladder.py: the 1080p rung's maxrate + audio (worst case)",
)
EDGE_HIT_RATIO = Figure(
    0.99, "", "bench/edge_delivery.py: 100 % measured on a warm cache; the model keeps the 99 % target as a floor"
)
# What one core of each process answers (one web or beacon process is one core: Python's GIL).
SESSIONS_PER_CORE = Figure(160, "req/s", "bench/playback_session.py: playback sessions, one web process, quiet machine")
PROGRESS_PER_CORE = Figure(
    110, "req/s", "bench/progress_report.py: 0.51 of the same baseline (216 req/s quiet) as playback_session.py"
)
BATCHES_PER_CORE = Figure(808, "req/s", "bench/qoe_ingest.py: 10-event beacon batches, one web process, quiet machine")
# What the database and Redis see per request.
QUERIES_PER_SESSION = Figure(2, "", "bench/playback_session.py (asserted by tests/playback/test_api.py)")
QUERIES_PER_PROGRESS = Figure(
    8, "", "bench/progress_report.py: 6 queries (token, lesson, row read, lock, write, LTI grant) + BEGIN, COMMIT"
)
REDIS_CALLS_PER_SESSION = Figure(1, "", "playback/throttles.py: one MULTI/EXEC")
REDIS_CALLS_PER_BATCH = Figure(1, "", "analytics/ingest.py: admission and write in one script (docs/adr/0020)")
# Encoding.
ENCODE_CPU_PER_SOURCE_S = Figure(
    76.6 / 90, "CPU s per s", "bench/ladder_cost.py: 76.6 CPU s for 90 s of 1080p30 lecture, four rungs + audio"
)
LADDER_MB_PER_HOUR = Figure(11.1 / 90 * 3600 + AUDIO_BITRATE_KBPS * 3600 / 8 / 1000, "MB", "bench/rate_control.py")
ORIGINAL_MB_PER_HOUR = Figure(9.2 * 60, "MB", "bench/time_to_playable.py: the 1-minute 1080p lecture is 9.2 MB")
UPLOAD_HOURS_PER_DAY = 1000
UPLOAD_PEAK_FACTOR = Figure(3, "", "assumption: uploads arrive in 8 working hours, not spread over 24")
TARGET_CPU = Figure(0.7, "", "deploy/kubernetes/base/web.yaml: the HorizontalPodAutoscaler's CPU target")

INPUTS = [
    ("progress report interval", PROGRESS_EVERY_S),
    ("beacon batch interval", BEACON_EVERY_S),
    ("length of a viewing", VIEW_MINUTES),
    ("segment requests per viewer", SEGMENT_REQUESTS_PER_S),
    ("delivered bitrate, lecture at 720p", LECTURE_720P_KBPS),
    ("delivered bitrate, worst case", TOP_RUNG_CAP_KBPS),
    ("edge hit ratio", EDGE_HIT_RATIO),
    ("playback sessions per web core", SESSIONS_PER_CORE),
    ("progress reports per web core", PROGRESS_PER_CORE),
    ("beacon batches per beacon core", BATCHES_PER_CORE),
    ("database queries per session", QUERIES_PER_SESSION),
    ("database queries per progress report", QUERIES_PER_PROGRESS),
    ("Redis calls per session", REDIS_CALLS_PER_SESSION),
    ("Redis calls per beacon batch", REDIS_CALLS_PER_BATCH),
    ("encode CPU per second of source", ENCODE_CPU_PER_SOURCE_S),
    ("ladder bytes per hour of video", LADDER_MB_PER_HOUR),
    ("original bytes per hour of video", ORIGINAL_MB_PER_HOUR),
    ("upload peak factor", UPLOAD_PEAK_FACTOR),
    ("pod CPU target", TARGET_CPU),
]
VIEWERS = (10_000, 100_000, 1_000_000)


def _n(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def viewer_rows(viewers: int) -> dict[str, str]:
    sessions = viewers / (VIEW_MINUTES.value * 60)
    reports = viewers / PROGRESS_EVERY_S.value
    batches = viewers / BEACON_EVERY_S.value
    edge = viewers * SEGMENT_REQUESTS_PER_S.value
    web_cores = sessions / SESSIONS_PER_CORE.value + reports / PROGRESS_PER_CORE.value
    beacon_cores = batches / BATCHES_PER_CORE.value
    return {
        "CDN egress, lecture (worst case)": f"{_n(viewers * LECTURE_720P_KBPS.value / 1e6)} Gbit/s "
        f"({_n(viewers * TOP_RUNG_CAP_KBPS.value / 1e6)} Gbit/s)",
        "edge requests": f"{_n(edge)}/s",
        "origin-shield requests": f"{_n(edge * (1 - EDGE_HIT_RATIO.value))}/s",
        "playback sessions": f"{_n(sessions)}/s",
        "progress reports": f"{_n(reports)}/s",
        "web pods (1 core each)": f"{math.ceil(web_cores / TARGET_CPU.value):,}",
        "beacon batches": f"{_n(batches)}/s",
        "beacon pods (1 core each)": f"{math.ceil(beacon_cores / TARGET_CPU.value):,}",
        "PostgreSQL queries": f"{_n(sessions * QUERIES_PER_SESSION.value + reports * QUERIES_PER_PROGRESS.value)}/s",
        "PostgreSQL row writes (progress)": f"{_n(reports)}/s",
        "Redis calls": f"{_n(sessions * REDIS_CALLS_PER_SESSION.value + batches * REDIS_CALLS_PER_BATCH.value)}/s",
    }


def upload_rows(hours_per_day: int) -> dict[str, str]:
    cpu_seconds = hours_per_day * 3600 * ENCODE_CPU_PER_SOURCE_S.value
    average_cores = cpu_seconds / 86_400
    ladder_tb = hours_per_day * LADDER_MB_PER_HOUR.value / 1e6
    originals_tb = hours_per_day * ORIGINAL_MB_PER_HOUR.value / 1e6
    return {
        "encode CPU": f"{_n(cpu_seconds / 3600)} core-hours a day",
        "encoder cores, averaged over the day": _n(average_cores),
        "encoder cores at the upload peak": _n(average_cores * UPLOAD_PEAK_FACTOR.value),
        "new ladder storage per region": f"{_n(ladder_tb)} TB a day",
        "new originals (primary region)": f"{_n(originals_tb)} TB a day",
    }


def render() -> str:
    lines = ["| input | value | from |", "| --- | --- | --- |"]
    for label, figure in INPUTS:
        lines.append(f"| {label} | {_n(figure.value)} {figure.unit} | {figure.source} |".replace("  |", " |"))
    lines += ["", "| concurrent viewers | " + " | ".join(f"{v:,}" for v in VIEWERS) + " |"]
    lines.append("| --- |" + " --- |" * len(VIEWERS))
    columns = [viewer_rows(v) for v in VIEWERS]
    for key in columns[0]:
        lines.append(f"| {key} | " + " | ".join(column[key] for column in columns) + " |")
    lines += ["", f"| {UPLOAD_HOURS_PER_DAY:,} upload hours a day | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in upload_rows(UPLOAD_HOURS_PER_DAY).items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
