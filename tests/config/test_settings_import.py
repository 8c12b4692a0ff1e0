"""Importing the settings only reads: no file, no folder; a value it cannot read stops it there.

Each case imports config/settings.py (and sets Django up) in a fresh process, the way the web process and
the Dramatiq workers do: they run no system checks, so a bad value must fail the import itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup(); from django.conf import settings; print(settings.VAR_DIR)"
SECRETS = {"SECRET_KEY": "k" * 50, "CONTENT_KEY_SECRET": "c" * 40, "LTI_KEY_PASSPHRASE": "p" * 40}


def _import_settings(**variables: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **variables,
    }
    return subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_importing_the_settings_writes_nothing_into_an_empty_var_dir(tmp_path: Path) -> None:
    completed = _import_settings(VAR_DIR=str(tmp_path), **SECRETS)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_importing_the_settings_creates_no_var_dir(tmp_path: Path) -> None:
    # The embedded defaults (SQLite and media under VAR_DIR) but for the secrets, which are given.
    variables = {"VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": "", "STORAGE_BACKEND": "local", **SECRETS}
    completed = _import_settings(**variables)
    assert completed.returncode == 0, completed.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND='ftp' must be one of local, s3"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DB_CONN_MAX_AGE": "-1"}, "DB_CONN_MAX_AGE=-1 must be at least 0"),
        ({"MEDIA_CHUNK_SECONDS": "61"}, "MEDIA_CHUNK_SECONDS=61 must be a multiple of 2"),
        ({"DATABASE_URL": "ftp://user:pw@db.example/lessons"}, "DATABASE_URL: Scheme 'ftp://' is unknown"),
        ({"TRUSTED_PROXIES": "lb.internal"}, "TRUSTED_PROXIES: 'lb.internal' is not an IP address or network"),
        ({"OUTBOUND_HTTP_ALLOW": "10.0.0.0/33"}, "OUTBOUND_HTTP_ALLOW: '10.0.0.0/33' is not an IP address"),
        ({"THROTTLE_DRM_KEY": "many"}, "THROTTLE_DRM_KEY: 'many' is not a rate"),
        ({"SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE='/nonexistent/secret' cannot be read"),
        (
            {
                "PLAYBACK_SIGNER": "cloudfront",
                "PLAYBACK_EDGE_URL": "https://cdn.example",
                "PLAYBACK_CLOUDFRONT_KEY_PAIR_ID": "K1",
                "PLAYBACK_CLOUDFRONT_PRIVATE_KEY": "not a key",
            },
            "PLAYBACK_CLOUDFRONT_PRIVATE_KEY is not an unencrypted PEM private key",
        ),
        (
            {"PLAYBACK_SIGNER": "akamai", "PLAYBACK_EDGE_URL": "https://cdn.example", "PLAYBACK_AKAMAI_KEY": "xyz"},
            "PLAYBACK_AKAMAI_KEY must be the hex key shown in Akamai's property manager",
        ),
        ({"STORAGE_REGIONS": "EU"}, "STORAGE_REGIONS: 'EU' is not a region name"),
    ],
    ids=["choice", "bool", "int", "multiple", "url", "proxies", "outbound", "rate", "file", "cloudfront-key",
         "akamai-key", "region-name"],
)  # fmt: skip
def test_a_bad_value_stops_the_import_with_its_name(tmp_path: Path, variables: dict[str, str], message: str) -> None:
    completed = _import_settings(VAR_DIR=str(tmp_path), **SECRETS, **variables)
    assert completed.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in completed.stderr
    assert "pw@" not in completed.stderr  # a URL's password is never echoed
    assert list(tmp_path.iterdir()) == []
