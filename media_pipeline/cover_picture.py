"""A sound-only lesson's cover picture (album art) made into its poster, with Pillow.

The bundled ffmpeg decodes JPEG but not PNG, and podcast and iTunes files often carry a PNG. So the
attached picture is copied out of the upload as it is (ffmpeg.cover_extract_command, no decoding) and
decoded here instead. Run by path in the media tools' sandbox (media_pipeline.tools: resource limits, no
network, a minimal environment), like every other parser of an upload:

    python -I cover_picture.py --max-height 720 PICTURE POSTER.jpg

Standard library and Pillow only. Exit status 0: the poster is written; 1: the picture cannot be used,
the reason on stderr (the caller then draws the waveform instead). A picture of more than MAX_PIXELS
is refused from its header alone, before anything is decoded.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from PIL import Image, ImageOps

SCRIPT = Path(__file__)
# iTunes asks for at most 3000x3000 (9 Mpx); a cover of 25 Mpx decodes in about 100 MB (RGBA).
MAX_PIXELS = 25_000_000
# What album art is stored as (ID3 APIC, MP4 covr, Matroska attachments): never a format that runs
# code or opens other files.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
JPEG_QUALITY = 90  # about ffmpeg's -q:v 3, what the video posters use
BACKGROUND = (255, 255, 255)  # under a transparent picture (logos on transparency are drawn for white)


class UnusablePicture(Exception):
    """The picture cannot be made into a poster; the message says why."""


def command(*, picture: Path, target: Path, max_height: int) -> list[str]:
    """The command that runs this script (in the sandbox, through media_pipeline.tools.run_tool)."""
    # -I: no PYTHON* variables, no current folder or user site on the path: Pillow from the venv only.
    return [sys.executable, "-I", str(SCRIPT), "--max-height", str(max_height), str(picture), str(target)]


def poster_size(width: int, height: int, *, max_height: int) -> tuple[int, int]:
    """At most ``max_height`` high, never upscaled, the width even (as ffmpeg's ``scale=-2``)."""
    if height <= max_height:
        return width, height
    return max(2, round(width * max_height / height / 2) * 2), max_height


def write_poster(picture: Path, target: Path, *, max_height: int, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Decode ``picture`` and write it to ``target`` as a JPEG poster; return its size.

    Raise UnusablePicture when it is not a picture, too large or damaged."""
    Image.MAX_IMAGE_PIXELS = max_pixels  # this process only: it exists for this one picture
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(picture, formats=FORMATS) as image:
                width, height = image.size  # from the header: nothing decoded yet
                if width * height > max_pixels:  # Image.open's own guard has refused it already
                    raise UnusablePicture(f"too many pixels: {width}x{height} (at most {max_pixels})")
                size = poster_size(width, height, max_height=max_height)
                image.draft("RGB", size)  # JPEG: decode at a reduced scale when that is enough
                poster = _flattened(ImageOps.exif_transpose(image))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnusablePicture(f"too many pixels: {exc}") from exc
        except (OSError, SyntaxError, ValueError, Warning) as exc:
            raise UnusablePicture(f"the picture cannot be read: {exc}") from exc
    poster = poster.resize(poster_size(*poster.size, max_height=max_height), Image.Resampling.LANCZOS)
    poster.save(target, "JPEG", quality=JPEG_QUALITY)
    return poster.size


def _flattened(image: Image.Image) -> Image.Image:
    """8-bit RGB, any transparency over BACKGROUND."""
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if image.mode == "I;16":
        image = image.point(lambda value: value / 256).convert("L")  # 16-bit grey to 8-bit
    return image.convert("RGB")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-height", type=int, required=True)
    parser.add_argument("picture", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    try:
        write_poster(args.picture, args.target, max_height=args.max_height)
    except UnusablePicture as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
