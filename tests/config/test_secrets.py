"""Secrets: the ones that seal data at rest are separate and required in production; the embedded
default reads random files of its own that an explicit step makes (config/secret_files.py, run by
`make run` and the test harness); the token secrets are derived from SECRET_KEY per use (HKDF)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.secret_files import embedded_secrets_create

ROOT = Path(__file__).resolve().parents[2]
NAMES = (
    "SECRET_KEY", "CONTENT_KEY_SECRET", "CONTENT_KEY_SECRETS_OLD", "LTI_KEY_PASSPHRASE", "LTI_KEY_PASSPHRASES_OLD",
    "PLAYBACK_TOKEN_SECRET", "DRM_LICENSE_TOKEN_SECRET", "VIEW_TOKEN_SECRET",
)  # fmt: skip
SHOW = f"from django.conf import settings as s; import json; print(json.dumps({{n: getattr(s, n) for n in {NAMES!r}}}))"


# What makes a configuration production (config/secret_files.py: production_reasons): left out, so
# these tests see the embedded default unless they set one on purpose.
PRODUCTION_VARIABLES = ("DATABASE_URL", "REDIS_URL", "STORAGE_BACKEND", "STORAGE_REGIONS", "DEBUG", "HTTPS")
PRODUCTION_SECRETS = {"SECRET_KEY": "k" * 50, "CONTENT_KEY_SECRET": "c" * 40, "LTI_KEY_PASSPHRASE": "p" * 40}


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "REDIS_EMBEDDED"}
        and not k.startswith(NAMES)
        and not k.startswith(PRODUCTION_VARIABLES)
    }
    return {**keep, "VAR_DIR": str(tmp_path), "SECRET_KEY": "k" * 50, **variables}


def _run(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW],
        cwd=ROOT, env=_env(tmp_path, **variables), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_step_makes_separate_random_secret_files_once_and_the_settings_read_them(tmp_path: Path) -> None:
    var = tmp_path / "var"
    made = subprocess.run(
        [sys.executable, "-m", "config.secret_files"],
        cwd=ROOT, env=_env(var), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    files = {name: (var / name).read_text() for name in ("secret_key", "content_key_secret", "lti_key_passphrase")}
    assert sorted(p.name for p in var.iterdir()) == sorted(files)
    assert len(set(files.values())) == 3 and all(len(value) >= 64 for value in files.values())
    assert {oct(path.stat().st_mode & 0o777) for path in var.iterdir()} == {"0o600"}
    # A second run keeps every file (sessions and sealed data survive restarts).
    assert embedded_secrets_create(var_dir=var) == []
    assert {name: (var / name).read_text() for name in files} == files

    first = json.loads(_run(var).stdout)
    assert (first["CONTENT_KEY_SECRET"], first["LTI_KEY_PASSPHRASE"]) == (
        files["content_key_secret"], files["lti_key_passphrase"],
    )  # fmt: skip
    # What SECRET_KEY sealed before these secrets had files of their own still opens (and is re-sealed
    # by content_keys_reseal / lti_keys_reencrypt).
    assert first["CONTENT_KEY_SECRETS_OLD"] == first["LTI_KEY_PASSPHRASES_OLD"] == ["k" * 50]
    # Without SECRET_KEY in the environment, the embedded default reads its file.
    without_key = {k: v for k, v in _env(var).items() if k != "SECRET_KEY"}
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW],
        cwd=ROOT, env=without_key, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert json.loads(shown.stdout)["SECRET_KEY"] == files["secret_key"]


def test_without_the_files_the_settings_say_how_to_make_them_and_make_nothing(tmp_path: Path) -> None:
    for name, variables in (("SECRET_KEY", {"SECRET_KEY": ""}), ("CONTENT_KEY_SECRET", {})):
        completed = _run(tmp_path, **variables)
        assert completed.returncode != 0
        assert (
            f"ImproperlyConfigured: {name} is not set and {tmp_path / name.lower()} does not exist: "
            f"set {name} (or {name}_FILE), or make the embedded default's secret files with "
            "`python -m config.secret_files`"
        ) in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_token_secrets_are_derived_per_use_and_none_is_the_secret_key(tmp_path: Path) -> None:
    embedded_secrets_create(var_dir=tmp_path)
    shown = json.loads(_run(tmp_path).stdout)
    derived = [shown[n] for n in ("PLAYBACK_TOKEN_SECRET", "DRM_LICENSE_TOKEN_SECRET", "VIEW_TOKEN_SECRET")]
    assert len(set(derived)) == 3 and "k" * 50 not in derived and all(len(d) == 64 for d in derived)
    other = json.loads(_run(tmp_path, SECRET_KEY="z" * 50).stdout)
    assert {other[n] for n in ("PLAYBACK_TOKEN_SECRET", "DRM_LICENSE_TOKEN_SECRET")}.isdisjoint(derived)
    assert json.loads(_run(tmp_path, PLAYBACK_TOKEN_SECRET="set-on-its-own").stdout)["PLAYBACK_TOKEN_SECRET"] == (
        "set-on-its-own"
    )


PRODUCTION_TRIGGERS = {
    "https": ({"HTTPS": "1"}, "HTTPS=1"),
    "debug-0": ({"DEBUG": "0"}, "DEBUG=0"),
    "debug-false": ({"DEBUG": "false"}, "DEBUG=0"),
    "postgresql": (
        {"DATABASE_URL": "postgres://lessons@db.internal:5432/lessons"},
        "DATABASE_URL is a postgres server",
    ),
    "redis": (
        {"REDIS_URL": "redis://redis.internal:6379/0"},
        "REDIS_URL is set (only `make run` marks its own Valkey with REDIS_EMBEDDED=1)",
    ),
    "s3": (
        {"STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "a", "S3_SECRET_ACCESS_KEY": "s"},
        "STORAGE_BACKEND=s3",
    ),
    "regions": (
        {"STORAGE_REGIONS": "eu", "REGION_EU_BACKEND": "local", "REGION_EU_LOCAL_PATH": "/srv"},
        "STORAGE_REGIONS is set",
    ),
}


@pytest.mark.parametrize("trigger", sorted(PRODUCTION_TRIGGERS))
def test_a_production_configuration_refuses_to_start_without_every_secret_in_the_environment(
    tmp_path: Path, trigger: str
) -> None:
    # The embedded default's files are there, and still never read: production needs its own secrets.
    embedded_secrets_create(var_dir=tmp_path)
    variables, reason = PRODUCTION_TRIGGERS[trigger]
    completed = _run(tmp_path, SECRET_KEY="", **variables)
    assert completed.returncode != 0
    assert (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY, CONTENT_KEY_SECRET, LTI_KEY_PASSPHRASE must be "
        f"set in a production configuration ({reason}). Give each one in the environment, or as NAME_FILE, the "
        "path of a file holding it: a long random value of its own, the same on every machine of the deployment, "
        "kept with the backups (`python -c 'import secrets; print(secrets.token_urlsafe(50))'`). The embedded "
        'default\'s secret files under VAR_DIR are never read in production. See docs/operations.md, "Secrets".'
    ) in completed.stderr, completed.stderr
    # One missing is named alone; with all three set (one as a file) the same configuration starts.
    partial = _run(tmp_path, **{**PRODUCTION_SECRETS, "LTI_KEY_PASSPHRASE": ""}, **variables)
    assert "ImproperlyConfigured: LTI_KEY_PASSPHRASE must be set in a production configuration" in partial.stderr
    secret_file = tmp_path / "lti-passphrase"
    secret_file.write_text("f" * 40 + "\n")
    given = {**PRODUCTION_SECRETS, "LTI_KEY_PASSPHRASE": "", "LTI_KEY_PASSPHRASE_FILE": str(secret_file)}
    started = _run(tmp_path, **given, **variables)
    assert started.returncode == 0, started.stderr
    shown = json.loads(started.stdout)
    assert (shown["SECRET_KEY"], shown["CONTENT_KEY_SECRET"], shown["LTI_KEY_PASSPHRASE"]) == (
        "k" * 50, "c" * 40, "f" * 40,
    )  # fmt: skip
    assert shown["CONTENT_KEY_SECRETS_OLD"] == shown["LTI_KEY_PASSPHRASES_OLD"] == []  # SECRET_KEY opens nothing


def test_the_embedded_default_and_make_runs_own_valkey_still_read_the_secret_files(tmp_path: Path) -> None:
    files = embedded_secrets_create(var_dir=tmp_path)
    assert len(files) == 3
    embedded = [
        {},
        {"DEBUG": "1"},
        {"REDIS_URL": "redis://127.0.0.1:6391/0", "REDIS_EMBEDDED": "1"},
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "STORAGE_BACKEND": "local"},
    ]
    for variables in embedded:
        completed = _run(tmp_path, SECRET_KEY="", **variables)
        assert completed.returncode == 0, (variables, completed.stderr)
        assert json.loads(completed.stdout)["SECRET_KEY"] == (tmp_path / "secret_key").read_text()


def test_production_reads_old_secrets_for_rotation(tmp_path: Path) -> None:
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
