"""The quick first stream's decisions and its one ffmpeg command: pure (steps.provisional runs them).

One ffmpeg reads the source from its standard input (media_pipeline.source_reader feeds it the index
first, then the media in order) and writes, as it goes, CMAF segments through its HLS muxer: either
the source's own H.264/AAC packets (``remux``) when every browser decodes them, or one fast H.264 rung
of at most 360p with the full ladder's 2-second closed GOPs plus stereo AAC (``fast-rung``); for the
fast rung a third output writes the poster frame (the frames are decoded anyway). Segments appear
whole (``temp_file``: written under another name, then renamed); the playlists ffmpeg writes are not
used (growing_manifests writes ours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from media_pipeline.ffmpeg import DEINTERLACE, ffmpeg_preamble
from media_pipeline.ladder import AUDIO_BITRATE_KBPS, GOP_SECONDS, Rung, gop_frames, output_fps
from media_pipeline.probe import FORMAT_WHITELIST, parse_probe

# Profiles every MSE browser decodes (8-bit 4:2:0); High 10, 4:2:2 and 4:4:4 are not among them.
BROWSER_H264_PROFILES = {"Constrained Baseline", "Baseline", "Main", "High"}
BROWSER_PIXEL_FORMATS = {"yuv420p", "yuvj420p"}
# Containers whose H.264 and AAC are copied as they are (ffprobe's format names).
REMUX_FORMATS = {"mov", "mp4", "mpegts"}
# A remuxed segment ends at the first source keyframe at least GOP_SECONDS after it began, so its
# length is at most GOP_SECONDS plus the source's keyframe distance; a source whose first segment is
# longer than MAX_REMUX_SEGMENT_SECONDS is encoded instead (players stall on such segments).
MAX_KEYFRAME_SECONDS = 10
MAX_REMUX_SEGMENT_SECONDS = MAX_KEYFRAME_SECONDS + GOP_SECONDS
FAST_RUNG_MAX_SHORT_SIDE = 360
FAST_PRESET = "superfast"
# x264's output depends on its thread count: a fixed count makes a resumed encode write the same bytes
# as the run it replaces, on any machine (x264 is deterministic unless told otherwise).
FAST_RUNG_THREADS = 4
REMUX, FAST_RUNG = "remux", "fast-rung"
VIDEO, AUDIO = "video", "audio"
POSTER_MAX_HEIGHT = 720


def remux_refusal(data: dict[str, Any]) -> str | None:
    """Why the source (ffprobe's JSON) cannot be served as it is; None when it can."""
    streams = data.get("streams") or []
    videos = [
        s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        return "no video stream"
    video = videos[0]
    formats = set(str((data.get("format") or {}).get("format_name") or "").split(","))
    if not formats & REMUX_FORMATS:
        return f"container {'/'.join(sorted(formats))}"
    if video.get("codec_name") != "h264":
        return f"video codec {video.get('codec_name')}"
    if video.get("profile") not in BROWSER_H264_PROFILES:
        return f"H.264 profile {video.get('profile')}"
    if video.get("pix_fmt") not in BROWSER_PIXEL_FORMATS:
        return f"pixel format {video.get('pix_fmt')}"
    if video.get("field_order") not in (None, "progressive", "unknown"):
        return "interlaced"
    if parse_probe(data).rotation:
        return "rotated"  # players ignore the container's display matrix
    if audios and (audios[0].get("codec_name") != "aac" or int(audios[0].get("channels") or 0) > 2):
        return f"audio {audios[0].get('codec_name')} with {audios[0].get('channels')} channels"
    return None


def fast_rung(ladder: list[dict[str, Any]]) -> Rung:
    """The largest rung of the planned ladder at most 360p (the smallest when none is)."""
    rungs = sorted((Rung(**rung) for rung in ladder), key=lambda rung: rung.width * rung.height, reverse=True)
    return next((r for r in rungs if min(r.width, r.height) <= FAST_RUNG_MAX_SHORT_SIDE), rungs[-1])


def _hls_output(out: Path, name: str) -> list[str]:
    """ffmpeg's HLS muxer writing CMAF segments ``<name>/<n>.m4s`` (from 0) and ``<name>/init.mp4``."""
    return [
        "-f", "hls", "-hls_time", str(GOP_SECONDS), "-hls_playlist_type", "event",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(out / name / "%d.m4s"), "-hls_flags", "temp_file",
        str(out / name / "ffmpeg.m3u8"),
    ]  # fmt: skip


def quick_stream_command(
    *,
    ffmpeg: str,
    out: Path,
    kind: str,
    rung: Rung,
    source_fps: float,
    has_audio: bool,
    poster_at: float,
    threads: int = 0,
    interlaced: bool = False,
    read_rate: float = 0.0,
) -> list[str]:
    """The source on stdin -> growing CMAF segments in ``out/video`` and ``out/audio``, and (fast rung)
    ``out/poster.jpg``. ``read_rate`` (tests, demos): read the input at that multiple of real time."""
    deinterlace = DEINTERLACE + "," if interlaced else ""
    command = [
        *ffmpeg_preamble(ffmpeg),
        # The input is the pipe from the worker and nothing else: no file, no network, no playlist.
        "-protocol_whitelist", "pipe", "-format_whitelist", FORMAT_WHITELIST, "-threads", str(threads),
        *(["-readrate", f"{read_rate:g}"] if read_rate else []),
        # Any error stops it with a failure: ffmpeg otherwise ends "successfully" where a damaged input
        # stops, and a stream cut short would be closed as if it were whole.
        "-xerror",
        "-i", "pipe:0",
        "-map", "0:V:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
    ]  # fmt: skip
    if kind == REMUX:
        command += ["-c:v", "copy"]
    else:
        fps = output_fps(source_fps)
        gop = gop_frames(fps)
        command += [
            "-vf", f"{deinterlace}fps={fps},scale={rung.width}:{rung.height}:flags=bilinear,setsar=1,format=yuv420p",
            "-c:v", "libx264", "-preset", FAST_PRESET, "-profile:v", "high",
            "-crf", str(rung.crf), "-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-flags", "+cgop",
            # No B-frames: the first frame is then presented at 0, like the audio (with B-frames it came
            # two frames later, and Shaka Player, started at 0, stalled on that gap before jumping it);
            # and the encoder holds no frames back for them, so the first segment is written sooner.
            "-bf", "0",
            "-threads", str(FAST_RUNG_THREADS),
        ]  # fmt: skip
    command += _hls_output(out, VIDEO)
    if has_audio:
        command += ["-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1"]
        if kind == REMUX:
            command += ["-c:a", "copy"]
        else:
            # No loudness normalisation (a filter that costs more than this small encode); the full version has it.
            command += [
                "-filter:a", "aformat=channel_layouts=stereo,aresample=48000",
                "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k",
            ]  # fmt: skip
        command += _hls_output(out, AUDIO)
    if kind == REMUX:
        # No poster output here: decoding the source up to the poster frame would hold back every
        # output (ffmpeg feeds them all from one demuxer), so the first segment came 0.5 s later.
        # steps.provisional makes the poster from the copied segment that holds its frame instead.
        return command
    command += [
        "-map", "0:V:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-vf", f"{deinterlace}select='gte(t\\,{poster_at:.3f})',"
        f"scale=-2:'min({POSTER_MAX_HEIGHT},ih)':flags=lanczos,setsar=1,format=yuvj420p",
        "-frames:v", "1", "-q:v", "3", "-f", "image2", "-update", "1", "-atomic_writing", "1",
        str(out / "poster.jpg"),
    ]  # fmt: skip
    return command
