"""The client address (config/client_address.py): a forwarded header counts only from a trusted proxy (pure)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from pytest_django import Settings

from config.client_address import Network, client_address, parse_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.10"])
XFF = "X-Forwarded-For"


def _xff(peer: str, value: str | None, trusted: tuple[Network, ...] = PROXIES) -> str:
    return client_address(peer=peer, header_name=XFF, header_value=value, trusted=trusted)


def test_no_trusted_proxies_means_the_peer_whatever_the_header_says() -> None:
    assert _xff("203.0.113.5", "198.51.100.1", trusted=()) == "203.0.113.5"
    assert _xff("10.0.0.1", "198.51.100.1", trusted=()) == "10.0.0.1"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    assert _xff("203.0.113.5", "198.51.100.1") == "203.0.113.5"
    assert _xff("203.0.113.5", "10.0.0.7") == "203.0.113.5"  # claiming to be a proxy changes nothing


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("198.51.100.1", "198.51.100.1"),
        # What the viewer wrote is on the left; the proxy appended what it saw on the right.
        ("6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # Trusted hops are skipped from the right: LB <- internal proxy <- viewer.
        ("6.6.6.6, 198.51.100.1, 10.1.2.3", "198.51.100.1"),
        ("198.51.100.1,10.1.2.3,192.0.2.10", "198.51.100.1"),
        # Every hop trusted: the leftmost is as far as we can see.
        ("10.9.9.9, 10.1.2.3", "10.9.9.9"),
        # Garbage from the right stops at the last address we could believe: never a chosen key.
        ("198.51.100.1, not-an-ip", "10.0.0.1"),
        ("not-an-ip, 198.51.100.1", "198.51.100.1"),
        ("", "10.0.0.1"),
        # Ports and brackets some proxies add; IPv6; IPv4-mapped IPv6 as IPv4.
        ("198.51.100.1:5123", "198.51.100.1"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("2001:db8::7, 2001:db8:ffff::1", "2001:db8::7"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_x_forwarded_for_from_a_trusted_proxy_is_read_right_to_left(forwarded: str, expected: str) -> None:
    assert _xff("10.0.0.1", forwarded) == expected


def test_single_value_headers() -> None:
    def viewer(name: str, value: str) -> str:
        return client_address(peer="10.0.0.1", header_name=name, header_value=value, trusted=PROXIES)

    assert viewer("X-Real-IP", "198.51.100.1") == "198.51.100.1"
    assert viewer("X-Real-IP", "nonsense") == "10.0.0.1"
    assert viewer("CloudFront-Viewer-Address", "198.51.100.10:46532") == "198.51.100.10"
    assert viewer("CloudFront-Viewer-Address", "2001:db8::1:4653") == "2001:db8::1"


def test_a_missing_header_or_header_name_means_the_peer() -> None:
    assert _xff("10.0.0.1", None) == "10.0.0.1"
    assert client_address(peer="10.0.0.1", header_name="", header_value="198.51.100.1", trusted=PROXIES) == "10.0.0.1"


def test_parse_helpers() -> None:
    assert parse_address(" 198.51.100.1 ") == "198.51.100.1"
    assert parse_address("2001:DB8::1") == "2001:db8::1"
    assert parse_address("unknown") == ""
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP address or network"):
        parse_networks(["10.0.0.0/33"])


def test_the_asgi_scope_and_the_django_request_agree(settings: Settings, rf: RequestFactory) -> None:
    from config.client_address import request_client_address, scope_client_address

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    # Two X-Forwarded-For headers: joined in order, as Django's ASGI handler does.
    headers = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"198.51.100.1")]
    scope = {"client": ("10.0.0.1", 5000), "headers": headers}
    assert scope_client_address(scope) == "198.51.100.1"
    assert request_client_address(rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6,198.51.100.1")) == (
        "198.51.100.1"
    )
    scope["client"] = ("203.0.113.9", 5000)
    assert scope_client_address(scope) == "203.0.113.9"
    settings.TRUSTED_PROXIES = []
    assert scope_client_address({"client": ("10.0.0.1", 1), "headers": scope["headers"]}) == "10.0.0.1"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"},
            "TRUSTED_PROXIES: 'lb.internal' is not an IP address or network",
        ),
        # The old name believed the header from anyone: it must now say whom to believe.
        ({"PLAYBACK_CLIENT_IP_HEADER": "X-Real-IP"}, "PLAYBACK_CLIENT_IP_HEADER is now CLIENT_IP_HEADER"),
    ],
    ids=["bad-network", "old-header-alone"],
)
def test_bad_proxy_settings_stop_start_up(variables: dict[str, str], message: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**{k: v for k, v in os.environ.items() if k != "TRUSTED_PROXIES"}, **variables}
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode != 0
    assert message in completed.stderr


def test_the_old_header_setting_names_the_header_once_proxies_are_given() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PLAYBACK_CLIENT_IP_HEADER": "X-Real-IP", "TRUSTED_PROXIES": "10.0.0.0/8"}
    env.pop("CLIENT_IP_HEADER", None)
    code = "from django.conf import settings; print(settings.CLIENT_IP_HEADER, settings.TRUSTED_PROXIES)"
    completed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.stdout.strip().splitlines()[-1] == "X-Real-IP ['10.0.0.0/8']", completed.stderr
