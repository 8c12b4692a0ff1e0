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

Reading only a chunk's range (docs/adr/0029): the build's first step rewrites the source's video, without
re-encoding, into one fragmented MP4 with a fragment starting at each keyframe (at most one a second)
and the source's own timestamps (``split_command``), and its audio into a small file of its own. A
chunk worker then fetches the init segment and the byte range of the fragments from the keyframe
before its seek margin to past its end (``chunk_byte_ranges``): init plus consecutive fragments is a
playable local file, and the decoder sees exactly the packets and timestamps it would see in the source.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
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
from media_pipeline.probe import FORMAT_WHITELIST

# Seek this far before a chunk's first frame: the fps filter then sees the source frames around the
# boundary exactly as the unchunked encode does, and ffmpeg's seek rounding cannot cost a frame.
SEEK_MARGIN_SECONDS = 1.0
# Containers whose index lets ffmpeg seek to the keyframe at or before a time. Others (MPEG-TS, raw
# streams) may land after it (a TS with 10-second GOPs lost whole GOPs here), so a chunk of such a
# source decodes from the start and drops the frames before it: slower, never wrong.
SEEKABLE_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm"}
CONCAT_LIST = "concat.txt"
# Fragments of the split video start at a keyframe and last at least this long (an intra-only source
# would otherwise make one fragment per frame).
MIN_FRAGMENT_MICROSECONDS = 1_000_000
# The split's fragmented MP4: a fragment at each keyframe, and the moov written once the first fragment
# is known (delay_moov), so that its edit list keeps the source's start (a B-frame delay, a transport
# stream starting at 1.4 s): with an empty moov every timestamp came out shifted by the first frame's
# decode delay.
SPLIT_MOVFLAGS = "+frag_keyframe+delay_moov+default_base_moof"


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


def chunk_input_args(
    *, chunk: Chunk, source_fps: float, seek: bool = True, source_start: str | None = None
) -> list[str]:
    """Input options placed before ``-i``: keep source timestamps (shifted to start at zero, as an
    unchunked encode does) and, when the container allows it, seek to just before the chunk.

    ``source_start``: the input is the chunk's piece of the split source (``split_command``), which
    carries the source's timestamps but starts later: it is shifted by the *source's* start time (in
    microseconds, ffprobe's ``format=start_time``, as ``-start_at_zero`` would on the source) and read
    from its first packet, a keyframe before the chunk's seek margin."""
    if source_start is not None:
        return ["-copyts", "-itsoffset", _negate(source_start)]
    args = ["-copyts", "-start_at_zero"]
    position = chunk.start_frame / output_fps(source_fps) - SEEK_MARGIN_SECONDS
    if seek and position > 0:
        args += ["-ss", f"{position:.6f}"]
    return args


def _negate(seconds: str) -> str:
    value = seconds.strip()
    return value[1:] if value.startswith("-") else "-" + value


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
    source_start: str | None = None,
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
        *input_options(threads=threads), *chunk_input_args(chunk=chunk, source_fps=source_fps, seek=seek,
                                                             source_start=source_start),
        "-i", str(source),
        "-filter_complex", split_into_rungs(head, rungs),
    ]  # fmt: skip
    if threads:
        command += ["-filter_complex_threads", str(threads)]
    gop = gop_frames(output_fps(source_fps))
    return command + rung_outputs(
        rungs=rungs, out_dir=out_dir, gop=gop, preset=preset, threads=threads, faststart=False
    )


