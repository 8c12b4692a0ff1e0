"""Storyboard maths: how many tiles, where each one sits in the sprite, and the WebVTT cues (no Django)."""

from __future__ import annotations

from pathlib import Path

from media_pipeline.storyboard import MAX_TILES, Storyboard, plan_storyboard, storyboard_command, storyboard_vtt
from media_pipeline.text_tracks import vtt_cues


def test_a_short_clip_gets_a_tile_every_two_seconds() -> None:
    board = plan_storyboard(duration=7.0, width=640, height=360)
    assert board == Storyboard(interval=2, count=4, columns=4, rows=1, tile_width=160, tile_height=90)
    assert storyboard_vtt(board, duration=7.0) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n\n"
        "00:00:02.000 --> 00:00:04.000\nstoryboard.jpg#xywh=160,0,160,90\n\n"
        "00:00:04.000 --> 00:00:06.000\nstoryboard.jpg#xywh=320,0,160,90\n\n"
        "00:00:06.000 --> 00:00:07.000\nstoryboard.jpg#xywh=480,0,160,90\n"
    )


def test_a_long_lecture_stays_at_most_one_hundred_tiles_in_a_ten_column_grid() -> None:
    board = plan_storyboard(duration=3 * 3600 + 1, width=1920, height=1080)
    assert (board.interval, board.count, board.columns, board.rows) == (110, 99, 10, 10)
    cues = vtt_cues(storyboard_vtt(board, duration=3 * 3600 + 1))
    assert len(cues) == 99 <= MAX_TILES
    assert (cues[0].start, cues[-1].start, cues[-1].end) == (0.0, 98 * 110, 3 * 3600 + 1)
    # Tile 12 is in row 1, column 2; cues are contiguous.
    assert cues[12].text == "storyboard.jpg#xywh=320,90,160,90"
    assert all(a.end == b.start for a, b in zip(cues, cues[1:], strict=False))
    # An interval is always even, so every tile falls on a 2-second keyframe.
    for seconds in (1, 59, 200, 201, 599, 3600, 36000):
        board = plan_storyboard(duration=seconds, width=640, height=360)
        assert board.interval % 2 == 0 and board.count <= MAX_TILES and board.columns * board.rows >= board.count


def test_portrait_tiles_keep_their_shape() -> None:
    board = plan_storyboard(duration=4.0, width=202, height=360)
    assert (board.tile_width, board.tile_height) == (160, 286)


def test_sprite_command_decodes_keyframes_only_into_one_image() -> None:
    board = plan_storyboard(duration=7.0, width=640, height=360)
    command = storyboard_command(
        ffmpeg="ffmpeg", source=Path("/w/video_144p.mp4"), target=Path("/o/s.jpg"), board=board
    )
    assert command[command.index("-skip_frame") + 1] == "nokey"
    assert command[command.index("-protocol_whitelist") + 1] == "file"
    assert command[command.index("-vf") + 1] == (
        "fps=1/2:round=down:eof_action=pass,scale=160:90:flags=bilinear,setsar=1,tile=4x1,format=yuvj420p"
    )
    assert command[-3:] == ["-q:v", "5", "/o/s.jpg"] and command[command.index("-frames:v") + 1] == "1"
