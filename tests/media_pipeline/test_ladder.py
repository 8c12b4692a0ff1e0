from __future__ import annotations

from media_pipeline.ladder import Rung, gop_frames, output_fps, plan_ladder


def _sizes(rungs: list[Rung]) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in rungs]


def test_1080p_source_gets_four_rungs_with_capped_rates() -> None:
    rungs = plan_ladder(width=1920, height=1080, fps=30)
    assert _sizes(rungs) == [("1080p", 1920, 1080), ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]
    assert [(r.maxrate_kbps, r.bufsize_kbps, r.crf) for r in rungs] == [
        (5000, 10000, 23), (3000, 6000, 23), (1400, 2800, 24), (800, 1600, 25),
    ]  # fmt: skip


def test_720p_source_is_never_upscaled() -> None:
    assert _sizes(plan_ladder(width=1280, height=720, fps=25)) == [
        ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360), ("240p", 426, 240),
    ]  # fmt: skip


def test_small_source_still_gets_three_rungs() -> None:
    assert _sizes(plan_ladder(width=640, height=360, fps=25)) == [
        ("360p", 640, 360), ("240p", 426, 240), ("144p", 256, 144),
    ]  # fmt: skip


def test_portrait_phone_video_keeps_portrait_orientation() -> None:
    assert _sizes(plan_ladder(width=1080, height=1920, fps=30)) == [
        ("1080p", 1080, 1920), ("720p", 720, 1280), ("480p", 480, 854), ("360p", 360, 640),
    ]  # fmt: skip


def test_4_3_sd_source_keeps_its_aspect() -> None:
    assert _sizes(plan_ladder(width=720, height=540, fps=25)) == [
        ("480p", 640, 480), ("360p", 480, 360), ("240p", 320, 240), ("144p", 192, 144),
    ]  # fmt: skip


def test_odd_dimensions_become_even() -> None:
    rungs = plan_ladder(width=1279, height=719, fps=30)
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in rungs)
    assert rungs[0].name == "480p"  # 719 lines are fewer than 720: no upscale to 720p


def test_tiny_source_gets_one_rung_at_its_own_size() -> None:
    assert _sizes(plan_ladder(width=120, height=90, fps=15)) == [("90p", 120, 90)]


def test_high_frame_rates_cost_more_and_stay_at_most_60() -> None:
    assert plan_ladder(width=1280, height=720, fps=60)[0].maxrate_kbps == 4500
    assert output_fps(60) == 60
    assert output_fps(120) == 60
    assert output_fps(29.97) == 29.97


def test_gop_is_two_seconds_of_frames() -> None:
    assert gop_frames(25) == 50
    assert gop_frames(29.97) == 60
    assert gop_frames(60) == 120
