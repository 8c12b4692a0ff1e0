"""Chunked encoding of long sources: plan the chunks and build their ffmpeg commands (pure, no I/O).

A long source is cut on the output's GOP grid: every chunk starts at a multiple of the GOP (two
seconds of output frames), so each chunk starts with a closed-GOP keyframe in every rung and the
joined stream has its keyframes exactly where an unchunked encode puts them. Each chunk encodes every
video rung (same ladder, CRF, maxrate and GOP as ``ffmpeg.encode_command``); the audio is encoded
once for the whole programme (loudness normalisation needs all of it). See docs/adr/0016.

Frame accuracy: a chunk keeps the source's timestamps (``-copyts -start_at_zero``, the same offset an
unchunked encode applies), seeks to a little before its first frame, runs the same ``fps`` filter as
the unchunked encode (so output frame ``j`` is the same source frame in both) and then keeps output
frames ``[start_frame, end_frame)`` with ``trim`` on the fps filter's 1/fps time base: exact frame
indices, no rounding of seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from media_pipeline.ffmpeg import (
    AUDIO_FILE,
    AUDIO_FILTER,
    DEINTERLACE,
    ffmpeg_preamble,
    input_options,
    rung_file,
    rung_outputs,
    split_into_rungs,
)
from media_pipeline.ladder import AUDIO_BITRATE_KBPS, GOP_SECONDS, Rung, gop_frames, output_fps

# Seek this far before a chunk's first frame: the fps filter then sees the source frames around the
# boundary exactly as the unchunked encode does, and ffmpeg's seek rounding cannot cost a frame.
SEEK_MARGIN_SECONDS = 1.0
# Containers whose index lets ffmpeg seek to the keyframe at or before a time. Others (MPEG-TS, raw
# streams) may land after it (a TS with 10-second GOPs lost whole GOPs here), so a chunk of such a
# source decodes from the start and drops the frames before it: slower, never wrong.
SEEKABLE_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm"}
CONCAT_LIST = "concat.txt"


@dataclass(frozen=True)
class Chunk:
    index: int
    start_frame: int  # first output frame (at the output frame rate), a multiple of the GOP
    end_frame: int | None  # first frame after the chunk; None for the last chunk: up to the end


def chunk_frames(*, fps: float, chunk_seconds: int) -> int:
    """Output frames per chunk: a whole number of GOPs."""
    if chunk_seconds < GOP_SECONDS or chunk_seconds % GOP_SECONDS:
        raise ValueError(f"chunk length {chunk_seconds} s is not a multiple of the {GOP_SECONDS}-second GOP")
    return gop_frames(output_fps(fps)) * (chunk_seconds // GOP_SECONDS)


def plan_chunks(*, duration: float, source_fps: float, chunk_seconds: int) -> list[Chunk]:
    """Chunks of ``chunk_seconds`` of output; the last one runs to the end of the source.

    The frame count is known only approximately from the probe, so the last chunk is open-ended, and a
    remainder shorter than one GOP is folded into it (a chunk can then never start past the end).
    """
    per = chunk_frames(fps=source_fps, chunk_seconds=chunk_seconds)
    gop = gop_frames(output_fps(source_fps))
    total = duration * output_fps(source_fps)
    count = max(1, math.ceil(total / per))
    if count > 1 and total - (count - 1) * per < gop:
        count -= 1
    return [
        Chunk(index=i, start_frame=i * per, end_frame=(i + 1) * per if i < count - 1 else None) for i in range(count)
    ]


def seekable(format_name: str) -> bool:
    """Whether ffprobe's ``format_name`` (e.g. ``mov,mp4,m4a,3gp,3g2,mj2``) names an indexed container."""
    return bool(SEEKABLE_FORMATS & set(format_name.split(",")))


def chunk_input_args(*, chunk: Chunk, source_fps: float, seek: bool = True) -> list[str]:
    """Input options placed before ``-i``: keep source timestamps (shifted to start at zero, as an
    unchunked encode does) and, when the container allows it, seek to just before the chunk."""
    args = ["-copyts", "-start_at_zero"]
    position = chunk.start_frame / output_fps(source_fps) - SEEK_MARGIN_SECONDS
    if seek and position > 0:
        args += ["-ss", f"{position:.6f}"]
    return args


