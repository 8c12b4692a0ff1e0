"""Benchmark: bytes and SSIM per rung, our capped-quality ladder (CRF + maxrate) against a fixed-bitrate one.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/rate_control.py [--seconds 90]

Source: the lecture-like 1080p30 video of bench/lecture_source.py (slides with text changing every
20 s, a small talking head with camera noise in a corner), cached under var/bench/. Both ladders are
encoded in the same run from the same command, ``encode_command`` with the rungs ``plan_ladder``
gives (video only: audio is the same 128 kbit/s in both):

- ours: capped quality, ``-crf`` per rung with ``-maxrate``/``-bufsize`` (media_pipeline/ladder.py);
- baseline: fixed bitrate, what peers do: ``-b:v`` at the rung's maxrate, same maxrate and bufsize,
  everything else identical.

Bytes are the sizes of the encoded rung files; SSIM (ffmpeg ``ssim`` filter, "All", averaged over
every frame) is measured against the source scaled to the rung with the same filters the encoder
uses. Target (issue 3): at least 30 % fewer bytes in total, and on every rung SSIM equal or better
(equal: not lower by more than SSIM_TOLERANCE, i.e. the same to four decimals).

``--crf 1080p=21,720p=22`` overrides CRF values for an experiment without editing ladder.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.encoding import (  # noqa: E402
    Tools,
    fixed_bitrate_command,
    measured,
    our_encode_command,
    probe_and_plan,
    run_encode,
    tools,
)
from bench.lecture_source import CACHE_DIR, lecture_source  # noqa: E402
from media_pipeline.ffmpeg import rung_file  # noqa: E402
from media_pipeline.ladder import Rung, output_fps  # noqa: E402
from media_pipeline.probe import ProbeResult  # noqa: E402

TARGET_BYTES_SAVED = 0.30
SSIM_TOLERANCE = 0.00005
_SSIM_LINE = re.compile(r"\[ssim@(?P<rung>r\d+) @ [^\]]+\] SSIM .*All:(?P<all>[\d.]+)")


def ssim_per_rung(t: Tools, source: Path, encoded: Path, rungs: list[Rung], probe: ProbeResult) -> dict[str, float]:
    """One ffmpeg run: the source decoded once, scaled to each rung as the encoder scales it, and
    compared frame by frame with that rung's encoded file."""
    fps = output_fps(probe.fps)
    inputs = ["-i", str(source)]
    chains = [f"[0:v]fps={fps},split={len(rungs)}" + "".join(f"[src{i}]" for i in range(len(rungs)))]
    for index, rung in enumerate(rungs):
        inputs += ["-i", str(encoded / rung_file(rung))]
        chains.append(
            f"[src{index}]scale={rung.width}:{rung.height}:flags=lanczos,setsar=1,format=yuv420p,"
            f"setpts=PTS-STARTPTS[ref{index}]"
        )
        chains.append(f"[{index + 1}:v]setsar=1,format=yuv420p,setpts=PTS-STARTPTS[enc{index}]")
        chains.append(f"[enc{index}][ref{index}]ssim@r{index}=shortest=1[cmp{index}]")
    command = [t.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "info", "-nostats", *inputs,
               "-filter_complex", ";".join(chains)]  # fmt: skip
    for index in range(len(rungs)):
        command += ["-map", f"[cmp{index}]", "-f", "null", "-"]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3 * 3600)
    found = {m["rung"]: float(m["all"]) for m in _SSIM_LINE.finditer(completed.stderr)}
    if len(found) != len(rungs):
        raise SystemExit(f"expected {len(rungs)} SSIM lines, found {found}:\n{completed.stderr[-2000:]}")
    return {rung.name: found[f"r{index}"] for index, rung in enumerate(rungs)}


def ssim_db(value: float) -> float:
    return -10 * math.log10(max(1e-10, 1 - value))


def with_crf(rungs: list[Rung], overrides: str) -> list[Rung]:
    wanted = dict(item.split("=") for item in overrides.split(",") if item)
    return [dataclasses.replace(r, crf=int(wanted[r.name])) if r.name in wanted else r for r in rungs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=90, help="source length (default 90)")
    parser.add_argument("--crf", default="", help="experiment: per-rung CRF overrides, e.g. 1080p=21,720p=22")
    args = parser.parse_args()
    t = tools()
    source = lecture_source(ffmpeg=t.ffmpeg, seconds=args.seconds)
    probe, rungs = probe_and_plan(t, source)
    rungs = with_crf(rungs, args.crf)
    video_only = dataclasses.replace(probe, has_audio=False)
    print(f"source {source.name}: {probe.width}x{probe.height} {probe.fps:g} fps, {probe.duration:.0f} s; "
          f"preset {t.preset}; ladder " + ", ".join(f"{r.name} crf {r.crf} max {r.maxrate_kbps}k" for r in rungs),
          flush=True)  # fmt: skip

    results: dict[str, dict[str, tuple[int, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="rate-control-", dir=CACHE_DIR) as tmp:
        for name in ("capped CRF (ours)", "fixed bitrate"):
            encoded = Path(tmp) / name.split()[0]
            encoded.mkdir()
            command = our_encode_command(t, source, encoded, rungs, video_only)
            if name == "fixed bitrate":
                command = fixed_bitrate_command(command, rungs)
            cost = measured(lambda: run_encode(command, video_only))  # noqa: B023 - called at once
            ssim = ssim_per_rung(t, source, encoded, rungs, video_only)
            results[name] = {r.name: ((encoded / rung_file(r)).stat().st_size, ssim[r.name]) for r in rungs}
            print(f"{name}: encoded in {cost.wall:.0f} s wall, {cost.cpu:.0f} s cpu", flush=True)

    ours, base = results["capped CRF (ours)"], results["fixed bitrate"]
    print()
    print("rung    | fixed bitrate: kbit/s   SSIM (dB)        | capped CRF: kbit/s   SSIM (dB)        | bytes  | SSIM")
    ssim_ok = True
    for rung in rungs:
        (b_bytes, b_ssim), (o_bytes, o_ssim) = base[rung.name], ours[rung.name]
        rung_ok = o_ssim >= b_ssim - SSIM_TOLERANCE
        ssim_ok &= rung_ok
        print(f"{rung.name:7s} | {_kbps(b_bytes, probe):8.0f}  {b_ssim:.4f} ({ssim_db(b_ssim):5.2f})"
              f"           | {_kbps(o_bytes, probe):8.0f}  {o_ssim:.4f} ({ssim_db(o_ssim):5.2f})"
              f"        | {o_bytes / b_bytes:5.2f}  | {'equal or better' if rung_ok else 'WORSE'}")  # fmt: skip
    total_base = sum(size for size, _ in base.values())
    total_ours = sum(size for size, _ in ours.values())
    saved = 1 - total_ours / total_base
    bytes_ok = saved >= TARGET_BYTES_SAVED
    print(f"total bytes: fixed {total_base / 1e6:.1f} MB, ours {total_ours / 1e6:.1f} MB: "
          f"ratio {total_ours / total_base:.2f}, "
          f"{saved:.0%} fewer (target >= {TARGET_BYTES_SAVED:.0%}: {'met' if bytes_ok else 'MISSED'})")  # fmt: skip
    print(f"SSIM equal or better on every rung: {'met' if ssim_ok else 'MISSED'}")
    return 0 if bytes_ok and ssim_ok else 1


def _kbps(size: int, probe: ProbeResult) -> float:
    return size * 8 / 1000 / probe.duration


if __name__ == "__main__":
    raise SystemExit(main())
