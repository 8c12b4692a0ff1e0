"""The benchmark baselines are derived from our own encode command; these check the derivations, so a
change to encode_command cannot silently turn a baseline into something else."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.encoding import fixed_bitrate_command, null_output_command, per_rung_commands
from media_pipeline.ffmpeg import encode_command
from media_pipeline.ladder import plan_ladder
from media_pipeline.probe import ProbeResult

RUNGS = plan_ladder(width=1920, height=1080, fps=30)
OUT = Path("/tmp/out")


def _ours(*, has_audio: bool = True) -> list[str]:
    return encode_command(ffmpeg="ffmpeg", source=Path("/tmp/src.mp4"), out_dir=OUT, rungs=RUNGS, source_fps=30,
                          has_audio=has_audio)  # fmt: skip


def _values(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == flag]


def _without(command: list[str], flag: str) -> list[str]:
    drop = {i for i, arg in enumerate(command) if arg == flag}
    return [arg for i, arg in enumerate(command) if i not in drop and i - 1 not in drop]


def test_fixed_bitrate_ladder_targets_each_rungs_maxrate_and_changes_nothing_else() -> None:
    ours = _ours()
    fixed = fixed_bitrate_command(ours, RUNGS)
    assert _values(fixed, "-crf") == []
    assert _values(fixed, "-b:v") == ["5000k", "3000k", "1400k", "800k"]
    assert _values(fixed, "-maxrate") == _values(ours, "-maxrate") == ["5000k", "3000k", "1400k", "800k"]
    assert _without(fixed, "-b:v") == _without(ours, "-crf")


def test_fixed_bitrate_refuses_a_command_without_one_crf_per_rung() -> None:
    with pytest.raises(ValueError, match="one -crf per rung"):
        fixed_bitrate_command(_ours(), RUNGS + RUNGS[:1])


def test_null_floor_encodes_the_same_outputs_to_null_without_muxing_options() -> None:
    ours = _ours()
    floor = null_output_command(ours, OUT)
    assert floor.count("null") == len(RUNGS) + 1  # every rung and the audio rendition
    assert not any(arg.startswith(str(OUT)) for arg in floor)
    assert "-progress" not in floor and "+faststart" not in floor
    assert _values(floor, "-crf") == _values(ours, "-crf")
    assert _values(floor, "-filter_complex") == _values(ours, "-filter_complex")


def test_per_rung_baseline_is_one_decode_per_rung_with_audio_once() -> None:
    probe = ProbeResult(duration=60, width=1920, height=1080, fps=30, rotation=0, video_codec="h264",
                        has_audio=True, audio_codec="aac", audio_channels=2)  # fmt: skip
    tools = type("T", (), {"ffmpeg": "ffmpeg", "preset": "veryfast", "threads": 0})()
    # tools: a stand-in with only the three attributes per_rung_commands reads.
    commands = per_rung_commands(tools, Path("/tmp/src.mp4"), OUT, RUNGS, probe)  # type: ignore[arg-type]
    assert [c.count("-i") for c in commands] == [1, 1, 1, 1]
    assert [_values(c, "-crf") for c in commands] == [["23"], ["23"], ["24"], ["25"]]
    assert [c.count("-c:a") for c in commands] == [1, 0, 0, 0]
