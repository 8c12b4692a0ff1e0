"""Benchmark: our ladder's quality for its bytes and CPU, against MediaCMS's published command set.

    .venv/bin/python bench/ladder_quality.py [--seconds 20] [--offsets=-6,-3,0,3] \\
        [--presets veryfast,faster,fast,medium] [--sources lecture,camera]

Two 1080p30 sources, generated once and cached under var/bench/: the lecture-like one of
bench/lecture_source.py (slides changing every 8 s here, a small talking head with camera noise)
and the camera-heavy one of bench/camera_source.py (a handheld camera panning and zooming over a
whiteboard, a presenter walking in front of it, sensor noise). On each, for the rungs ``plan_ladder``
gives (1080p, 720p, 480p, 360p), in the same run:

- ours: ``encode_command`` (media_pipeline/ffmpeg.py) with our preset (ENCODE_PRESET), each rung's
  CRF from ladder.py plus an offset, and our maxrate/bufsize/GOP;
- theirs: MediaCMS's command for the same heights (bench/mediacms.py: one ffmpeg per rung, libx264
  CRF 23 plus the same offset, maxrate and bufsize 1.5 x their target rate, preset medium, faster
  from 720p up, as their files/helpers.py has it).

Four CRF values per side and rung give a rate-distortion curve: bytes of the rung file, and SSIM
and PSNR against the source at 1080p (each rung scaled back up to 1920x1080 with the same bicubic
scaler for both sides, then ffmpeg's ``ssim`` and ``psnr`` filters, mean over every frame). Then per
rung the BD-rate by SSIM (bench/bjontegaard.py; SSIM in dB, -10 log10(1 - SSIM), so the fit works
on a scale that does not saturate at 1): negative means we need fewer bytes for the same SSIM.

CPU is user + sys of the child processes (``getrusage(RUSAGE_CHILDREN)``), in seconds per minute of
source, video only on both sides. MediaCMS runs one process per rung, each decoding the source;
ours runs one process that decodes once and splits into every rung, whose CPU cannot be divided
between rungs. So for the per-rung figures each of our rungs is encoded alone with our arguments
(``encode_command`` with that one rung: one decode per rung, as theirs), which is what the RD curves
need anyway and charges us the decode MediaCMS pays; the production shape (all rungs in one process,
at our CRFs) is measured once more and reported as a total beside the sum of our per-rung figures.
A rung's CPU is the median over its four CRF points (the encoder's cost barely moves with CRF, and a
median of four is steadier than one sample on a shared machine); the preset and whole-ladder figures
use the encode at the nominal CRF.

A rung of ours is "dominated" when it needs more bytes for the same SSIM (BD-rate > 0; where the
curves share no SSIM range, some MediaCMS point has at most our bytes and at least our SSIM) and
more CPU (ratio > 1). Target (issue 16): no rung dominated. Also reported: x264's preset frontier (our
arguments at our CRFs with ``--presets``: bytes, SSIM, CPU, and the bytes MediaCMS's curve needs for
the same SSIM), the CRF at which each of our rungs matches MediaCMS's SSIM (what a per-lesson
complexity probe would have to find), and whether another rung of ours at some CRF gives more SSIM
for a rung's bytes (rung selection for static content), both read from the curves already measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import mediacms  # noqa: E402
from bench.bjontegaard import Point, bd_rate, rate_at  # noqa: E402
from bench.camera_source import camera_source  # noqa: E402
from bench.encoding import Tools, measured, our_encode_command, probe_and_plan, run_encode, tools  # noqa: E402
from bench.lecture_source import CACHE_DIR, lecture_source  # noqa: E402
from media_pipeline.ffmpeg import rung_file  # noqa: E402
from media_pipeline.ladder import Rung  # noqa: E402
from media_pipeline.probe import ProbeResult  # noqa: E402

LECTURE_SLIDE_SECONDS = 8  # two slides or more in a short run (the other benches: 20 s over 90 s)
_SSIM = re.compile(r"\[ssim@q(?P<i>\d+) @ [^\]]+\] SSIM .*All:(?P<v>[\d.]+)")
_PSNR = re.compile(r"\[psnr@q(?P<i>\d+) @ [^\]]+\] PSNR .*average:(?P<v>[\d.]+|inf)")


@dataclasses.dataclass(frozen=True)
class Measured:
    crf: int
    size: int  # bytes of the rung file
    ssim: float
    psnr: float
    cpu: float  # seconds, this rung's encode alone

    def kbps(self, duration: float) -> float:
        return self.size * 8 / 1000 / duration

    @property
    def ssim_db(self) -> float:
        return -10 * math.log10(max(1e-10, 1 - self.ssim))


def curve(points: list[Measured], *, by: str = "ssim") -> list[Point]:
    return [(p.size, p.ssim_db if by == "ssim" else p.psnr) for p in points]


def quality(t: Tools, source: Path, files: list[Path], *, width: int, height: int) -> list[tuple[float, float]]:
    """(SSIM, PSNR) of each encoded file against the source at the source's size, in one ffmpeg run:
    the source decoded once, each file scaled up with bicubic (the same for every encoder), frames
    aligned from their first (setpts), mean over every frame."""
    count = len(files)
    inputs = ["-i", str(source)]
    refs = "".join(f"[ra{i}][rb{i}]" for i in range(count))
    chains = [f"[0:v]format=yuv420p,setpts=PTS-STARTPTS,split={2 * count}{refs}"]
    for index, path in enumerate(files):
        inputs += ["-i", str(path)]
        chains += [
            f"[{index + 1}:v]scale={width}:{height}:flags=bicubic,setsar=1,format=yuv420p,"
            f"setpts=PTS-STARTPTS[d{index}]",
            f"[d{index}][ra{index}]ssim@q{index}=shortest=1[s{index}]",
            f"[s{index}][rb{index}]psnr@q{index}=shortest=1[o{index}]",
        ]
    command = [t.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "info", "-nostats", *inputs,
               "-filter_complex", ";".join(chains)]  # fmt: skip
    for index in range(count):
        command += ["-map", f"[o{index}]", "-f", "null", "-"]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3600)
    ssim = {int(m["i"]): float(m["v"]) for m in _SSIM.finditer(completed.stderr)}
    psnr = {int(m["i"]): float(m["v"]) for m in _PSNR.finditer(completed.stderr)}
    if len(ssim) != count or len(psnr) != count:
        raise SystemExit(f"expected {count} SSIM and PSNR lines, found {ssim} {psnr}:\n{completed.stderr[-2000:]}")
    return [(ssim[i], psnr[i]) for i in range(count)]


def encode_ours(t: Tools, source: Path, out: Path, rung: Rung, probe: ProbeResult) -> tuple[Path, float]:
    """One rung alone, with exactly the arguments encode_command gives it (the preset from ``t``)."""
    command = our_encode_command(t, source, out, [rung], probe)
    cost = measured(lambda: run_encode(command, probe))
    return out / rung_file(rung), cost.cpu


def encode_theirs(t: Tools, source: Path, out: Path, height: int, crf: int, probe: ProbeResult) -> tuple[Path, float]:
    """MediaCMS's command for that height, run the same way as ours (media_pipeline's tool runner)."""
    target = out / f"mediacms_{height}p_crf{crf}.mp4"
    command = mediacms.rung_command(ffmpeg=t.ffmpeg, source=source, output=target, height=height,
                                    fps=round(probe.fps), crf=crf)  # fmt: skip
    cost = measured(lambda: run_encode(command, probe))
    return target, cost.cpu


@dataclasses.dataclass
class SourceResult:
    name: str
    probe: ProbeResult
    rungs: list[Rung]
    ours: dict[str, list[Measured]]  # rung name -> the RD points
    theirs: dict[str, list[Measured]]
    one_process_cpu: float  # all of our rungs at our CRFs in one process, as production runs them
    presets: dict[str, dict[str, Measured]]  # preset -> rung name -> our nominal point with it


def run_source(t: Tools, name: str, source: Path, *, offsets: list[int], presets: list[str]) -> SourceResult:
    probe, rungs = probe_and_plan(t, source)
    probe = dataclasses.replace(probe, has_audio=False)  # video only on both sides
    size = {"width": probe.width, "height": probe.height}
    print(f"\n== {name}: {source.name}, {probe.width}x{probe.height} {probe.fps:g} fps, {probe.duration:.0f} s; "
          f"ours: preset {t.preset}, " + ", ".join(f"{r.name} crf {r.crf} max {r.maxrate_kbps}k" for r in rungs),
          flush=True)  # fmt: skip
    ours: dict[str, list[Measured]] = {r.name: [] for r in rungs}
    theirs: dict[str, list[Measured]] = {r.name: [] for r in rungs}
    with tempfile.TemporaryDirectory(prefix="ladder-quality-", dir=CACHE_DIR) as tmp:
        work = Path(tmp)
        for round_number, offset in enumerate(offsets):
            sides = ["ours", "theirs"] if round_number % 2 == 0 else ["theirs", "ours"]
            for side in sides:
                encoded: list[tuple[Rung, int, Path, float]] = []
                for rung in rungs:
                    if side == "ours":
                        crf = rung.crf + offset
                        path, cpu = encode_ours(t, source, work, dataclasses.replace(rung, crf=crf), probe)
                    else:
                        crf = mediacms.CRF + offset
                        path, cpu = encode_theirs(t, source, work, rung.height, crf, probe)
                    encoded.append((rung, crf, path, cpu))
                scores = quality(t, source, [path for _, _, path, _ in encoded], **size)
                target = ours if side == "ours" else theirs
                for (rung, crf, path, cpu), (ssim, psnr) in zip(encoded, scores, strict=True):
                    point = Measured(crf=crf, size=path.stat().st_size, ssim=ssim, psnr=psnr, cpu=cpu)
                    target[rung.name].append(point)
                    path.unlink()
                    print(f"  {side:6s} {rung.name:5s} crf {crf:2d}: {point.kbps(probe.duration):7.0f} kbit/s  "
                          f"SSIM {ssim:.5f} ({point.ssim_db:5.2f} dB)  PSNR {psnr:5.2f} dB  "
                          f"cpu {cpu:6.1f} s", flush=True)  # fmt: skip
        one_process = measured(lambda: run_encode(our_encode_command(t, source, work, rungs, probe), probe)).cpu
        print(f"  ours, all rungs in one process (production): cpu {one_process:.1f} s", flush=True)
        by_preset: dict[str, dict[str, Measured]] = {}
        for preset in presets:
            if preset == t.preset:
                by_preset[preset] = {r.name: _at_crf(ours[r.name], r.crf) for r in rungs}
                continue
            with_preset = dataclasses.replace(t, preset=preset)
            points: dict[str, Measured] = {}
            for rung in rungs:
                path, cpu = encode_ours(with_preset, source, work, rung, probe)
                (ssim, psnr), = quality(t, source, [path], **size)  # fmt: skip
                points[rung.name] = Measured(crf=rung.crf, size=path.stat().st_size, ssim=ssim, psnr=psnr, cpu=cpu)
                path.unlink()
                print(f"  ours with preset {preset:8s} {rung.name:5s}: "
                      f"{points[rung.name].kbps(probe.duration):7.0f} kbit/s  "
                      f"SSIM {points[rung.name].ssim_db:5.2f} dB  cpu {cpu:6.1f} s", flush=True)  # fmt: skip
            by_preset[preset] = points
    return SourceResult(name, probe, rungs, ours, theirs, one_process, by_preset)


def _at_crf(points: list[Measured], crf: int) -> Measured:
    return next(p for p in points if p.crf == crf)


def per_minute(cpu: float, probe: ProbeResult) -> float:
    return cpu * 60 / probe.duration


def report(result: SourceResult) -> list[str]:
    """Print the tables for one source; return the names of our dominated rungs."""
    dominated = _rung_table(result)
    _probe_table(result)
    _preset_table(result)
    _selection_table(result)
    return dominated


def _rung_table(result: SourceResult) -> list[str]:
    """BD-rate and CPU per rung. Where the two curves share no SSIM range there is no BD-rate, and
    "more bytes" is read from the points: some MediaCMS point has at most our bytes at our CRF and at
    least our SSIM there."""
    probe, dominated = result.probe, []
    print(f"\n== {result.name}: per rung (SSIM/PSNR at 1080p; CPU in s per source minute, median of the CRF points)")
    print("rung  | ours at our CRF: kbit/s SSIM dB | MediaCMS CRF 23: kbit/s SSIM dB | BD-rate SSIM | BD-rate PSNR "
          "| CPU ours | CPU theirs | ratio | dominated")  # fmt: skip
    for rung in result.rungs:
        ours, theirs = result.ours[rung.name], result.theirs[rung.name]
        nominal, their_nominal = _at_crf(ours, rung.crf), _at_crf(theirs, mediacms.CRF)
        bd_ssim = bd_rate(curve(theirs), curve(ours))
        bd_psnr = bd_rate(curve(theirs, by="psnr"), curve(ours, by="psnr"))
        if bd_ssim is not None:
            more_bytes, how = bd_ssim > 0, ""
        else:
            more_bytes = any(p.size <= nominal.size and p.ssim_db >= nominal.ssim_db for p in theirs)
            how = " (by points)"
        ratio = statistics.median(p.cpu for p in ours) / statistics.median(p.cpu for p in theirs)
        if more_bytes and ratio > 1:
            dominated.append(rung.name)
            verdict = "DOMINATED" + how
        else:
            verdict = ("no: more bytes, less CPU" if more_bytes else "no: fewer bytes") + how
        print(f"{rung.name:5s} | crf {rung.crf}: {nominal.kbps(probe.duration):7.0f} {nominal.ssim_db:6.2f}"
              f"          | {their_nominal.kbps(probe.duration):7.0f} {their_nominal.ssim_db:6.2f}"
              f"                 | {_percent(bd_ssim):>12s} | {_percent(bd_psnr):>12s} "
              f"| {per_minute(statistics.median(p.cpu for p in ours), probe):8.1f} "
              f"| {per_minute(statistics.median(p.cpu for p in theirs), probe):10.1f} | {ratio:5.2f} "
              f"| {verdict}")  # fmt: skip
    ours_alone = sum(per_minute(_at_crf(result.ours[r.name], r.crf).cpu, probe) for r in result.rungs)
    theirs_total = _their_ladder_cpu(result)
    one = per_minute(result.one_process_cpu, probe)
    print(f"whole ladder at the nominal CRFs, CPU s per source minute: ours in one process {one:.1f} "
          f"(each rung alone: {ours_alone:.1f}); MediaCMS {theirs_total:.1f}; "
          f"ratio one process / MediaCMS {one / theirs_total:.2f}")  # fmt: skip
    return dominated


def _their_ladder_cpu(result: SourceResult) -> float:
    return sum(per_minute(_at_crf(result.theirs[r.name], mediacms.CRF).cpu, result.probe) for r in result.rungs)


def _probe_table(result: SourceResult) -> None:
    print(f"\n== {result.name}: CRF at which our rung matches MediaCMS's SSIM at CRF 23 (a per-lesson probe's target)")
    for rung in result.rungs:
        their = _at_crf(result.theirs[rung.name], mediacms.CRF)
        crf = _crf_for(result.ours[rung.name], their.ssim_db)
        our_rate = rate_at(curve(result.ours[rung.name]), their.ssim_db)
        where = "outside our measured range" if crf is None or our_rate is None else (
            f"crf {crf:.1f}, {our_rate / their.size - 1:+.0%} bytes against theirs")  # fmt: skip
        print(f"  {rung.name:5s} their {their.ssim_db:.2f} dB: {where}")


def _preset_table(result: SourceResult) -> None:
    probe = result.probe
    print(f"\n== {result.name}: x264 preset frontier, our arguments at our CRFs; vs MediaCMS: our bytes over the "
          "bytes MediaCMS's curve needs for the same SSIM, minus 1")  # fmt: skip
    print("preset   | " + " | ".join(f"{r.name}: kbit/s    dB  cpu/min vs MediaCMS" for r in result.rungs)
          + " | ladder cpu/min")  # fmt: skip
    rows = {preset: {r.name: points[r.name] for r in result.rungs} for preset, points in result.presets.items()}
    rows["MediaCMS"] = {r.name: _at_crf(result.theirs[r.name], mediacms.CRF) for r in result.rungs}
    for preset, points in rows.items():
        cells, total = [], 0.0
        for rung in result.rungs:
            point = points[rung.name]
            cpu = per_minute(point.cpu, probe)
            total += cpu
            their_rate = rate_at(curve(result.theirs[rung.name]), point.ssim_db)
            versus = "" if preset == "MediaCMS" else _percent(point.size / their_rate - 1 if their_rate else None)
            cells.append(f"{point.kbps(probe.duration):6.0f} {point.ssim_db:6.2f} {cpu:7.1f} {versus:>11s}")
        print(f"{preset:8s} | " + " | ".join(cells) + f" | {total:6.1f}")


def _selection_table(result: SourceResult) -> None:
    probe = result.probe
    print(f"\n== {result.name}: rung selection (best SSIM at 1080p from any of our rungs and CRFs for at most the "
          "bytes of each of our rungs at its CRF)")  # fmt: skip
    for rung in result.rungs:
        nominal = _at_crf(result.ours[rung.name], rung.crf)
        best_rung, best = max(
            ((name, p) for name, points in result.ours.items() for p in points if p.size <= nominal.size),
            key=lambda item: item[1].ssim_db,
        )
        verdict = "on the hull" if best_rung == rung.name else (
            f"beaten by {best_rung} crf {best.crf}: {best.kbps(probe.duration):.0f} kbit/s, {best.ssim_db:.2f} dB "
            f"(+{best.ssim_db - nominal.ssim_db:.2f} dB)")  # fmt: skip
        print(f"  {rung.name:5s} crf {rung.crf} ({nominal.kbps(probe.duration):.0f} kbit/s, {nominal.ssim_db:.2f} dB): "
              f"{verdict}")  # fmt: skip


def _crf_for(points: list[Measured], quality_db: float) -> float | None:
    """The CRF giving ``quality_db`` on this curve, interpolated linearly between measured CRFs."""
    ordered = sorted(points, key=lambda p: p.ssim_db)
    for low, high in zip(ordered, ordered[1:], strict=False):
        if low.ssim_db <= quality_db <= high.ssim_db and high.ssim_db > low.ssim_db:
            share = (quality_db - low.ssim_db) / (high.ssim_db - low.ssim_db)
            return low.crf + share * (high.crf - low.crf)
    return None


def _percent(value: float | None) -> str:
    return "no overlap" if value is None else f"{value:+.1%}"


def _load() -> str:
    return f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of each source (default 20)")
    parser.add_argument("--offsets", default="-6,-3,0,3", help="CRF offsets of the RD curves (default -6,-3,0,3)")
    parser.add_argument("--presets", default="veryfast,faster,fast,medium", help="x264 presets of the frontier")
    parser.add_argument("--sources", default="lecture,camera", help="which sources (default lecture,camera)")
    args = parser.parse_args()
    offsets = sorted(int(x) for x in args.offsets.split(","))
    if 0 not in offsets or len(offsets) < 2:
        parser.error("--offsets needs 0 (the nominal CRFs) and at least one more value")
    t = tools()
    print(f"before: {_load()}", flush=True)
    makers = {
        "lecture": lambda: lecture_source(ffmpeg=t.ffmpeg, seconds=args.seconds, slide_seconds=LECTURE_SLIDE_SECONDS),
        "camera": lambda: camera_source(ffmpeg=t.ffmpeg, seconds=args.seconds),
    }
    results = []
    for name in args.sources.split(","):
        source = makers[name]()
        results.append(run_source(t, name, source, offsets=offsets, presets=args.presets.split(",")))
    dominated = []
    for result in results:
        dominated += [f"{result.name} {rung}" for rung in report(result)]
    print(f"\nafter: {_load()}")
    print(f"rungs of ours dominated (more bytes for the same SSIM and more CPU): {', '.join(dominated) or 'none'} "
          f"(target: none, {'met' if not dominated else 'MISSED'})")  # fmt: skip
    return 1 if dominated else 0


if __name__ == "__main__":
    raise SystemExit(main())
