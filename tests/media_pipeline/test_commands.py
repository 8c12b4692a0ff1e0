from __future__ import annotations

from pathlib import Path

from media_pipeline.ffmpeg import (
    cover_extract_command,
    encode_command,
    parse_progress_seconds,
    poster_command,
    waveform_poster_command,
)
from media_pipeline.ladder import plan_ladder
from media_pipeline.packager import ladder_inputs, package_command, single_file_inputs
from media_pipeline.tools import last_error_line


def _option_values(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == option]


def test_encode_decodes_once_and_splits_into_every_rung() -> None:
    rungs = plan_ladder(width=1280, height=720, fps=25)
    command = encode_command(
        ffmpeg="ffmpeg", source=Path("/w/source"), out_dir=Path("/w/enc"), rungs=rungs, source_fps=25, has_audio=True
    )
    assert command.count("-i") == 1
    assert command[:3] == ["ffmpeg", "-nostdin", "-hide_banner"]
    assert _option_values(command, "-protocol_whitelist") == ["file"]
    graph = _option_values(command, "-filter_complex")[0]
    assert graph.startswith("[0:V:0]fps=25,split=4[v0][v1][v2][v3];")  # never an attached cover picture
    assert "[v1]scale=854:480:flags=lanczos,setsar=1,format=yuv420p[out1]" in graph
    assert _option_values(command, "-map") == ["[out0]", "[out1]", "[out2]", "[out3]", "0:a:0"]
    # Aligned two-second closed GOPs in every rung.
    assert _option_values(command, "-g") == ["50"] * 4
    assert _option_values(command, "-keyint_min") == ["50"] * 4
    assert _option_values(command, "-sc_threshold") == ["0"] * 4
    assert _option_values(command, "-maxrate") == ["3000k", "1400k", "800k", "450k"]
    assert _option_values(command, "-crf") == ["23", "24", "25", "26"]
    assert [arg for arg in command if arg.startswith("/w/enc/")] == [
        "/w/enc/video_720p.mp4", "/w/enc/video_480p.mp4", "/w/enc/video_360p.mp4", "/w/enc/video_240p.mp4",
        "/w/enc/audio.mp4",
    ]  # fmt: skip
    # Surround sound is downmixed to stereo first, then brought to EBU R128 loudness, then 48 kHz AAC.
    assert _option_values(command, "-filter:a") == [
        "aformat=channel_layouts=stereo,loudnorm=I=-16:LRA=11:TP=-1.5,aresample=48000"
    ]
    assert _option_values(command, "-ac") == []  # no downmix after the loudness filter
    assert _option_values(command, "-c:a") == ["aac"]
    assert _option_values(command, "-format_whitelist")[0].startswith("mov,mp4,")


def test_encode_without_audio_has_no_audio_output() -> None:
    command = encode_command(
        ffmpeg="ffmpeg", source=Path("s"), out_dir=Path("o"), rungs=plan_ladder(width=640, height=360, fps=50),
        source_fps=50, has_audio=False,
    )  # fmt: skip
    assert "0:a:0" not in command
    assert "o/audio.mp4" not in command
    assert _option_values(command, "-g") == ["100"] * 3


def test_interlaced_sources_are_deinterlaced_before_the_rate_is_made_constant() -> None:
    rungs = plan_ladder(width=720, height=576, fps=25)
    command = encode_command(
        ffmpeg="ffmpeg", source=Path("s"), out_dir=Path("o"), rungs=rungs, source_fps=25, has_audio=True,
        interlaced=True, threads=2,
    )  # fmt: skip
    graph = _option_values(command, "-filter_complex")[0]
    assert graph.startswith("[0:V:0]bwdif=mode=send_frame:parity=auto:deint=all,fps=25,split=")
    assert _option_values(command, "-filter_complex_threads") == ["2"]
    poster = poster_command(ffmpeg="ffmpeg", source=Path("s"), target=Path("p.jpg"), at_seconds=1, max_height=720,
                            interlaced=True)  # fmt: skip
    assert _option_values(poster, "-vf")[0].startswith("bwdif=mode=send_frame:parity=auto:deint=all,scale=")


