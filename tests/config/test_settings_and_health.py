from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from pytest_django import Settings

from config.env import env_bool, env_choice, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]


def test_env_helpers_parse_and_fail_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a.example, b.example,,")
    assert env_bool("X_BOOL", False) is True
    assert env_int("X_INT", 0) == 42
    assert env_list("X_LIST", []) == ["a.example", "b.example"]
    assert env_str("X_MISSING", "fallback") == "fallback"

    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL='maybe' is not a boolean"):
        env_bool("X_BOOL", False)
    monkeypatch.setenv("X_INT", "forty")
    with pytest.raises(ImproperlyConfigured, match="X_INT='forty' is not an integer"):
        env_int("X_INT", 0)
    monkeypatch.setenv("X_INT", "5")
    with pytest.raises(ImproperlyConfigured, match="X_INT=5 must be at least 10"):
        env_int("X_INT", 0, minimum=10)
    with pytest.raises(ImproperlyConfigured, match="X_REQUIRED must be set"):
        env_str("X_REQUIRED")
    monkeypatch.setenv("X_CHOICE", "ftp")
    with pytest.raises(ImproperlyConfigured, match="X_CHOICE='ftp' must be one of local, s3"):
        env_choice("X_CHOICE", "local", ("local", "s3"))


def test_secrets_can_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-from-a-file\n")
    monkeypatch.setenv("X_SECRET", "ignored")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_str("X_SECRET") == "s3cr3t-from-a-file"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="X_SECRET_FILE=.* cannot be read"):
        env_str("X_SECRET")


def test_the_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text("a-secret-key-from-a-mounted-file-0123456789-abcdefghijklmnop\n")
    env = {
        **os.environ, "SECRET_KEY_FILE": str(secret), "VAR_DIR": str(tmp_path / "var"),
        "CONTENT_KEY_SECRET": "c" * 40, "LTI_KEY_PASSPHRASE": "p" * 40,
    }  # fmt: skip
    show_key = "from django.conf import settings; print(settings.SECRET_KEY)"
    completed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", show_key],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "a-secret-key-from-a-mounted-file-0123456789-abcdefghijklmnop"
    assert not (tmp_path / "var").exists()  # no embedded key generated, no folder made


def test_healthz() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


READY_CHECKS = {"database": "ok", "migrations": "ok", "broker": "ok", "storage": "ok", "static": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_broker_and_storage() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": READY_CHECKS}


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_down(settings: Settings) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == "error: ConnectionError"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] == "ok"


@pytest.mark.django_db
def test_readyz_is_503_until_the_front_end_is_collected(settings: Settings, tmp_path: Path) -> None:
    from config.health import REQUIRED_STATIC

    # Production's manifest storage, over a STATIC_ROOT where collectstatic has not put the player yet.
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    manifest = {"version": "1.1", "hash": "0", "paths": {name: name for name in REQUIRED_STATIC[1:]}}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest))
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {**READY_CHECKS, "static": "error: StaticFilesMissing"}
    # collectstatic's manifest names every file the pages load: ready.
    manifest["paths"] = {name: name for name in REQUIRED_STATIC}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest))
    settings.STATIC_ROOT = tmp_path  # a manifest is read when the storage starts: as a restarted process would
    response = Client().get("/readyz")
    assert (response.status_code, response.json()["checks"]) == (200, READY_CHECKS)


@pytest.mark.services  # the harness's Redis and S3 beside a fresh SQLite database
def test_readyz_is_503_until_every_migration_is_applied(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
    }
    # The static files are found where they are (no collectstatic here): only the database differs.
    probe = (
        "import django, json; django.setup(); from django.conf import settings; from django.test import Client; "
        "from django.test.utils import override_settings; "
        "static = {**settings.STORAGES, 'staticfiles': "
        "{'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'}}\n"
        "with override_settings(STORAGES=static): r = Client(HTTP_HOST='127.0.0.1').get('/readyz')\n"
        "print(r.status_code, json.dumps(r.json()['checks']))"
    )

    def readyz() -> tuple[int, dict[str, str]]:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        status, checks = done.stdout.strip().splitlines()[-1].split(" ", 1)
        return int(status), json.loads(checks)

    # A database that answers but has no tables yet: not ready (it was "ok" before issue 15).
    status, checks = readyz()
    assert (status, checks) == (503, {**READY_CHECKS, "migrations": "error: NotMigrated"})
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    assert readyz() == (200, READY_CHECKS)


@pytest.mark.django_db
def test_metrics_are_exposed_for_prometheus() -> None:
    Client().get("/healthz")
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


@pytest.mark.services  # the harness's PostgreSQL, Redis and S3 as the production components
def test_check_deploy_passes_with_production_settings(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DEBUG": "0",
        "HTTPS": "1",
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
        "ALLOWED_HOSTS": "example.org",
        "CSRF_TRUSTED_ORIGINS": "https://example.org",
        "VAR_DIR": str(tmp_path),
        # Secrets that seal data at rest are required on their own in production (tests/config/test_secrets.py).
        "CONTENT_KEY_SECRET": "production-content-key-secret-0123456789abcdef",
        "LTI_KEY_PASSPHRASE": "production-lti-key-passphrase-0123456789abcdef",
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert "System check identified no issues (1 silenced)." in completed.stdout
    # It checked the production components, not the embedded defaults.
    assert env["STORAGE_BACKEND"] == "s3" and env["DATABASE_URL"].startswith("postgres://")


def test_the_nginx_signer_needs_its_edge_and_secret() -> None:
    env = {**os.environ, "PLAYBACK_SIGNER": "nginx", "PLAYBACK_EDGE_URL": "https://edge.example.org"}
    env.pop("PLAYBACK_NGINX_SECRET", None)
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode != 0
    assert "(lessons.E001) PLAYBACK_SIGNER=nginx needs PLAYBACK_NGINX_SECRET" in completed.stderr
    env["PLAYBACK_NGINX_SECRET"] = "s3cret"
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr


def test_a_cloudfront_key_can_come_from_a_file(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "cloudfront.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    env = {
        **os.environ,
        "PLAYBACK_SIGNER": "cloudfront",
        "PLAYBACK_EDGE_URL": "https://cdn.example",
        "PLAYBACK_CLOUDFRONT_KEY_PAIR_ID": "K2JCJMDEHXQW5F",
        "PLAYBACK_CLOUDFRONT_PRIVATE_KEY_FILE": str(pem),
        "PLAYBACK_TOKEN_BINDING": "ip",
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
