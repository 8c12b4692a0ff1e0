"""The embedded default's secrets: random files under VAR_DIR, made by an explicit step.

Settings only read these files (config/settings.py writes nothing when it is imported). They are
created, once, by ``python -m config.secret_files`` (VAR_DIR from the environment, ``./var`` by
default), which `make run` (scripts/run.py) and the test harness (tests/harness.py) call before
anything loads the settings. An existing file is never replaced: sessions and sealed data survive
restarts. Production sets ``SECRET_KEY``, ``CONTENT_KEY_SECRET`` and ``LTI_KEY_PASSPHRASE`` (or
their ``_FILE`` forms) instead: in a production configuration (``production_reasons`` below) these
files are never read, and the settings refuse to start without the three variables.

No Django here: the step runs before any settings exist.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# File name under VAR_DIR -> the setting it stands in for.
EMBEDDED_SECRETS = {
    "secret_key": "SECRET_KEY",
    "content_key_secret": "CONTENT_KEY_SECRET",
    "lti_key_passphrase": "LTI_KEY_PASSPHRASE",
}
_TOKEN_BYTES = {"secret_key": 50, "content_key_secret": 48, "lti_key_passphrase": 48}


# Set by `make run` (scripts/run.py) next to the REDIS_URL of the Valkey server it started itself.
EMBEDDED_REDIS_MARKER = "REDIS_EMBEDDED"


def _value(environ: Mapping[str, str], name: str) -> str:
    """NAME, or the content of the file NAME_FILE names (an unreadable one counts as set: the
    settings then stop on it with their own message)."""
    file_name = environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError:
            return "?"
    return environ.get(name, "").strip()


def production_reasons(environ: Mapping[str, str]) -> list[str]:
    """Why this environment is a production configuration; empty for the embedded default.

    Any one of these makes it production, where SECRET_KEY, CONTENT_KEY_SECRET and LTI_KEY_PASSPHRASE
    must come from the environment (or NAME_FILE) and the files made here are never read: HTTPS=1,
    DEBUG set to false explicitly, a DATABASE_URL that is not SQLite, a REDIS_URL other than the
    Valkey `make run` starts (which it marks with REDIS_EMBEDDED=1), S3 storage or several regions.
    """
    reasons = []
    if _value(environ, "HTTPS").lower() in {"1", "true", "yes", "on"}:
        reasons.append("HTTPS=1")
    if _value(environ, "DEBUG").lower() in {"0", "false", "no", "off"}:
        reasons.append("DEBUG=0")
    database = _value(environ, "DATABASE_URL")
    if database and not database.lower().startswith("sqlite"):
        reasons.append(f"DATABASE_URL is a {database.split(':', 1)[0]} server")
    if _value(environ, "REDIS_URL") and environ.get(EMBEDDED_REDIS_MARKER) != "1":
        reasons.append(f"REDIS_URL is set (only `make run` marks its own Valkey with {EMBEDDED_REDIS_MARKER}=1)")
    if _value(environ, "STORAGE_BACKEND").lower() == "s3":
        reasons.append("STORAGE_BACKEND=s3")
    if _value(environ, "STORAGE_REGIONS"):
        reasons.append("STORAGE_REGIONS is set")
    return reasons


def var_dir_from_env() -> Path:
    """VAR_DIR as config/settings.py resolves it."""
    return Path(os.environ.get("VAR_DIR") or ROOT / "var").resolve()


def embedded_secrets_create(*, var_dir: Path) -> list[Path]:
    """Create VAR_DIR and every missing secret file (random, 0600); return the files it created."""
    var_dir.mkdir(parents=True, exist_ok=True)
    created = []
    for name in EMBEDDED_SECRETS:
        path = var_dir / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # kept across restarts (and safe when two steps race)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(_TOKEN_BYTES[name]))
        created.append(path)
    return created


def embedded_secret_read(*, var_dir: Path, name: str) -> str | None:
    """The secret in VAR_DIR/<name>, or None when there is no such file (or it is empty)."""
    try:
        return (var_dir / name).read_text().strip() or None
    except FileNotFoundError:
        return None


def main(argv: Sequence[str]) -> int:
    var_dir = Path(argv[0]).resolve() if argv else var_dir_from_env()
    for path in embedded_secrets_create(var_dir=var_dir):
        print(f"secret_files: created {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
