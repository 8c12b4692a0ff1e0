"""run_with_progress against stand-in tools: chatty stderr, progress, failure and a hung process."""

from __future__ import annotations

import sys
import time

import pytest

from media_pipeline.ffmpeg import run_with_progress
from media_pipeline.tools import ToolFailed


def _tool(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def test_a_tool_that_logs_more_than_a_pipe_holds_still_finishes() -> None:
    # 1 MiB on stderr before the first progress line: with stderr on an unread pipe the tool would
    # block on its write while we wait on its stdout, and neither side would ever move.
    script = (
        "import sys\n"
        "sys.stderr.write('warning: frame dropped\\n' * 50000); sys.stderr.flush()\n"
        "print('out_time_us=5000000', flush=True)\n"
        "print('progress=end', flush=True)\n"
    )
    reported: list[int] = []
    started = time.monotonic()
    run_with_progress(_tool(script), duration=10.0, timeout=30, on_progress=reported.append, every_seconds=0)
    assert time.monotonic() - started < 20
    assert reported == [50]


def test_a_failure_reports_the_last_stderr_line_even_after_a_flood() -> None:
    script = (
        "import sys\n"
        "sys.stderr.write('noise\\n' * 20000)\n"
        "sys.stderr.write('Invalid data found when processing input\\n')\n"
        "sys.exit(1)\n"
    )
    with pytest.raises(ToolFailed) as raised:
        run_with_progress(_tool(script), duration=10.0, timeout=30)
    assert str(raised.value) == "ffmpeg failed: Invalid data found when processing input"
    assert raised.value.stderr.count("noise") == 20000


def test_progress_is_whole_percent_capped_at_99() -> None:
    script = "for us in (2500000, 5000000, 10000000, 12000000):\n    print(f'out_time_us={us}', flush=True)\n"
    reported: list[int] = []
    run_with_progress(_tool(script), duration=10.0, timeout=30, on_progress=reported.append, every_seconds=0)
    assert reported == [25, 50, 99, 99]


def test_a_tool_that_hangs_silently_is_killed_at_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(ToolFailed, match="timed out after 1 s"):
        run_with_progress(_tool("import time; time.sleep(60)"), duration=10.0, timeout=1)
    assert time.monotonic() - started < 10
