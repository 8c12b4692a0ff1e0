"""Storyboard: one JPEG sprite of small frames and a WebVTT track mapping time ranges to tiles.

Players (ours draws it itself, see static/js/player.js; Shaka's addThumbnailsTrack reads the same
format) show the tile under the pointer while the learner scrubs. The number of tiles is bounded,
so an hours-long lecture gets a sprite of the same size as a ten-minute one, only coarser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from media_pipeline.ffmpeg import ffmpeg_preamble
from media_pipeline.layout import STORYBOARD_SPRITE, STORYBOARD_TRACK
from media_pipeline.text_tracks import format_time

SPRITE = STORYBOARD_SPRITE
TRACK = STORYBOARD_TRACK
TILE_WIDTH = 160
MAX_TILES = 100
COLUMNS = 10
# Tiles fall on keyframes (2-second GOPs, see ladder.GOP_SECONDS) so only those need decoding.
MIN_INTERVAL_SECONDS = 2


@dataclass(frozen=True)
class Storyboard:
    interval: int  # seconds between tiles
    count: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int


def plan_storyboard(*, duration: float, width: int, height: int) -> Storyboard:
    """Tiles every ``interval`` seconds (an even number, at least 2), at most MAX_TILES of them."""
    duration = max(duration, 0.001)
    interval = max(MIN_INTERVAL_SECONDS, 2 * math.ceil(duration / (2 * MAX_TILES)))
    count = max(1, math.ceil(duration / interval))
    columns = min(COLUMNS, count)
    tile_height = max(2, round(TILE_WIDTH * height / max(1, width) / 2) * 2)
    return Storyboard(
        interval=interval,
        count=count,
        columns=columns,
        rows=math.ceil(count / columns),
        tile_width=TILE_WIDTH,
        tile_height=tile_height,
    )


def storyboard_vtt(board: Storyboard, *, duration: float, sprite: str = SPRITE) -> str:
    """One cue per tile: ``sprite.jpg#xywh=x,y,w,h``, the last one ending with the video."""
    out = ["WEBVTT", ""]
    for index in range(board.count):
        start = index * board.interval
        end = min(duration, start + board.interval)
        if end <= start:
            break
        x = (index % board.columns) * board.tile_width
        y = (index // board.columns) * board.tile_height
        out += [
            f"{format_time(start)} --> {format_time(end)}",
            f"{sprite}#xywh={x},{y},{board.tile_width},{board.tile_height}",
            "",
        ]
    return "\n".join(out)


def storyboard_command(*, ffmpeg: str, source: Path, target: Path, board: Storyboard) -> list[str]:
    """Decode keyframes only (of the smallest rung: cheap even for hours), one frame per interval, tiled."""
    return [
        *ffmpeg_preamble(ffmpeg),
        "-protocol_whitelist", "file", "-threads", "1",
        "-skip_frame", "nokey", "-i", str(source),
        "-an", "-sn", "-dn",
        "-vf", (
            # eof_action=pass: a video of one GOP (2 s or less) still gives its one tile.
            f"fps=1/{board.interval}:round=down:eof_action=pass,"
            f"scale={board.tile_width}:{board.tile_height}:flags=bilinear,setsar=1,tile={board.columns}x{board.rows},format=yuvj420p"
        ),
        "-frames:v", "1", "-q:v", "5", str(target),
    ]  # fmt: skip
