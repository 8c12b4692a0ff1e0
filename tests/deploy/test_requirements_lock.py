"""requirements.lock (the image's packages, `make lock`) still locks what requirements.txt pins."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(text: str) -> dict[str, str]:
    return {_normalised(name): version for name, version in PIN.findall(text)}


def test_every_pin_of_requirements_txt_is_locked_at_its_version() -> None:
    wanted = _pins((ROOT / "requirements.txt").read_text())
    locked = _pins((ROOT / "requirements.lock").read_text())
    stale = {name: (version, locked.get(name)) for name, version in wanted.items() if locked.get(name) != version}
    assert not stale, f"requirements.lock is stale (run `make lock`): {stale}"


def test_every_locked_package_carries_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[-1] if text.startswith("#") else text)
    entries = [block for block in blocks if PIN.match(block)]
    assert len(entries) == len(_pins(text)) > 20
    assert all("--hash=sha256:" in entry for entry in entries)
