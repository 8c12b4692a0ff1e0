"""The cross-setting system checks (config/checks.py): silent on the defaults, each one fires on its
bad combination, and `manage.py check --deploy` reports them by id."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import CheckMessage, Error, run_checks
from pytest_django import Settings

from config.checks import (
    axinom_has_its_key,
    client_ip_header_needs_proxies,
    playback_signer_complete,
    session_binding_at_the_origin,
    storage_regions_consistent,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKS: list[Callable[..., list[CheckMessage]]] = [
    playback_signer_complete, session_binding_at_the_origin, client_ip_header_needs_proxies, axinom_has_its_key,
    storage_regions_consistent,
]  # fmt: skip


def _ids(messages: list[CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def _region(name: str, *, primary: bool) -> dict[str, Any]:
    return {"name": name, "backend": "local", "location": f"/srv/{name}", "primary": primary, "base_url": "",
            "countries": []}  # fmt: skip


def test_the_defaults_pass_every_check() -> None:
    assert [check() for check in CHECKS] == [[]] * len(CHECKS)
    assert _ids(run_checks(tags=["settings"])) == []
    assert _ids(run_checks(tags=["settings"], include_deployment_checks=True)) == []


@pytest.mark.parametrize(
    ("signer", "given", "missing"),
    [
        ("nginx", {"PLAYBACK_EDGE_URL": "https://edge.example"}, "PLAYBACK_NGINX_SECRET"),
        ("cloudfront", {"PLAYBACK_EDGE_URL": "https://cdn.example"},
         "PLAYBACK_CLOUDFRONT_KEY_PAIR_ID and PLAYBACK_CLOUDFRONT_PRIVATE_KEY"),
        ("akamai", {"PLAYBACK_AKAMAI_KEY": "0a0b"}, "PLAYBACK_EDGE_URL"),
    ],
)  # fmt: skip
def test_a_cdn_signer_without_its_settings_is_an_error(
    settings: Settings, signer: str, given: dict[str, str], missing: str
) -> None:
    settings.PLAYBACK_SIGNER = signer
    for name in ("PLAYBACK_EDGE_URL", "PLAYBACK_NGINX_SECRET", "PLAYBACK_CLOUDFRONT_KEY_PAIR_ID",
                 "PLAYBACK_CLOUDFRONT_PRIVATE_KEY", "PLAYBACK_AKAMAI_KEY"):  # fmt: skip
        setattr(settings, name, given.get(name, ""))
    [message] = playback_signer_complete()
    assert isinstance(message, Error) and message.id == "lessons.E001"
    assert message.msg == f"PLAYBACK_SIGNER={signer} needs {missing}"
    settings.PLAYBACK_NGINX_SECRET = settings.PLAYBACK_EDGE_URL = "set"
    settings.PLAYBACK_CLOUDFRONT_KEY_PAIR_ID = settings.PLAYBACK_CLOUDFRONT_PRIVATE_KEY = "set"
    settings.PLAYBACK_AKAMAI_KEY = "0a0b"
    assert playback_signer_complete() == []


def test_session_binding_needs_the_origin_signer(settings: Settings) -> None:
    settings.PLAYBACK_TOKEN_BINDING = "session"
    assert session_binding_at_the_origin() == []  # the origin sees sessions
    settings.PLAYBACK_SIGNER = "akamai"
    [message] = session_binding_at_the_origin()
    assert isinstance(message, Error) and message.id == "lessons.E002"
    assert message.msg.startswith("PLAYBACK_TOKEN_BINDING=session needs PLAYBACK_SIGNER=origin")
    settings.PLAYBACK_TOKEN_BINDING = "ip"
    assert session_binding_at_the_origin() == []


def test_the_old_client_ip_header_needs_trusted_proxies(settings: Settings) -> None:
    settings.PLAYBACK_CLIENT_IP_HEADER = "X-Real-IP"
    settings.TRUSTED_PROXIES = []
    assert _ids(client_ip_header_needs_proxies()) == ["lessons.E003"]
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip_header_needs_proxies() == []


def test_axinom_needs_its_communication_key(settings: Settings) -> None:
    settings.DRM_PROVIDER = "axinom"
    settings.AXINOM_COM_KEY_ID, settings.AXINOM_COM_KEY = "a1b2", ""
    [message] = axinom_has_its_key()
    assert (message.id, message.msg) == (
        "lessons.E004",
        "DRM_PROVIDER=axinom needs AXINOM_COM_KEY_ID and AXINOM_COM_KEY",
    )
    settings.AXINOM_COM_KEY = "c2VjcmV0"
    assert axinom_has_its_key() == []


def test_storage_regions_must_have_distinct_names_and_a_primary(settings: Settings) -> None:
    settings.STORAGE_REGIONS = [_region("eu", primary=True), _region("us", primary=False)]
    assert storage_regions_consistent() == []
    settings.STORAGE_REGIONS = [_region("eu", primary=True), _region("eu", primary=True)]
    assert [(m.id, m.msg) for m in storage_regions_consistent()] == [
        ("lessons.E005", "STORAGE_REGIONS names a region twice: eu")
    ]
    settings.STORAGE_REGIONS = [_region("eu", primary=False), _region("us", primary=False)]
    assert [(m.id, m.msg) for m in storage_regions_consistent()] == [
        ("lessons.E006", "STORAGE_PRIMARY_REGION is not in STORAGE_REGIONS (eu, us)")
    ]


def test_check_deploy_reports_every_bad_combination_by_id(tmp_path: Path) -> None:
    """From the environment, as an operator would meet them: each value is readable (the settings
    import), the combinations are not, and `check --deploy` names every one."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE" and not k.startswith("REGION_")},
        "DEBUG": "0", "HTTPS": "1", "ALLOWED_HOSTS": "example.org", "CSRF_TRUSTED_ORIGINS": "https://example.org",
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789", "VAR_DIR": str(tmp_path),
        "CONTENT_KEY_SECRET": "c" * 40, "LTI_KEY_PASSPHRASE": "p" * 40,
        "PLAYBACK_SIGNER": "nginx", "PLAYBACK_EDGE_URL": "https://edge.example.org", "PLAYBACK_NGINX_SECRET": "",
        "PLAYBACK_TOKEN_BINDING": "session", "PLAYBACK_CLIENT_IP_HEADER": "X-Real-IP", "TRUSTED_PROXIES": "",
        "DRM_PROVIDER": "axinom", "STORAGE_REGIONS": "eu,eu", "STORAGE_PRIMARY_REGION": "us",
        "REGION_EU_BACKEND": "local", "REGION_EU_LOCAL_PATH": str(tmp_path / "eu"),
    }  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 1
    for number in range(1, 7):
        assert f"(lessons.E00{number}) " in completed.stderr, completed.stderr
    assert "ImproperlyConfigured" not in completed.stderr
    assert list(tmp_path.iterdir()) == []
