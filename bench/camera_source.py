"""A camera-heavy lecture source for the encoding benchmarks, generated once and cached.

What a filmed lecture looks like to an encoder, as opposed to the slides of bench/lecture_source.py:
a handheld camera pans and zooms over a whiteboard (global motion in every frame, with shake), a
presenter walks in front of it (a large moving object with its own texture), the board gains writing
halfway through, and the sensor adds noise and the exposure breathes. Made from lavfi filters of the
wheel's ffmpeg (no drawtext, no PNG decoder: the board and the presenter's silhouette are drawn with
Pillow and handed over as PPM/PGM). Cached under ``var/bench/`` by its parameters.
"""

from __future__ import annotations

import math
import random
import subprocess
from pathlib import Path

from bench.lecture_source import CACHE_DIR, _font

# The board is drawn larger than the frame so the camera has somewhere to pan and zoom.
BOARD_SCALE = 1.5


def _board(path: Path, *, width: int, height: int, extra_writing: bool) -> None:
    """A whiteboard on a wall: uneven lighting, marker formulas, a plot, boxes and arrows, smudges."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(16)
    u = height / 1620
    image = Image.new("RGB", (width, height), (118, 108, 96))  # the wall around the board
    draw = ImageDraw.Draw(image)
    board = (int(120 * u), int(110 * u), width - int(120 * u), height - int(170 * u))
    draw.rectangle(board, fill=(236, 238, 234), outline=(150, 150, 155), width=max(2, int(14 * u)))
    # Light falls off towards the right and the bottom, as from a window.
    shade = Image.linear_gradient("L").rotate(-60, expand=False).resize((width, height))
    image = Image.composite(
        image, Image.new("RGB", (width, height), (170, 170, 165)), shade.point(lambda v: 155 + v // 3)
    )
    draw = ImageDraw.Draw(image)
    for _ in range(14):  # half-erased smudges
        x, y = rng.randint(board[0], board[2] - 300), rng.randint(board[1], board[3] - 120)
        draw.ellipse([x, y, x + rng.randint(150, 420), y + rng.randint(40, 110)], fill=(214, 217, 214))
    image = image.filter(ImageFilter.GaussianBlur(radius=6 * u))
    draw = ImageDraw.Draw(image)
    marker = _font(int(62 * u), bold=True)
    lines = [
        ("x(t) = sum_k a_k cos(2 pi k f0 t + phi_k)", (30, 50, 140)),
        ("X(f) = integral x(t) e^(-j 2 pi f t) dt", (30, 50, 140)),
        ("fs > 2 B   (Nyquist)", (170, 30, 30)),
        ("y[n] = sum_m h[m] x[n - m]", (25, 25, 25)),
    ]
    if extra_writing:
        lines += [
            ("H(z) = (1 - z^-1) / (1 - 0.9 z^-1)", (20, 110, 50)),
            ("|H(e^jw)| at w = pi: 2 / 1.9", (20, 110, 50)),
        ]
    y = board[1] + int(60 * u)
    for text, colour in lines:
        draw.text((board[0] + int(70 * u) + rng.randint(-8, 8), y), text, font=marker, fill=colour)
        y += int(120 * u) + rng.randint(-6, 6)
    # A hand-drawn plot on the right: axes and a damped sine.
    ox, oy = int(width * 0.62), int(height * 0.55)
    draw.line([ox, oy, ox + int(800 * u), oy], fill=(25, 25, 25), width=max(2, int(6 * u)))
    draw.line([ox, oy + int(300 * u), ox, oy - int(360 * u)], fill=(25, 25, 25), width=max(2, int(6 * u)))
    points = []
    for step in range(160):
        t = step / 160
        points.append((ox + t * 780 * u, oy - 300 * u * math.exp(-3 * t) * math.sin(14 * t)))
    draw.line(points, fill=(170, 30, 30), width=max(2, int(7 * u)))
    for index in range(3):  # boxes and arrows of a block diagram
        bx = board[0] + int((90 + index * 420) * u)
        by = board[3] - int(330 * u)
        draw.rectangle([bx, by, bx + int(300 * u), by + int(170 * u)], outline=(30, 50, 140), width=max(2, int(7 * u)))
        draw.text((bx + int(60 * u), by + int(50 * u)), ["A/D", "FIR", "D/A"][index], font=marker, fill=(30, 50, 140))
        if index < 2:
            ax = bx + int(300 * u)
            draw.line(
                [ax, by + int(85 * u), ax + int(120 * u), by + int(85 * u)],
                fill=(30, 50, 140),
                width=max(2, int(7 * u)),
            )
    if extra_writing:
        ring = [ox + int(250 * u), oy - int(330 * u), ox + int(520 * u), oy - int(120 * u)]
        draw.ellipse(ring, outline=(20, 110, 50), width=max(2, int(8 * u)))
    image.save(path)


def _silhouette(path: Path, *, width: int, height: int) -> None:
    """The presenter's alpha mask (PGM): head, neck, shoulders and a torso that fills the bottom."""
    from PIL import Image, ImageDraw, ImageFilter

    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    head = width * 0.34
    cx = width / 2
    draw.ellipse([cx - head / 2, height * 0.02, cx + head / 2, height * 0.02 + head * 1.25], fill=255)
    draw.rectangle([cx - width * 0.08, height * 0.2, cx + width * 0.08, height * 0.3], fill=255)
    draw.rounded_rectangle(
        [width * 0.04, height * 0.27, width * 0.96, height * 1.2], radius=int(width * 0.25), fill=255
    )
    mask.filter(ImageFilter.GaussianBlur(radius=2)).save(path)


