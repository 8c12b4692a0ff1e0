"""Secrets: the ones that seal data at rest are separate and required in production; the embedded
default keeps random files of its own; the token secrets are derived from SECRET_KEY per use (HKDF)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = (
    "SECRET_KEY", "CONTENT_KEY_SECRET", "CONTENT_KEY_SECRETS_OLD", "LTI_KEY_PASSPHRASE", "LTI_KEY_PASSPHRASES_OLD",
    "PLAYBACK_TOKEN_SECRET", "DRM_LICENSE_TOKEN_SECRET", "VIEW_TOKEN_SECRET",
)  # fmt: skip
SHOW = f"from django.conf import settings as s; import json; print(json.dumps({{n: getattr(s, n) for n in {NAMES!r}}}))"


def _run(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE" and not k.startswith(NAMES)}
    env = {**keep, "VAR_DIR": str(tmp_path), "SECRET_KEY": "k" * 50, "HTTPS": "0", **variables}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_embedded_default_keeps_separate_random_secrets_under_var_dir(tmp_path: Path) -> None:
    first = json.loads(_run(tmp_path).stdout)
    content, lti = (
        (tmp_path / "content_key_secret").read_text().strip(),
        (tmp_path / "lti_key_passphrase").read_text().strip(),
    )
    assert (first["CONTENT_KEY_SECRET"], first["LTI_KEY_PASSPHRASE"]) == (content, lti)
    assert len({content, lti, "k" * 50}) == 3 and len(content) >= 48
    assert oct((tmp_path / "content_key_secret").stat().st_mode & 0o777) == "0o600"
    # What SECRET_KEY sealed before these secrets had files of their own still opens (and is re-sealed
    # by content_keys_reseal / lti_keys_reencrypt).
    assert first["CONTENT_KEY_SECRETS_OLD"] == first["LTI_KEY_PASSPHRASES_OLD"] == ["k" * 50]
    assert json.loads(_run(tmp_path).stdout) == first  # the files are kept across restarts


def test_token_secrets_are_derived_per_use_and_none_is_the_secret_key(tmp_path: Path) -> None:
    shown = json.loads(_run(tmp_path).stdout)
    derived = [shown[n] for n in ("PLAYBACK_TOKEN_SECRET", "DRM_LICENSE_TOKEN_SECRET", "VIEW_TOKEN_SECRET")]
    assert len(set(derived)) == 3 and "k" * 50 not in derived and all(len(d) == 64 for d in derived)
    other = json.loads(_run(tmp_path, SECRET_KEY="z" * 50).stdout)
    assert {other[n] for n in ("PLAYBACK_TOKEN_SECRET", "DRM_LICENSE_TOKEN_SECRET")}.isdisjoint(derived)
    assert json.loads(_run(tmp_path, PLAYBACK_TOKEN_SECRET="set-on-its-own").stdout)["PLAYBACK_TOKEN_SECRET"] == (
        "set-on-its-own"
    )


def test_production_needs_the_secrets_at_rest_set_and_reads_old_ones_for_rotation(tmp_path: Path) -> None:
    for missing in ("CONTENT_KEY_SECRET", "LTI_KEY_PASSPHRASE"):
        given = {"CONTENT_KEY_SECRET": "c" * 40, "LTI_KEY_PASSPHRASE": "p" * 40}
        del given[missing]
        completed = _run(tmp_path, HTTPS="1", **given)
        assert completed.returncode != 0
        assert f"{missing} (or {missing}_FILE) must be set with HTTPS=1" in completed.stderr
    old_file = tmp_path / "old-passphrases"
    old_file.write_text("p1\np2\n")
    shown = json.loads(
        _run(
            tmp_path, HTTPS="1", CONTENT_KEY_SECRET="c" * 40, CONTENT_KEY_SECRET_OLD="o1, o2",
            LTI_KEY_PASSPHRASE="p" * 40, LTI_KEY_PASSPHRASE_OLD_FILE=str(old_file),
        ).stdout
    )  # fmt: skip
    assert (shown["CONTENT_KEY_SECRET"], shown["CONTENT_KEY_SECRETS_OLD"]) == ("c" * 40, ["o1", "o2"])
    assert (shown["LTI_KEY_PASSPHRASE"], shown["LTI_KEY_PASSPHRASES_OLD"]) == ("p" * 40, ["p1", "p2"])
