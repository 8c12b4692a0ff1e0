"""The sliding-window throttle (playback/throttles.py) against the harness's Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.test import RequestFactory
from pytest_django import Settings

from playback import throttles

pytestmark = pytest.mark.services  # Redis, through the module's own client


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    throttles.throttles_clear()
    yield
    throttles.throttles_clear()


def _request(ip: str = "192.0.2.1") -> HttpRequest:
    request = RequestFactory().post("/", REMOTE_ADDR=ip)
    request.user = AnonymousUser()
    return request


def test_at_most_the_rate_in_any_window_and_refusals_do_not_count(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.THROTTLE_DRM_KEY = "3/s"
    clock = [1000.0]
    monkeypatch.setattr(throttles.time, "time", lambda: clock[0])
    throttle = throttles.KeyThrottle()
    assert [throttle.allow_request(_request(), None) for _ in range(3)] == [True, True, True]
    clock[0] += 0.5
    assert throttle.allow_request(_request(), None) is False
    assert throttle.wait() == pytest.approx(0.5)
    assert throttle.allow_request(_request(), None) is False  # refusals do not push the window on
    assert throttle.allow_request(_request("192.0.2.2"), None) is True  # counted per client
    clock[0] += 0.51  # the first three left the window
    assert [throttle.allow_request(_request(), None) for _ in range(4)] == [True, True, True, False]


def test_concurrent_requests_never_exceed_the_rate(settings: Settings) -> None:
    settings.THROTTLE_PLAYBACK_SESSION = "20/min"
    allowed: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def client() -> None:
        start.wait()
        for _ in range(10):
            verdict = throttles.PlaybackSessionThrottle().allow_request(_request(), None)
            with lock:
                allowed.append(verdict)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 80
    assert sum(allowed) == 20


def test_refusal_response_says_when_to_retry(settings: Settings) -> None:
    settings.THROTTLE_DRM_LICENSE = "1/min"
    throttle = throttles.LicenseThrottle()
    assert throttles.throttle_refusal(throttle, _request()) is None
    started = time.time()
    refused = throttles.throttle_refusal(throttles.LicenseThrottle(), _request())
    assert refused is not None and refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60 and time.time() - started < 5
    assert refused["Cache-Control"] == "no-store"


def test_a_spoofed_x_forwarded_for_does_not_change_the_throttle_key(settings: Settings) -> None:
    throttle = throttles.PlaybackSessionThrottle()
    settings.TRUSTED_PROXIES = []
    keys = set()
    for forwarded in ("198.51.100.1", "198.51.100.2", "10.0.0.1, 198.51.100.3"):
        request = _request("203.0.113.5")
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
        keys.add(throttle.key_for(request))
    assert keys == {"throttle:playback-session:ip:203.0.113.5"}
    # Only from a trusted proxy does the header name the viewer (its rightmost untrusted entry).
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = _request("203.0.113.5")
    request.META["HTTP_X_FORWARDED_FOR"] = "198.51.100.1"
    assert throttle.key_for(request) == "throttle:playback-session:ip:203.0.113.5"
    request = _request("10.0.0.2")
    request.META["HTTP_X_FORWARDED_FOR"] = "6.6.6.6, 198.51.100.1"
    assert throttle.key_for(request) == "throttle:playback-session:ip:198.51.100.1"


def test_spoofing_x_forwarded_for_does_not_escape_the_throttle(settings: Settings) -> None:
    settings.THROTTLE_DRM_KEY = "2/min"
    throttle = throttles.KeyThrottle()
    verdicts = []
    for n in range(4):
        request = _request("203.0.113.5")
        request.META["HTTP_X_FORWARDED_FOR"] = f"198.51.100.{n}"
        verdicts.append(throttle.allow_request(request, None))
    assert verdicts == [True, True, False, False]
