"""bench/mediacms.py rebuilds MediaCMS's published encode (files/helpers.py); this pins the arguments
the ladder-quality benchmark compares against, so an edit cannot drift from what MediaCMS runs."""

from __future__ import annotations

from pathlib import Path

from bench.mediacms import rung_command


def _value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_a_1080p_rung_is_crf_23_capped_at_one_and_a_half_times_4500k_with_preset_faster() -> None:
    command = rung_command(ffmpeg="ffmpeg", source=Path("/s.mp4"), output=Path("/o.mp4"), height=1080, fps=30)
    assert _value(command, "-crf") == "23"
    assert _value(command, "-maxrate") == _value(command, "-bufsize") == "6750k"
    assert _value(command, "-preset") == "faster"
    assert _value(command, "-profile:v") == "main"
    assert _value(command, "-x264-params") == "keyint=240:keyint_min=120"
    assert _value(command, "-force_key_frames") == "expr:gte(t,n_forced*4)"
    assert _value(command, "-filter:v").endswith("flags=lanczos,fps=fps=30")
    assert command.count("-i") == 1 and "-an" in command and command[-1] == "/o.mp4"


def test_rungs_under_720_lines_use_preset_medium_and_their_own_target_rate() -> None:
    for height, maxrate in ((480, "1500k"), (360, "750k")):
        command = rung_command(ffmpeg="ffmpeg", source=Path("/s.mp4"), output=Path("/o.mp4"), height=height, fps=30)
        assert _value(command, "-preset") == "medium"
        assert _value(command, "-maxrate") == maxrate


def test_the_sweep_varies_only_crf_and_preset() -> None:
    base = rung_command(ffmpeg="ffmpeg", source=Path("/s.mp4"), output=Path("/o.mp4"), height=720, fps=30)
    swept = rung_command(ffmpeg="ffmpeg", source=Path("/s.mp4"), output=Path("/o.mp4"), height=720, fps=30,
                         crf=19, preset="medium")  # fmt: skip
    changed = [i for i, (a, b) in enumerate(zip(base, swept, strict=True)) if a != b]
    assert [base[i - 1] for i in changed] == ["-crf", "-preset"]
    assert [swept[i] for i in changed] == ["19", "medium"]
