from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Frame, Page, sync_playwright
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

if TYPE_CHECKING:
    from courses.models import Lesson
    from tests.lti.platform_emulator import PlatformEmulator

CHROMIUM = "/usr/bin/chromium"
# Flags seen working on these machines (see FIELD-NOTES): no sandbox as root, no background
# network traffic to hosts we cannot reach, autoplay allowed so the test needs no click.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop running in the test thread while it is started;
    # the ORM calls these tests make there are still synchronous (Playwright's documented
    # workaround for Django). Scoped to the browser's life so no other test runs with it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    # Playwright gives the browser a fresh temporary profile of its own.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def strict_browser(browser: Browser) -> Iterator[Browser]:
    """Chromium with third-party cookies phased out (Chrome's testing switch)."""
    strict = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--test-third-party-cookie-phaseout"]
    )
    yield strict
    strict.close()


@pytest.fixture
def lms(live_server: LiveServer, settings: Settings) -> Iterator[PlatformEmulator]:
    """An emulated LMS (tests/lti/platform_emulator.py) on http://127.0.0.1:<port>, registered with the
    tool (live_server, http://localhost:<port>): its course page embeds the tool in a cross-site iframe,
    where the tool's cookies are third-party."""
    from lti import tokens
    from lti.platforms import platform_register
    from outbound.addresses import parse_networks
    from tests.lti.conftest import start_emulator

    settings.SITE_URL = live_server.url
    settings.LTI_JWKS_REFETCH_COOLDOWN_SECONDS = 0
    # The default with HTTPS=1: pages loaded in the LMS's iframe send SameSite=None; Secure; Partitioned
    # session and CSRF cookies (lti/middleware.py); the rest of the site keeps Lax.
    settings.LTI_IFRAME_COOKIES = True
    settings.OUTBOUND_HTTP_ALLOW_NETWORKS = parse_networks(["127.0.0.1/32"])
    tokens.jwks_cache_clear()
    with start_emulator(tool_url=live_server.url, host="127.0.0.1") as emulator:
        platform_register(**emulator.registration_args, deployment_ids=[emulator.deployment_id])
        yield emulator
    tokens.jwks_cache_clear()


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """Pages of the default browser, each in a context of its own (own cookies and storage)."""
    yield from pages_of(browser, request)


@pytest.fixture
def new_strict_page(strict_browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """As new_page, in Chromium with third-party cookies phased out."""
    yield from pages_of(strict_browser, request)


def pages_of(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """The body of a page-making fixture: yields a function that opens a page in a new context of
    ``browser``; afterwards closes them all without letting their last requests reach the database."""
    contexts = []

    def make() -> Page:
        context = browser.new_context()
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        # Leaving a player page sends its last progress and beacons (pagehide). Sent while the test
        # database is being flushed, such a request deadlocked the flush's TRUNCATE; abort them.
        context.route("**/*", lambda route: route.abort())
        for page in context.pages:
            page.goto("about:blank")
        context.close()
    if request.node.get_closest_marker("django_db") is not None:  # only then is a flush coming
        _wait_for_requests_in_flight()


def _wait_for_requests_in_flight(timeout: float = 10.0, quiet: float = 0.5) -> None:
    """Until no other connection has touched the test database for ``quiet`` seconds. Keepalive
    requests (the player's last progress report on pagehide) outlive the page by design, so one may
    still reach the live server after its context closed; it must finish before the flush."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND (state <> 'idle' OR state_change > now() - make_interval(secs => %s))",
                [quiet],
            )
            busy = cursor.fetchone()[0]
        if busy:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return
        time.sleep(0.05)


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def lti_lesson_frame(page: Page, lesson: Lesson) -> Frame:
    """The frame of the LMS's course page where the tool's lesson page (/lti/lesson/<id>/) arrived."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames:
            if f"/lti/lesson/{lesson.public_id}/" in frame.url:
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"the tool never reached the lesson; frames: {[f.url for f in page.frames]}")
