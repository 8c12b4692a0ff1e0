"""A lecture-like source video for the encoding benchmarks, generated once and cached.

Slides with real text (rendered with Pillow: the wheel's ffmpeg has no drawtext) that change every
``slide_seconds``, plus a small "talking head" in the bottom-right corner: a moving picture
(testsrc2) with temporal noise like a webcam's sensor and a slight blur, and a speech-like audio
track (pink noise). Encoded as H.264 High / AAC in MP4, as a lecture-capture box or Zoom would
hand it over. Cached under ``var/bench/`` by its parameters, so a second run reuses it; the
``BENCH_CACHE_DIR`` environment variable puts the cache elsewhere (e.g. one shared by several checkouts).
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import ImageFont

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR") or ROOT / "var" / "bench")
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation")]

TOPICS = [
    ("Fourier series", "Any periodic signal is a sum of sines and cosines of multiple frequencies."),
    ("Sampling theorem", "A band-limited signal is fully determined by samples taken at twice its bandwidth."),
    ("Convolution", "Filtering in time is multiplication in frequency; the kernel's spectrum shapes the output."),
    ("Discrete transforms", "The DFT of N samples costs N log N with the FFT instead of N squared."),
    ("Quantisation", "Each bit of resolution adds about 6 dB of signal-to-noise ratio to a uniform quantiser."),
    ("Entropy coding", "Frequent symbols get short codes; the average length approaches the source entropy."),
]


def _font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    if bold:
        names = ["DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf"]
    else:
        names = ["DejaVuSans.ttf", "LiberationSans-Regular.ttf"]
    for folder in FONT_DIRS:
        for name in names:
            if (folder / name).exists():
                return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size=size)


def _slide(path: Path, number: int, *, width: int, height: int) -> None:
    """One slide: title bar, bullet text, a formula line and a small bar chart, like a real deck."""
    from PIL import Image, ImageDraw

    title, lead = TOPICS[number % len(TOPICS)]
    u = height / 1080
    image = Image.new("RGB", (width, height), (250, 250, 247))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, int(130 * u)], fill=(24, 54, 96))
    draw.text((int(60 * u), int(30 * u)), f"{number + 1}. {title}", font=_font(int(64 * u), bold=True), fill="white")
    body = _font(int(38 * u))
    y = int(180 * u)
    lines = textwrap.wrap(lead, 60) + [
        f"Example {number + 1}: x[n] = sum_k a_k cos(2 pi k n / N + phi_k),  N = {64 * (number + 1)}",
        "Key points:",
    ]
    bullets = [
        "State the assumptions before the derivation",
        "Work one numeric example on the board",
        "Check the units and the limiting cases",
        f"Exercise {number + 3}.{number + 1} for next week (see the course page)",
    ]
    for line in lines:
        draw.text((int(80 * u), y), line, font=body, fill=(20, 20, 20))
        y += int(58 * u)
    for bullet in bullets:
        draw.ellipse([int(95 * u), y + int(14 * u), int(111 * u), y + int(30 * u)], fill=(24, 54, 96))
        draw.text((int(130 * u), y), bullet, font=body, fill=(40, 40, 40))
        y += int(58 * u)
    # A bar chart on the left half, below the text (the talking head sits bottom-right).
    base = height - int(90 * u)
    for bar in range(8):
        value = ((bar * 37 + number * 53) % 90 + 10) / 100
        x0 = int((120 + bar * 110) * u)
        draw.rectangle([x0, base - int(value * 260 * u), x0 + int(70 * u), base], fill=(200, 90 + bar * 15, 60))
    draw.line([int(100 * u), base, int(1040 * u), base], fill=(30, 30, 30), width=max(1, int(3 * u)))
    draw.text((width - int(260 * u), height - int(50 * u)), f"slide {number + 1}", font=_font(int(28 * u)),
              fill=(120, 120, 120))  # fmt: skip
    image.save(path)


def lecture_source(
    *,
    ffmpeg: str,
    seconds: int = 90,
    width: int = 1920,
    height: int = 1080,
    fps: int = 30,
    slide_seconds: int = 20,
    cache_dir: Path = CACHE_DIR,
) -> Path:
    """The cached source for these parameters; generated (slides, then one ffmpeg run) when missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"lecture-{width}x{height}-{fps}fps-{seconds}s-{slide_seconds}s.mp4"
    if target.exists():
        return target
    slides = -(-seconds // slide_seconds)
    work = cache_dir / f"slides-{width}x{height}"
    work.mkdir(exist_ok=True)
    inputs: list[str] = []
    for number in range(slides):
        image = work / f"slide-{number}.ppm"
        if not image.exists():
            _slide(image, number, width=width, height=height)
        inputs += ["-loop", "1", "-framerate", str(fps), "-t", str(slide_seconds), "-i", str(image)]
    head_w, head_h = (width // 5) // 2 * 2, (height // 5) // 2 * 2
    inputs += ["-f", "lavfi", "-i", f"testsrc2=size={head_w}x{head_h}:rate={fps}"]
    inputs += ["-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.08:sample_rate=48000"]
    concat = "".join(f"[{n}:v]" for n in range(slides)) + f"concat=n={slides}:v=1:a=0[deck]"
    head = f"[{slides}:v]noise=alls=10:allf=t+u,gblur=sigma=0.8[head]"
    margin = height // 27
    overlay = f"[deck][head]overlay=W-w-{margin}:H-h-{margin}:shortest=1,format=yuv420p[v]"
    tmp = target.with_suffix(".part.mp4")
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *inputs,
        "-filter_complex", ";".join([concat, head, overlay]),
        "-map", "[v]", "-map", f"{slides + 1}:a", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", str(fps * 4),
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(tmp),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=3600)
    tmp.replace(target)
    return target


def test_pattern_source(*, ffmpeg: str, seconds: int, width: int, height: int, fps: int = 25,
                        cache_dir: Path = CACHE_DIR) -> Path:  # fmt: skip
    """A cheap moving source with audio (testsrc2 + a tone) of any length, for the memory benchmark."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"pattern-{width}x{height}-{fps}fps-{seconds}s.mp4"
    if target.exists():
        return target
    tmp = target.with_suffix(".part.mp4")
    subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-c:a", "aac", "-b:a", "64k",
         "-movflags", "+faststart", str(tmp)],
        check=True, timeout=3600,
    )  # fmt: skip
    tmp.replace(target)
    return target