def camera_source(
    *,
    ffmpeg: str,
    seconds: int = 30,
    width: int = 1920,
    height: int = 1080,
    fps: int = 30,
    cache_dir: Path = CACHE_DIR,
) -> Path:
    """The cached camera-heavy source for these parameters; generated (images, then one ffmpeg run) when missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"camera-{width}x{height}-{fps}fps-{seconds}s.mp4"
    if target.exists():
        return target
    work = cache_dir / f"camera-{width}x{height}"
    work.mkdir(exist_ok=True)
    board_w, board_h = int(width * BOARD_SCALE) // 2 * 2, int(height * BOARD_SCALE) // 2 * 2
    boards = [work / "board-0.ppm", work / "board-1.ppm"]
    for number, image in enumerate(boards):
        if not image.exists():
            _board(image, width=board_w, height=board_h, extra_writing=number == 1)
    person_w, person_h = int(height * 0.42) // 2 * 2, int(height * 0.95) // 2 * 2
    mask = work / f"presenter-{person_w}x{person_h}.pgm"
    if not mask.exists():
        _silhouette(mask, width=person_w, height=person_h)
    first = seconds // 2
    inputs = [
        "-loop", "1", "-framerate", str(fps), "-t", str(first), "-i", str(boards[0]),
        "-loop", "1", "-framerate", str(fps), "-t", str(seconds - first), "-i", str(boards[1]),
        # The presenter's clothes: slowly changing Perlin texture (folds, shading) over a moving pattern.
        "-f", "lavfi", "-i", f"perlin=size={person_w}x{person_h}:rate={fps}:octaves=5:tscale=0.4:"
        "xscale=0.02:yscale=0.02",
        "-f", "lavfi", "-i", f"testsrc2=size={person_w}x{person_h}:rate={fps}",
        "-loop", "1", "-framerate", str(fps), "-i", str(mask),
        "-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.08:sample_rate=48000",
    ]  # fmt: skip
    walk = "(W-w)*(0.5+0.42*sin(t*0.55))"  # left and right across the board, about once every 11 s
    # Camera: zoom breathing between 1.0 and 1.3 of the frame, panning over the board, with a
    # handheld shake of a few pixels (zoompan works in integer pixels, which adds its own judder).
    zoom = "1.15+0.15*sin(on/70)"
    pan_x = "(iw-iw/zoom)*(0.5+0.45*sin(on/55))+9*sin(on*0.9)+5*sin(on*2.3)"
    pan_y = "(ih-ih/zoom)*(0.5+0.4*sin(on/83))+7*sin(on*1.1)+4*sin(on*2.9)"
    graph = ";".join([
        "[0:v][1:v]concat=n=2:v=1:a=0,format=yuv420p[board]",
        "[2:v]format=yuv420p,colorchannelmixer=rr=0.45:gg=0.5:bb=0.85[cloth]",
        "[3:v]format=yuv420p,gblur=sigma=3[pattern]",
        "[cloth][pattern]blend=all_mode=overlay:all_opacity=0.25[body]",
        "[body][4:v]alphamerge[person]",
        f"[board][person]overlay=x='{walk}':y='H-h*0.92+12*abs(sin(t*3.1))':shortest=1[scene]",
        f"[scene]zoompan=z='{zoom}':x='{pan_x}':y='{pan_y}':d=1:s={width}x{height}:fps={fps},"
        f"gblur=sigma=0.7,noise=alls=3:allf=t,eq=brightness='0.02*sin(t*1.7)':eval=frame,vignette=PI/5,"
        "format=yuv420p[v]",
    ])  # fmt: skip
    tmp = target.with_suffix(".part.mp4")
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *inputs,
        "-filter_complex", graph,
        "-map", "[v]", "-map", "5:a", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", str(fps * 4),
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(tmp),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=3600)
    tmp.replace(target)
    return target