def audio_encode_command(
    *, ffmpeg: str, source: Path, out_dir: Path, threads: int = 0, source_start: str | None = None
) -> list[str]:
    """The whole programme's audio rendition, as ``ffmpeg.encode_command`` writes it, in its own process.

    ``source_start``: the input is the split's audio file; its timestamps are shifted by the source's
    start time, as the unchunked encode shifts them (not by the audio's own start)."""
    shift = ["-copyts", "-itsoffset", _negate(source_start)] if source_start is not None else []
    return [
        *ffmpeg_preamble(ffmpeg, progress=True),
        *input_options(threads=threads), *shift, "-i", str(source),
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


def split_audio_format(format_name: str) -> str:
    """The container the split's audio is copied into: the source's own kind where its timestamps would
    not survive MP4's (a transport stream's 90 kHz clock, Matroska's milliseconds), else MOV."""
    names = set(format_name.split(","))
    if names & {"matroska", "webm"}:
        return "matroska"
    if "mpegts" in names:
        return "mpegts"
    return "mov"


def split_command(
    *, ffmpeg: str, source: Path, video: Path, audio: Path | None, audio_format: str = "mov", threads: int = 0
) -> list[str]:
    """The source's first video stream, copied (not re-encoded) into a fragmented MP4 whose fragments each
    start at a keyframe, and its first audio stream copied into a file of its own. ``-copyts`` and
    the moov's edit list keep every packet's timestamps exactly as in the source; the display matrix (a
    phone's rotation) goes into the MP4 track header as it was in the source's."""
    command = [
        *ffmpeg_preamble(ffmpeg),
        *input_options(threads=threads), "-copyts", "-i", str(source),
        "-map", "0:V:0", "-c", "copy", "-map_metadata", "-1", "-f", "mov", "-avoid_negative_ts", "disabled",
        "-movflags", SPLIT_MOVFLAGS, "-min_frag_duration", str(MIN_FRAGMENT_MICROSECONDS), str(video),
    ]  # fmt: skip
    if audio is not None:
        # No mux delay: an MPEG-TS muxer would otherwise move every timestamp by 0.7 s.
        audio_output = [
            "-map", "0:a:0", "-c", "copy", "-map_metadata", "-1", "-muxdelay", "0", "-muxpreload", "0",
            "-f", audio_format, str(audio),
        ]  # fmt: skip
        command += audio_output
    return command


def keyframes_command(*, ffprobe: str, path: Path) -> list[str]:
    """Prints ``<pts_time>,<pos>,<flags>`` (ffprobe's order) of every packet of the split video (no decoding)."""
    return [
        ffprobe, "-v", "error", "-protocol_whitelist", "file", "-format_whitelist", FORMAT_WHITELIST,
        "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags,pos", "-of", "csv=p=0", str(path),
    ]  # fmt: skip


def source_format_command(*, ffprobe: str, path: Path) -> list[str]:
    """Prints (JSON) the container's name and start time: ``format.start_time`` is what
    ``-start_at_zero`` subtracts, in whole microseconds as ffprobe prints it."""
    return [
        ffprobe, "-v", "error", "-protocol_whitelist", "file", "-format_whitelist", FORMAT_WHITELIST,
        "-show_entries", "format=format_name,start_time", "-of", "json", str(path),
    ]  # fmt: skip


def top_level_boxes(head: Iterator[tuple[int, bytes]]) -> list[tuple[str, int, int]]:
    """``(type, offset, size)`` of the top-level ISO BMFF boxes, from ``(offset, first 16 bytes)`` pairs
    that ``box_headers`` reads."""
    return [(kind, offset, size) for offset, raw in head for kind, size in [_box_header(raw)]]


def _box_header(raw: bytes) -> tuple[str, int]:
    size, kind = struct.unpack(">I4s", raw[:8])
    if size == 1:
        size = struct.unpack(">Q", raw[8:16])[0]
    if size < 8:
        raise ValueError(f"box {kind!r} has an impossible size {size}")
    return kind.decode("latin-1"), size


def box_headers(path: Path) -> Iterator[tuple[int, bytes]]:
    """Walk a local file's top-level boxes: ``(offset, header bytes)`` each (a box of size 0, "to the end
    of the file", is not written by ffmpeg's fragmented MP4 muxer and is refused)."""
    total = path.stat().st_size
    with path.open("rb") as handle:
        offset = 0
        while offset < total:
            handle.seek(offset)
            raw = handle.read(16)
            _, size = _box_header(raw)
            yield offset, raw
            offset += size


@dataclass(frozen=True)
class Fragment:
    start: int  # byte offset of its moof
    end: int  # byte offset just past its mdat
    time: float  # presentation time of its first keyframe, in source seconds


def fragments(*, boxes: list[tuple[str, int, int]], keyframes: list[tuple[float, int]]) -> tuple[int, list[Fragment]]:
    """The init segment's length (everything before the first ``moof``) and the fragments (each ``moof``
    with the boxes up to the next one), each with the time of the first keyframe in it. ``keyframes``:
    ``(pts_time, pos)`` of the key packets."""
    starts = [offset for kind, offset, _ in boxes if kind == "moof"]
    if not starts:
        raise ValueError("the split video has no fragments")
    last = max(offset + size for kind, offset, size in boxes if kind in {"moof", "mdat"})
    ends = [*starts[1:], last]
    found: list[Fragment] = []
    keys = sorted(keyframes, key=lambda k: k[1])
    position = 0
    for start, end in zip(starts, ends, strict=True):
        while position < len(keys) and keys[position][1] < start:
            position += 1
        if position >= len(keys) or keys[position][1] >= end:
            raise ValueError(f"the fragment at byte {start} does not start with a keyframe")
        found.append(Fragment(start=start, end=end, time=keys[position][0]))
    return starts[0], found


def chunk_byte_range(
    *, fragments: list[Fragment], chunk: Chunk, source_fps: float, source_start: float
) -> tuple[int, int]:
    """Bytes ``[start, end)`` of the split video a chunk needs: from the fragment whose keyframe is at or
    before the chunk's seek margin to the last fragment starting before its end plus the margin (the
    frames the fps filter looks at around the boundary); the last chunk runs to the end."""
    fps = output_fps(source_fps)
    begin = source_start + chunk.start_frame / fps - SEEK_MARGIN_SECONDS
    first = 0
    for index, fragment in enumerate(fragments):
        if fragment.time <= begin:
            first = index
    if chunk.end_frame is None:
        return fragments[first].start, fragments[-1].end
    finish = source_start + chunk.end_frame / fps + SEEK_MARGIN_SECONDS
    last = first
    for index, fragment in enumerate(fragments):
        if fragment.time < finish:
            last = max(last, index)
    return fragments[first].start, fragments[last].end
