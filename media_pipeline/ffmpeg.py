"""Build and run the ffmpeg commands: one decode, every rung, aligned keyframes; and the poster."""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from media_pipeline.ladder import AUDIO_BITRATE_KBPS, Rung, gop_frames, output_fps


def rung_file(rung: Rung) -> str:
    return f"video_{rung.name}.mp4"


AUDIO_FILE = "audio.mp4"
LOUDNORM = "loudnorm=I=-16:LRA=11:TP=-1.5"


def encode_command(
    *,
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    rungs: list[Rung],
    source_fps: float,
    has_audio: bool,
    preset: str = "veryfast",
    threads: int = 0,
) -> list[str]:
    """One ffmpeg process: decode once, ``split`` into every rung, plus one stereo AAC rendition."""
    fps = output_fps(source_fps)
    gop = gop_frames(fps)
    labels = [f"v{i}" for i in range(len(rungs))]
    chains = [f"[0:v:0]fps={fps},split={len(rungs)}" + "".join(f"[{label}]" for label in labels)]
    for index, rung in enumerate(rungs):
        chains.append(
            f"[{labels[index]}]scale={rung.width}:{rung.height}:flags=lanczos,setsar=1,format=yuv420p[out{index}]"
        )
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-progress", "pipe:1", "-nostats",
        "-protocol_whitelist", "file",
        "-threads", str(threads), "-i", str(source),
        "-filter_complex", ";".join(chains),
    ]  # fmt: skip
    for index, rung in enumerate(rungs):
        command += [
            "-map", f"[out{index}]", "-an", "-sn", "-dn",
            "-c:v", "libx264", "-preset", preset, "-profile:v", "high",
            "-crf", str(rung.crf), "-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k",
            # Closed GOPs of exactly two seconds at the same frames in every rung, so segments align.
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-flags", "+cgop",
            "-threads", str(threads),
            "-map_metadata", "-1", "-movflags", "+faststart",
            str(out_dir / rung_file(rung)),
        ]  # fmt: skip
    if has_audio:
        command += [
            "-map", "0:a:0", "-vn", "-sn", "-dn",
            # EBU R128: every lesson plays at the same loudness (-16 LUFS, the level for speech on
            # laptops and phones), whatever the microphone did.
            "-filter:a", LOUDNORM,
            "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k", "-ac", "2", "-ar", "48000",
            "-map_metadata", "-1",
            str(out_dir / AUDIO_FILE),
        ]  # fmt: skip
    return command


def poster_command(*, ffmpeg: str, source: Path, target: Path, at_seconds: float, max_height: int) -> list[str]:
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-protocol_whitelist", "file", "-ss", f"{at_seconds:.3f}", "-i", str(source),
        "-frames:v", "1", "-vf", f"scale=-2:'min({max_height},ih)':flags=lanczos,format=yuvj420p",
        "-q:v", "3", str(target),
    ]  # fmt: skip


def parse_progress_seconds(line: str) -> float | None:
    """Seconds encoded so far from one line of ``-progress`` output, if it carries them."""
    key, _, value = line.strip().partition("=")
    if key in {"out_time_us", "out_time_ms"} and value.lstrip("-").isdigit():
        # Both keys carry microseconds (out_time_ms is misnamed in ffmpeg).
        return max(0.0, int(value) / 1_000_000)
    return None


_GLOG_PREFIX = re.compile(r"^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] ")


def last_error_line(stderr: str) -> str:
    """The last line a tool printed, without log prefixes, short enough to show an educator."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return _GLOG_PREFIX.sub("", lines[-1] if lines else "unknown error")[:300]


class ToolFailed(Exception):
    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def run_with_progress(
    command: list[str],
    *,
    duration: float,
    timeout: float,
    on_progress: Callable[[int], None] | None = None,
    every_seconds: float = 2.0,
) -> None:
    """Run ffmpeg, reporting whole percent at most every ``every_seconds``; raise ToolFailed on error.

    stderr goes to a temporary file, not a pipe: a tool that logs more than a pipe holds (64 KiB)
    while we read its progress from stdout would otherwise block on the write and never finish. A
    timer kills the tool at ``timeout`` even when it has stopped writing progress altogether.
    """
    last_report = 0.0
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr_file:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_file, text=True) as process:
            assert process.stdout is not None
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                process.kill()

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                for line in process.stdout:
                    seconds = parse_progress_seconds(line)
                    if seconds is not None and on_progress and time.monotonic() - last_report >= every_seconds:
                        last_report = time.monotonic()
                        on_progress(min(99, int(100 * seconds / duration)) if duration > 0 else 0)
                process.wait()
            finally:
                timer.cancel()
        if timed_out.is_set():
            raise ToolFailed(f"timed out after {timeout:.0f} s")
        stderr_file.seek(0)
        stderr = stderr_file.read()
    if process.returncode != 0:
        raise ToolFailed(f"ffmpeg failed: {last_error_line(stderr)}", stderr=stderr)


def run_tool(command: list[str], *, timeout: float) -> str:
    """Run a tool to completion; return its stderr; raise ToolFailed on error or timeout."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{Path(command[0]).name} timed out after {timeout:.0f} s") from exc
    if completed.returncode != 0:
        raise ToolFailed(
            f"{Path(command[0]).name} failed: {last_error_line(completed.stderr)}", stderr=completed.stderr
        )
    return completed.stderr
