"""Build and run the ffmpeg commands: one decode, every rung, aligned keyframes; and the poster."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from media_pipeline.ladder import AUDIO_BITRATE_KBPS, Rung, gop_frames, output_fps
from media_pipeline.probe import FORMAT_WHITELIST
from media_pipeline.tools import run_tool


def rung_file(rung: Rung) -> str:
    return f"video_{rung.name}.mp4"


AUDIO_FILE = "audio.mp4"
LOUDNORM = "loudnorm=I=-16:LRA=11:TP=-1.5"
# Surround is folded to stereo before loudness is measured (ffmpeg's standard downmix matrix: centre and
# surrounds at -3 dB, LFE dropped), so loudnorm normalises what learners hear; then 48 kHz for AAC.
AUDIO_FILTER = f"aformat=channel_layouts=stereo,{LOUDNORM},aresample=48000"
# Interlaced sources (probe.interlaced): one progressive frame per frame, field order read from the stream.
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=all"


def ffmpeg_preamble(ffmpeg: str, *, progress: bool = False) -> list[str]:
    """How every ffmpeg command starts: never read stdin, no banner, errors only, overwrite outputs.

    ``progress``: machine-readable progress on stdout (``-progress pipe:1``, read by
    ``run_with_progress``) instead of the interactive stats line."""
    head = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    return head + ["-progress", "pipe:1", "-nostats"] if progress else head


def input_options(*, threads: int) -> list[str]:
    """Options every ffmpeg run on an upload takes before ``-i``: the upload is the only file it may open
    (protocol and demuxer whitelists, see probe.ACCEPTED_FORMATS) and decoding uses bounded threads."""
    return ["-protocol_whitelist", "file", "-format_whitelist", FORMAT_WHITELIST, "-threads", str(threads)]


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
    interlaced: bool = False,
) -> list[str]:
    """One ffmpeg process: decode once, ``split`` into every rung, plus one stereo AAC rendition.

    No rungs means a sound-only lesson: only the audio rendition is encoded.
    """
    command = [
        *ffmpeg_preamble(ffmpeg, progress=True),
        *input_options(threads=threads), "-i", str(source),
    ]  # fmt: skip
    if rungs:
        fps = output_fps(source_fps)
        gop = gop_frames(fps)
        # 0:V:0 is the first real video stream (never an attached cover picture). The decoder has
        # already applied the rotation; the fps filter makes a variable frame rate constant.
        graph = split_into_rungs(f"[0:V:0]{DEINTERLACE + ',' if interlaced else ''}fps={fps}", rungs)
        command += ["-filter_complex", graph]
        if threads:
            command += ["-filter_complex_threads", str(threads)]
        command += rung_outputs(rungs=rungs, out_dir=out_dir, gop=gop, preset=preset, threads=threads)
    if has_audio:
        command += [
            "-map", "0:a:0", "-vn", "-sn", "-dn",
            # EBU R128: every lesson plays at the same loudness (-16 LUFS, the level for speech on
            # laptops and phones), whatever the microphone did.
            "-filter:a", AUDIO_FILTER,
            "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k",
            "-map_metadata", "-1",
            str(out_dir / AUDIO_FILE),
        ]  # fmt: skip
    return command


def split_into_rungs(head: str, rungs: list[Rung]) -> str:
    """The filter graph from ``head`` (the decoded, frame-rate-fixed picture) to one labelled output per
    rung, ``[out0]``, ``[out1]``...: one ``split``, then each rung's scale. Scaling to the planned size
    (square pixels as displayed) then setsar=1 turns anamorphic pixels square; format=yuv420p makes
    10-bit and 4:2:2 sources 8-bit 4:2:0 for every player."""
    chains = [f"{head},split={len(rungs)}" + "".join(f"[v{i}]" for i in range(len(rungs)))]
    for index, rung in enumerate(rungs):
        chains.append(f"[v{index}]scale={rung.width}:{rung.height}:flags=lanczos,setsar=1,format=yuv420p[out{index}]")
    return ";".join(chains)


def rung_outputs(
    *, rungs: list[Rung], out_dir: Path, gop: int, preset: str, threads: int, faststart: bool = True
) -> list[str]:
    """One x264 output per rung of ``split_into_rungs``: capped CRF, and closed GOPs of exactly two
    seconds at the same frames in every rung, so segments align. ``faststart`` moves the index to the
    front (not for chunks: their joined file gets it)."""
    args: list[str] = []
    for index, rung in enumerate(rungs):
        args += [
            "-map", f"[out{index}]", "-an", "-sn", "-dn",
            "-c:v", "libx264", "-preset", preset, "-profile:v", "high",
            "-crf", str(rung.crf), "-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-flags", "+cgop",
            "-threads", str(threads),
            "-map_metadata", "-1", *(["-movflags", "+faststart"] if faststart else []),
            str(out_dir / rung_file(rung)),
        ]  # fmt: skip
    return args


def poster_command(
    *, ffmpeg: str, source: Path, target: Path, at_seconds: float, max_height: int, interlaced: bool = False
) -> list[str]:
    """One frame of the video, never upscaled."""
    deinterlace = DEINTERLACE + "," if interlaced else ""
    return [
        *ffmpeg_preamble(ffmpeg),
        *input_options(threads=1), "-ss", f"{at_seconds:.3f}", "-i", str(source),
        "-map", "0:V:0", "-frames:v", "1",
        "-vf", f"{deinterlace}scale=-2:'min({max_height},ih)':flags=lanczos,setsar=1,format=yuvj420p",
        "-q:v", "3", str(target),
    ]  # fmt: skip


def cover_extract_command(*, ffmpeg: str, source: Path, target: Path) -> list[str]:
    """A sound-only lesson's attached picture (album art) copied out as it is, not decoded: the bundled
    ffmpeg has no PNG decoder, so media_pipeline.cover_picture decodes it."""
    return [
        *ffmpeg_preamble(ffmpeg),
        *input_options(threads=1), "-i", str(source),
        "-map", "0:v:0", "-c", "copy", "-frames:v", "1", "-f", "image2", "-update", "1", str(target),
    ]  # fmt: skip


WAVEFORM_SIZE = "1280x720"


def waveform_poster_command(*, ffmpeg: str, source: Path, target: Path) -> list[str]:
    """A sound-only lesson without a picture: its waveform, so the player and pages still show something."""
    return [
        *ffmpeg_preamble(ffmpeg),
        *input_options(threads=1), "-i", str(source),
        "-filter_complex",
        f"[0:a:0]aformat=channel_layouts=mono,showwavespic=s={WAVEFORM_SIZE}:colors=0x4f8fd6,format=yuvj420p[pic]",
        "-map", "[pic]", "-frames:v", "1", "-q:v", "3", str(target),
    ]  # fmt: skip


def parse_progress_seconds(line: str) -> float | None:
    """Seconds encoded so far from one line of ``-progress`` output, if it carries them."""
    key, _, value = line.strip().partition("=")
    if key in {"out_time_us", "out_time_ms"} and value.lstrip("-").isdigit():
        # Both keys carry microseconds (out_time_ms is misnamed in ffmpeg).
        return max(0.0, int(value) / 1_000_000)
    return None


def run_with_progress(
    command: list[str],
    *,
    duration: float,
    timeout: float,
    on_progress: Callable[[int], None] | None = None,
    every_seconds: float = 2.0,
    work_dir: Path | None = None,
    nice: int = 0,
) -> None:
    """Run ffmpeg (in the sandbox of media_pipeline.tools), reporting whole percent at most every
    ``every_seconds`` from its ``-progress pipe:1`` output; raise ToolFailed on error or timeout."""
    last_report = 0.0

    def on_line(line: str) -> None:
        nonlocal last_report
        seconds = parse_progress_seconds(line)
        if seconds is not None and on_progress and time.monotonic() - last_report >= every_seconds:
            last_report = time.monotonic()
            on_progress(min(99, int(100 * seconds / duration)) if duration > 0 else 0)

    run_tool(command, timeout=timeout, on_stdout_line=on_line, work_dir=work_dir, label="ffmpeg", nice=nice)
