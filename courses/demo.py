"""The demo lesson's video: lecture-like slides with text changing every few seconds, and a tone.

The ffmpeg in the wheel has no drawtext (nor a PNG decoder), so the slides are drawn with Pillow as BMP and ffmpeg
stitches them together with a moving progress bar and a sine tone. ffmpeg runs as every media tool does,
through media_pipeline.tools (sandbox, minimal environment, timeout).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from media_pipeline.ffmpeg import ffmpeg_preamble
from media_pipeline.tools import run_tool

SLIDES: list[tuple[str, list[str]]] = [
    ("Adaptive streaming", ["How a lesson reaches every learner", "in the best quality their network allows"]),
    ("1. Upload once", ["The educator uploads one file", "from a phone, Zoom or a lecture-capture box"]),
    ("2. Encode a ladder", ["One decode, several renditions", "1080p, 720p, 480p, 360p with aligned keyframes"]),
    ("3. Package", ["CMAF segments written once", "HLS and DASH manifests over the same segments"]),
    ("4. Deliver", ["Signed URLs, cached at the edge", "the player picks a rendition every few seconds"]),
    ("5. Measure", ["Startup time, stalls, failures", "watched live by operators"]),
]
SECONDS_PER_SLIDE = 5
SIZE = (1280, 720)
COLOURS = ["#1d3557", "#264653", "#3a0ca3", "#2a9d8f", "#6d597a", "#b5651d"]


def _draw_slide(path: Path, *, index: int, title: str, lines: list[str]) -> None:
    image = Image.new("RGB", SIZE, COLOURS[index % len(COLOURS)])
    draw = ImageDraw.Draw(image)
    title_font = ImageFont.load_default(size=72)
    body_font = ImageFont.load_default(size=40)
    small_font = ImageFont.load_default(size=28)
    draw.text((90, 140), title, font=title_font, fill="white")
    draw.line((90, 250, 1190, 250), fill="white", width=4)
    for number, line in enumerate(lines):
        draw.text((90, 300 + number * 70), f"- {line}", font=body_font, fill="#f1faee")
    draw.text((90, 620), f"Demo lecture  |  slide {index + 1} of {len(SLIDES)}", font=small_font, fill="#e0e0e0")
    image.save(path)


def render_demo_video(*, ffmpeg: str, target: Path, workdir: Path, timeout: float = 300.0) -> Path:
    """Write a ~30 s 1280x720 H.264/AAC MP4 lecture to ``target``."""
    workdir.mkdir(parents=True, exist_ok=True)
    inputs: list[str] = []
    for index, (title, lines) in enumerate(SLIDES):
        slide = workdir / f"slide{index:02d}.bmp"
        _draw_slide(slide, index=index, title=title, lines=lines)
        inputs += ["-loop", "1", "-framerate", "30", "-t", str(SECONDS_PER_SLIDE), "-i", str(slide)]
    total = SECONDS_PER_SLIDE * len(SLIDES)
    inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={total}"]
    concat = "".join(f"[{i}:v]" for i in range(len(SLIDES)))
    # A bar growing along the bottom edge keeps the picture moving between slide changes.
    graph = (
        f"{concat}concat=n={len(SLIDES)}:v=1:a=0[slides];"
        f"color=c=white:s={SIZE[0]}x16:r=30:d={total}[bar];"
        f"[slides][bar]overlay=x='-W+W*t/{total}':y=H-16:eval=frame,format=yuv420p[v]"
    )
    command = [
        *ffmpeg_preamble(ffmpeg), *inputs,
        "-filter_complex", graph, "-map", "[v]", "-map", f"{len(SLIDES)}:a",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-t", str(total), "-movflags", "+faststart",
        str(target),
    ]  # fmt: skip
    run_tool(command, timeout=timeout, work_dir=workdir, label="ffmpeg")
    return target
