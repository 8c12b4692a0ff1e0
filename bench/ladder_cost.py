"""Benchmark: the cost of encoding + packaging the full ladder, ours against per-rung ffmpeg and the floor.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/ladder_cost.py [--seconds 90] [--rounds 2]

Source: a lecture-like 1080p30 H.264/AAC video of ``--seconds`` (slides with text changing every
20 s, a small moving "talking head" with camera noise; bench/lecture_source.py, cached under
var/bench/). The ladder is the default one plan_ladder gives that source. In every round, in turn:

- ours: ``encode_command`` (one decode, ``split`` into every rung, plus the audio rendition), run as
  the worker runs it, then ``package_command`` (Shaka Packager, HLS + DASH);
- baseline (a): one ffmpeg process per rung, each reading and decoding the source, with the same
  preset, CRF and rates (our command cut to one rung, audio with the first), one after the other,
  then the same packaging;
- floor (b): one bare ffmpeg command encoding the same ladder to ``-f null`` (no muxing, no packaging).

Both wall time and CPU time (user + sys of the child processes) are measured; the machine has two
cores and is shared, so the targets are judged on CPU time (the cost of a ladder), median of the
rounds. Targets (issue 3): ours / per-rung at most 0.75; ours / floor at most 1.15.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.encoding import (  # noqa: E402
    Cost,
    encode_and_package,
    measured,
    null_output_command,
    our_encode_command,
    package,
    per_rung_commands,
    probe_and_plan,
    run_encode,
    tools,
)
from bench.lecture_source import CACHE_DIR, lecture_source  # noqa: E402

TARGET_PER_RUNG = 0.75
TARGET_FLOOR = 1.15


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=90, help="source length (default 90)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three runs (default 2)")
    args = parser.parse_args()
    t = tools()
    source = lecture_source(ffmpeg=t.ffmpeg, seconds=args.seconds)
    probe, rungs = probe_and_plan(t, source)
    ladder = ", ".join(r.name for r in rungs)
    print(f"source {source.name}: {probe.width}x{probe.height} {probe.fps:g} fps, {probe.duration:.0f} s, "
          f"audio {probe.has_audio}; ladder {ladder}; preset {t.preset}", flush=True)  # fmt: skip

    def ours(work: Path) -> None:
        encode_and_package(t, source, work, rungs, probe)

    def per_rung(work: Path) -> None:
        encoded = work / "encoded"
        encoded.mkdir()
        for command in per_rung_commands(t, source, encoded, rungs, probe):
            run_encode(command, probe)
        package(t, encoded, work / "out", rungs, probe)

    def floor(work: Path) -> None:
        command = null_output_command(our_encode_command(t, source, work, rungs, probe), work)
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL, capture_output=True)

    runs = {"ours": ours, "per-rung": per_rung, "floor": floor}
    costs: dict[str, list[Cost]] = {name: [] for name in runs}
    for round_number in range(args.rounds):
        order = list(runs) if round_number % 2 == 0 else list(reversed(runs))
        for name in order:
            with tempfile.TemporaryDirectory(prefix="ladder-cost-", dir=CACHE_DIR) as tmp:
                cost = measured(lambda: runs[name](Path(tmp)))  # noqa: B023 - called at once
                if name != "floor":
                    _check_packaged(Path(tmp) / "out")
            costs[name].append(cost)
            print(f"round {round_number + 1} {name:9s} wall {cost.wall:7.1f} s   cpu {cost.cpu:7.1f} s", flush=True)

    wall = {name: statistics.median(c.wall for c in values) for name, values in costs.items()}
    cpu = {name: statistics.median(c.cpu for c in values) for name, values in costs.items()}
    print()
    print(f"median of {args.rounds} round(s)        wall        cpu (user+sys)")
    for name in runs:
        print(f"  {name:28s} {wall[name]:7.1f} s   {cpu[name]:7.1f} s")
    verdicts = []
    for label, baseline, target in (("per-rung", "per-rung", TARGET_PER_RUNG), ("floor", "floor", TARGET_FLOOR)):
        ratio_cpu, ratio_wall = cpu["ours"] / cpu[baseline], wall["ours"] / wall[baseline]
        met = ratio_cpu <= target
        verdicts.append(met)
        print(f"ratio ours/{label}: cpu {ratio_cpu:.2f} (target <= {target}: {'met' if met else 'MISSED'}), "
              f"wall {ratio_wall:.2f} (for information)")  # fmt: skip
    print(f"seconds of source encoded per CPU second, ours: {probe.duration / cpu['ours']:.2f}")
    return 0 if all(verdicts) else 1


def _check_packaged(out: Path) -> None:
    """A run that produced no playable ladder must not count as a fast one."""
    missing = [name for name in ("master.m3u8", "manifest.mpd") if not (out / name).is_file()]
    if missing:
        raise SystemExit(f"packaging produced no {', '.join(missing)} in {out}")
    if not any(out.glob("video_*/*.m4s")):
        raise SystemExit(f"no video segments in {out}")


if __name__ == "__main__":
    raise SystemExit(main())
