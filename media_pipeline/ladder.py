"""Plan the rendition ladder from the source: never upscale, keep the aspect, square pixels."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Short side of the picture -> (maxrate kbit/s at <= 30 fps, CRF). Lecture content compresses well,
# so capped-quality rate control spends bits only where the picture needs them.
LADDER: list[tuple[int, int, int]] = [
    (1080, 5000, 23),
    (720, 3000, 23),
    (480, 1400, 24),
    (360, 800, 25),
    (240, 450, 26),
    (144, 250, 27),
]
MAX_RUNGS = 4
MAX_FPS = 60.0
GOP_SECONDS = 2
AUDIO_BITRATE_KBPS = 128


@dataclass(frozen=True)
class Rung:
    name: str
    width: int
    height: int
    maxrate_kbps: int
    bufsize_kbps: int
    crf: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _even(value: float) -> int:
    return max(2, int(round(value / 2.0)) * 2)


def output_fps(source_fps: float) -> float:
    """Keep the source frame rate up to 60; halve higher rates until they fit."""
    fps = source_fps
    while fps > MAX_FPS:
        fps /= 2
    return round(fps, 3)


def gop_frames(fps: float) -> int:
    return max(1, int(round(fps * GOP_SECONDS)))


def plan_ladder(*, width: int, height: int, fps: float) -> list[Rung]:
    """Rungs for a picture of ``width`` x ``height`` as displayed (rotation already applied)."""
    short_side = min(width, height)
    portrait = height > width
    rate_factor = 1.5 if output_fps(fps) > 30 else 1.0
    rungs: list[Rung] = []
    for target, maxrate, crf in LADDER:
        if target > short_side:
            continue
        scale = target / short_side
        w, h = _even(width * scale), _even(height * scale)
        if portrait:
            w = target if target % 2 == 0 else target - 1
        else:
            h = target if target % 2 == 0 else target - 1
        rate = int(maxrate * rate_factor)
        rungs.append(Rung(name=f"{target}p", width=w, height=h, maxrate_kbps=rate, bufsize_kbps=rate * 2, crf=crf))
        if len(rungs) == MAX_RUNGS:
            break
    if not rungs:
        # Smaller than the smallest rung: one rendition at the source size.
        rungs.append(
            Rung(name=f"{_even(short_side)}p", width=_even(width), height=_even(height), maxrate_kbps=200,
                 bufsize_kbps=400, crf=27)
        )  # fmt: skip
    return rungs
