"""What the encoding benchmarks share: our encode + package path, its variants, and CPU-time measurement.

Our path is taken only from the public functions ``plan_ladder`` (ladder.py), ``encode_command``
(ffmpeg.py) and ``package_command`` (packager.py), the same calls the transcode step makes. When
that step changes (chunks, a provisional stream), repoint ``encode_and_package`` here and every
benchmark follows.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from media_pipeline.ffmpeg import encode_command, run_with_progress  # noqa: E402
from media_pipeline.ladder import Rung, plan_ladder  # noqa: E402
from media_pipeline.packager import ladder_inputs, package_command  # noqa: E402
from media_pipeline.probe import ProbeResult, probe_file  # noqa: E402

ENCODE_TIMEOUT = 3 * 3600


@dataclass(frozen=True)
class Tools:
    ffmpeg: str
    ffprobe: str
    packager: str
    preset: str
    threads: int


def tools() -> Tools:
    """The binaries and encoder settings the worker would use (config/settings.py, env-driven)."""
    from django.conf import settings

    return Tools(
        ffmpeg=settings.FFMPEG_BIN,
        ffprobe=settings.FFPROBE_BIN,
        packager=settings.PACKAGER_BIN,
        preset=settings.ENCODE_PRESET,
        threads=settings.ENCODE_THREADS,
    )


@dataclass(frozen=True)
class Cost:
    wall: float
    cpu: float  # user + system seconds of every child process waited for


def measured(work: Callable[[], None]) -> Cost:
    """Wall time and the CPU time (user + sys) of the child processes ``work`` ran and waited for.

    RUSAGE_CHILDREN counts only children that have been waited for, which subprocess always does,
    and ffmpeg's own threads are included. The machine is shared, so CPU time is the fairer cost.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    work()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Cost(wall=wall, cpu=cpu)


def probe_and_plan(t: Tools, source: Path) -> tuple[ProbeResult, list[Rung]]:
    probe = probe_file(ffprobe=t.ffprobe, path=source)
    return probe, plan_ladder(width=probe.width, height=probe.height, fps=probe.fps)


def our_encode_command(t: Tools, source: Path, out: Path, rungs: list[Rung], probe: ProbeResult) -> list[str]:
    return encode_command(
        ffmpeg=t.ffmpeg,
        source=source,
        out_dir=out,
        rungs=rungs,
        source_fps=probe.fps,
        has_audio=probe.has_audio,
        preset=t.preset,
        threads=t.threads,
    )


def run_encode(command: list[str], probe: ProbeResult) -> None:
    run_with_progress(command, duration=probe.duration, timeout=ENCODE_TIMEOUT)


def package(t: Tools, encoded: Path, packaged: Path, rungs: list[Rung], probe: ProbeResult) -> None:
    """Shaka Packager run inside the output folder, as the transcode step runs it (relative URIs)."""
    packaged.mkdir(parents=True, exist_ok=True)
    inputs = ladder_inputs(work_dir=encoded, rungs=rungs, has_audio=probe.has_audio)
    command = package_command(packager=t.packager, inputs=inputs)
    subprocess.run(command, cwd=packaged, check=True, capture_output=True, timeout=ENCODE_TIMEOUT)


def encode_and_package(t: Tools, source: Path, work: Path, rungs: list[Rung], probe: ProbeResult) -> None:
    """Ours: one ffmpeg decode split into every rung (plus the audio rendition), then packaging."""
    encoded = work / "encoded"
    encoded.mkdir(parents=True, exist_ok=True)
    run_encode(our_encode_command(t, source, encoded, rungs, probe), probe)
    package(t, encoded, work / "out", rungs, probe)


def per_rung_commands(t: Tools, source: Path, out: Path, rungs: list[Rung], probe: ProbeResult) -> list[list[str]]:
    """The peers' way: one ffmpeg process per rung, each reading and decoding the source itself.

    Each is our own command restricted to one rung, so preset, CRF, maxrate, GOP and filters are the
    same; the audio rendition rides along with the first rung (peers encode it with a rendition).
    """
    return [
        encode_command(
            ffmpeg=t.ffmpeg,
            source=source,
            out_dir=out,
            rungs=[rung],
            source_fps=probe.fps,
            has_audio=probe.has_audio and index == 0,
            preset=t.preset,
            threads=t.threads,
        )
        for index, rung in enumerate(rungs)
    ]


def null_output_command(command: list[str], out: Path) -> list[str]:
    """A bare ffmpeg command encoding the same outputs to ``-f null``: no muxing, no faststart rewrite,
    no progress reporting. Every argument naming a file under ``out`` becomes a null output."""
    bare: list[str] = []
    skip = 0
    for index, arg in enumerate(command):
        if skip:
            skip -= 1
            continue
        if arg == "-progress" or (arg == "-movflags" and command[index + 1] == "+faststart"):
            skip = 1
            continue
        if arg == "-nostats":
            continue
        if arg.startswith(str(out) + os.sep):
            bare += ["-f", "null", "-"]
            continue
        bare.append(arg)
    return bare


def fixed_bitrate_command(command: list[str], rungs: list[Rung]) -> list[str]:
    """The same ladder at a fixed bitrate: each rung's ``-crf N`` becomes ``-b:v <maxrate>``.

    That is what peers do (a target bitrate per rung with maxrate and bufsize around it); everything
    else (preset, maxrate, bufsize, GOP, scaling) stays ours.
    """
    fixed: list[str] = []
    rung_index = 0
    skip = False
    for arg in command:
        if skip:
            skip = False
            continue
        if arg == "-crf":
            fixed += ["-b:v", f"{rungs[rung_index].maxrate_kbps}k"]
            rung_index += 1
            skip = True
            continue
        fixed.append(arg)
    if rung_index != len(rungs):
        raise ValueError(f"expected one -crf per rung, found {rung_index} for {len(rungs)} rungs")
    return fixed