def test_a_sound_only_lesson_encodes_only_the_audio_rendition() -> None:
    command = encode_command(ffmpeg="ffmpeg", source=Path("s"), out_dir=Path("o"), rungs=[], source_fps=0,
                             has_audio=True)  # fmt: skip
    assert "-filter_complex" not in command and "-c:v" not in command
    assert _option_values(command, "-map") == ["0:a:0"]
    assert command[-1] == "o/audio.mp4"
    package = package_command(
        packager="packager", inputs=ladder_inputs(work_dir=Path("/w/enc"), rungs=[], has_audio=True)
    )
    assert [arg for arg in package if arg.startswith("in=")] == [
        "in=/w/enc/audio.mp4,stream=audio,init_segment=audio/init.mp4,segment_template=audio/$Number$.m4s,"
        "playlist_name=audio.m3u8,hls_group_id=audio,hls_name=Audio"
    ]


def test_sound_only_posters_use_the_cover_or_draw_the_waveform() -> None:
    cover = cover_extract_command(ffmpeg="ffmpeg", source=Path("s"), target=Path("cover-picture"))
    assert _option_values(cover, "-map") == ["0:v:0"]  # the attached picture: the only video stream
    assert _option_values(cover, "-c") == ["copy"]  # copied out as it is, decoded by cover_picture.py
    assert _option_values(cover, "-frames:v") == ["1"]
    waveform = waveform_poster_command(ffmpeg="ffmpeg", source=Path("s"), target=Path("p.jpg"))
    assert "showwavespic=s=1280x720" in _option_values(waveform, "-filter_complex")[0]
    assert _option_values(waveform, "-map") == ["[pic]"]


def test_package_writes_cmaf_once_for_hls_and_static_dash() -> None:
    rungs = plan_ladder(width=640, height=360, fps=25)
    command = package_command(
        packager="packager", inputs=ladder_inputs(work_dir=Path("/w/enc"), rungs=rungs, has_audio=True)
    )
    assert command[1] == (
        "in=/w/enc/video_360p.mp4,stream=video,init_segment=video_360p/init.mp4,"
        "segment_template=video_360p/$Number$.m4s,playlist_name=video_360p.m3u8"
    )
    assert command[4] == (
        "in=/w/enc/audio.mp4,stream=audio,init_segment=audio/init.mp4,segment_template=audio/$Number$.m4s,"
        "playlist_name=audio.m3u8,hls_group_id=audio,hls_name=Audio"
    )
    assert command[5:] == [
        "--segment_duration", "2", "--hls_playlist_type", "VOD", "--hls_master_playlist_output", "master.m3u8",
        "--mpd_output", "manifest.mpd", "--generate_static_live_mpd",
    ]  # fmt: skip


def test_the_provisional_stream_is_one_file_per_stream_in_an_on_demand_mpd() -> None:
    source = Path("/w/source")
    command = package_command(packager="packager", inputs=single_file_inputs(video=source, audio=source))
    assert command == [
        "packager",
        "in=/w/source,stream=video,output=video.mp4,playlist_name=video.m3u8",
        "in=/w/source,stream=audio,output=audio.mp4,playlist_name=audio.m3u8,hls_group_id=audio,hls_name=Audio",
        "--segment_duration", "2", "--hls_playlist_type", "VOD", "--hls_master_playlist_output", "master.m3u8",
        "--mpd_output", "manifest.mpd",
    ]  # fmt: skip
    silent = package_command(packager="packager", inputs=single_file_inputs(video=source, audio=None))
    assert [arg for arg in silent if arg.startswith("in=")] == [command[1]]


def test_poster_never_upscales() -> None:
    command = poster_command(ffmpeg="ffmpeg", source=Path("s"), target=Path("p.jpg"), at_seconds=2, max_height=720)
    assert _option_values(command, "-vf") == ["scale=-2:'min(720,ih)':flags=lanczos,setsar=1,format=yuvj420p"]
    assert _option_values(command, "-map") == ["0:V:0"]
    assert _option_values(command, "-ss") == ["2.000"]


def test_progress_lines() -> None:
    assert parse_progress_seconds("out_time_us=2500000") == 2.5
    assert parse_progress_seconds("out_time_ms=1000000") == 1.0
    assert parse_progress_seconds("out_time_us=N/A") is None
    assert parse_progress_seconds("frame=12") is None


def test_last_error_line_strips_log_prefixes() -> None:
    stderr = "noise\nE1125 02:36:20.850398    6909 packager_main.cc:678] Failed to initialize packager\n"
    assert last_error_line(stderr) == "Failed to initialize packager"
    assert last_error_line("") == "unknown error"
