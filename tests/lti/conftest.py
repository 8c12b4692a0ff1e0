"""Fixtures for the LTI tests: a platform emulator on loopback, registered with the tool."""

from __future__ import annotations

import html
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import HttpResponse
from django.test import Client
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from lti import tokens
from lti.models import LtiPlatform
from lti.platforms import platform_register
from outbound.addresses import parse_networks
from tests.lti.platform_emulator import ROLE_INSTRUCTOR, ROLE_LEARNER, PlatformEmulator


@pytest.fixture(autouse=True)
def _lti_settings(settings: Settings) -> Iterator[None]:
    settings.SITE_URL = "http://testserver"
    # Tests rotate platform keys within a second of the first fetch.
    settings.LTI_JWKS_REFETCH_COOLDOWN_SECONDS = 0
    # The emulator runs on loopback over plain http: allowed explicitly, as a developer would.
    settings.OUTBOUND_HTTP_ALLOW_NETWORKS = parse_networks(["127.0.0.1/32"])
    tokens.jwks_cache_clear()
    yield
    tokens.jwks_cache_clear()


def start_emulator(*, tool_url: str, host: str = "127.0.0.1") -> PlatformEmulator:
    emulator = PlatformEmulator(host=host, tool_url=tool_url)
    emulator.users = {
        "learner-1": {"sub": "learner-sub-1", "roles": [ROLE_LEARNER], "name": "Ada Lovelace",
                      "given_name": "Ada", "family_name": "Lovelace", "email": "ada@lms.example"},
        "learner-2": {"sub": "learner-sub-2", "roles": [ROLE_LEARNER], "name": "Alan Turing",
                      "given_name": "Alan", "family_name": "Turing", "email": "alan@lms.example"},
        "teacher-1": {"sub": "teacher-sub-1", "roles": [ROLE_INSTRUCTOR], "name": "Grace Hopper",
                      "given_name": "Grace", "family_name": "Hopper", "email": "grace@lms.example"},
    }  # fmt: skip
    return emulator


@pytest.fixture
def emulator(db: None) -> Iterator[PlatformEmulator]:
    with start_emulator(tool_url="http://testserver") as running:
        yield running


def register(emulator: PlatformEmulator) -> LtiPlatform:
    return platform_register(**emulator.registration_args, deployment_ids=[emulator.deployment_id])


@dataclass
class Login:
    state: str
    nonce: str
    auth_url: str


def start_login(
    client: Client, emulator: PlatformEmulator, *, user: str = "learner-1", launch: str = "launch-1"
) -> Login:
    response = client.get("/lti/login/", emulator.login_params(login_hint=user, message_hint=launch))
    assert response.status_code == 302, response.content[:500]
    location = response["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return Login(state=query["state"], nonce=query["nonce"], auth_url=location)


def authorize(auth_url: str) -> dict[str, str]:
    """Follow the platform's auth endpoint over HTTP; returns the form it posts to the tool."""
    with urllib.request.urlopen(auth_url, timeout=10) as response:
        page = response.read().decode()
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
    return {name: html.unescape(value) for name, value in fields.items()}


def full_launch(
    client: Client, emulator: PlatformEmulator, *, user: str = "learner-1", launch: str = "launch-1"
) -> HttpResponse:
    login = start_login(client, emulator, user=user, launch=launch)
    form = authorize(login.auth_url)
    assert form["state"] == login.state
    return client.post("/lti/launch/", form)


@pytest.fixture
def live_emulator(live_server: LiveServer, settings: Settings) -> Iterator[PlatformEmulator]:
    """The emulator talking to the tool served by live_server (it fetches our real /lti/jwks/)."""
    settings.SITE_URL = live_server.url
    with start_emulator(tool_url=live_server.url) as running:
        register(running)
        yield running