def chunk_video_filter(*, chunk: Chunk, source_fps: float) -> str:
    """The unchunked encode's fps filter, then exactly this chunk's output frames, shifted so that its
    first frame is at 0. Shifted by the frame index, not to the first frame that arrives: a seek that
    landed late then shows as a chunk that starts after 0 (see ``frame_count_command``)."""
    fps = output_fps(source_fps)
    end = "" if chunk.end_frame is None else f":end_pts={chunk.end_frame}"
    return f"fps={fps},trim=start_pts={chunk.start_frame}{end},setpts=PTS-{chunk.start_frame}"


def chunk_encode_command(
    *,
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    rungs: list[Rung],
    source_fps: float,
    chunk: Chunk,
    seek: bool = True,
    preset: str = "veryfast",
    threads: int = 0,
    interlaced: bool = False,
) -> list[str]:
    """One ffmpeg process for one chunk: decode once, ``split`` into every rung; no audio.

    The filter graph after the frame selection and the per-rung outputs are ``ffmpeg.encode_command``'s
    (the same functions), less the faststart rewrite, which the joined file gets.
    """
    deinterlace = DEINTERLACE + "," if interlaced else ""
    head = f"[0:V:0]{deinterlace}{chunk_video_filter(chunk=chunk, source_fps=source_fps)}"
    command = [
        *ffmpeg_preamble(ffmpeg, progress=True),
        *input_options(threads=threads), *chunk_input_args(chunk=chunk, source_fps=source_fps, seek=seek),
        "-i", str(source),
        "-filter_complex", split_into_rungs(head, rungs),
    ]  # fmt: skip
    if threads:
        command += ["-filter_complex_threads", str(threads)]
    gop = gop_frames(output_fps(source_fps))
    return command + rung_outputs(
        rungs=rungs, out_dir=out_dir, gop=gop, preset=preset, threads=threads, faststart=False
    )


def audio_encode_command(*, ffmpeg: str, source: Path, out_dir: Path, threads: int = 0) -> list[str]:
    """The whole programme's audio rendition, as ``ffmpeg.encode_command`` writes it, in its own process."""
    return [
        *ffmpeg_preamble(ffmpeg, progress=True),
        *input_options(threads=threads), "-i", str(source),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-filter:a", AUDIO_FILTER,
        "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k",
        "-map_metadata", "-1",
        str(out_dir / AUDIO_FILE),
    ]  # fmt: skip


def chunk_file(index: int, name: str) -> str:
    """Local and storage name of one chunk's output for one rung, e.g. ``c0003_video_360p.mp4``."""
    return f"c{index:04d}_{name}"


def concat_list(*, rung: Rung, chunks: list[Chunk], fps: float) -> str:
    """An ffconcat list joining one rung's chunks (files next to the list). Each chunk but the last
    states its exact duration (its frame count / fps), so the next one starts at exactly that time."""
    lines = ["ffconcat version 1.0"]
    for chunk in chunks:
        lines.append(f"file {chunk_file(chunk.index, rung_file(rung))}")
        if chunk.end_frame is not None:
            lines.append(f"duration {(chunk.end_frame - chunk.start_frame) / fps:.6f}")
    return "\n".join(lines) + "\n"


def join_command(*, ffmpeg: str, concat_file: Path, target: Path) -> list[str]:
    """One rung's chunks into one stream with continuous timestamps, without re-encoding."""
    return [
        *ffmpeg_preamble(ffmpeg),
        "-protocol_whitelist", "file",
        "-f", "concat", "-i", str(concat_file),
        "-map", "0:v:0", "-c", "copy", "-map_metadata", "-1", "-movflags", "+faststart",
        str(target),
    ]  # fmt: skip


def frame_count_command(*, ffprobe: str, path: Path) -> list[str]:
    """Prints ``<start time>,<frames>`` of an encoded chunk's video: a chunk must start at 0 and, unless
    it is the last, hold exactly its frames."""
    return [
        ffprobe, "-v", "error", "-protocol_whitelist", "file", "-select_streams", "v:0",
        "-count_packets", "-show_entries", "stream=start_time,nb_read_packets", "-of", "csv=p=0", str(path),
    ]  # fmt: skip
