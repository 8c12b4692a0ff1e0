"""Benchmark: what our probe (box walk, demuxer whitelist, reasons) costs over a bare ffprobe call.

    .venv/bin/python bench/probe_cost.py [--seconds 60] [--rounds 5]

Sources: the lecture-like 1080p30 H.264/AAC video of ``--seconds`` (bench/lecture_source.py, cached
under var/bench/) as written (faststart MP4), the same remuxed to a fragmented MP4 with one fragment
per video frame (the worst case for the box walk: thousands of top-level boxes), and the generated test
corpus (tests/media_corpus.py: 12 small valid sources). In every round, in turn: the baseline (``ffprobe
-v error -print_format json -show_format -show_streams FILE``, what the probe ran before) and ours
(``probe.probe_file``: empty check, ISO BMFF box walk, ffprobe with the protocol and demuxer whitelists
and one thread, parsing). Median wall time per file over the rounds; no target in the issue: the
figure says whether the checks are worth their cost.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.encoding import tools  # noqa: E402
from bench.lecture_source import lecture_source  # noqa: E402
from media_pipeline.probe import iso_bmff_damage, probe_file  # noqa: E402


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="lecture source length (default 60)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()
    t = tools()
    lecture = lecture_source(ffmpeg=t.ffmpeg, seconds=args.seconds)
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as tmp:
        work = Path(tmp)
        fragmented = work / "lecture-fragmented.mp4"
        subprocess.run(
            [t.ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-i", str(lecture), "-c", "copy",
             "-movflags", "+frag_every_frame+empty_moov+default_base_moof", str(fragmented)],
            check=True, timeout=600,
        )  # fmt: skip
        from tests.media_corpus import build_valid

        corpus = list(build_valid(work / "corpus").values())
        groups = {
            f"lecture {args.seconds} s faststart MP4": [lecture],
            f"lecture {args.seconds} s fragmented MP4 (one fragment per frame)": [fragmented],
            f"corpus ({len(corpus)} files)": corpus,
        }
        boxes = _top_level_boxes(fragmented)
        print(f"fragmented MP4: {boxes} top-level boxes; box walk alone "
              f"{1000 * _timed(lambda: iso_bmff_damage(fragmented)):.1f} ms", flush=True)  # fmt: skip
        print("| files | baseline bare ffprobe | ours probe_file | ratio | added per file |")
        print("| --- | --- | --- | --- | --- |")
        for label, files in groups.items():
            base_runs, our_runs = [], []
            for _ in range(args.rounds):
                base_runs.append(sum(_timed(lambda f=f: _bare_ffprobe(t.ffprobe, f)) for f in files))
                our_runs.append(sum(_timed(lambda f=f: probe_file(ffprobe=t.ffprobe, path=f)) for f in files))
            base, ours = statistics.median(base_runs), statistics.median(our_runs)
            print(f"| {label} | {1000 * base:.1f} ms | {1000 * ours:.1f} ms | {ours / base:.2f} | "
                  f"{1000 * (ours - base) / len(files):+.1f} ms |", flush=True)  # fmt: skip
    return 0


def _bare_ffprobe(ffprobe: str, path: Path) -> None:
    subprocess.run(
        [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _top_level_boxes(path: Path) -> int:
    count, offset, size = 0, 0, path.stat().st_size
    with path.open("rb") as handle:
        while offset < size:
            handle.seek(offset)
            header = handle.read(16)
            box = int.from_bytes(header[:4], "big")
            box = int.from_bytes(header[8:16], "big") if box == 1 else (size - offset if box == 0 else box)
            offset += box
            count += 1
    return count


if __name__ == "__main__":
    raise SystemExit(main())
