"""config/serve.py's drain, step by step, without a socket (tests/test_rolling_restart.py runs it for
real behind nginx), and /readyz while draining."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
import uvicorn
from django.test import RequestFactory

from config import health, serve


@pytest.fixture
def drain_started(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records draining_start calls instead of flipping this test process's own readiness."""
    calls: list[bool] = []
    monkeypatch.setattr(serve, "draining_start", lambda: calls.append(True))
    return calls


def _server(drain_seconds: int) -> serve.DrainingServer:
    return serve.DrainingServer(uvicorn.Config(app="config.asgi:application"), drain_seconds=drain_seconds)


def _tick(server: serve.DrainingServer) -> bool:
    return asyncio.run(server.on_tick(1))


def test_a_signal_starts_the_readiness_window_and_keeps_serving(drain_started: list[bool]) -> None:
    server = _server(600)
    server.handle_exit(signal.SIGTERM, None)
    assert drain_started == [True]
    assert _tick(server) is False and server.should_exit is False  # still serving
    server.handle_exit(signal.SIGTERM, None)  # a second signal ends the window
    assert server.should_exit is True and server.force_exit is False
    assert drain_started == [True]


def test_the_window_ends_by_itself(drain_started: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server(5)
    now = [1000.0]
    monkeypatch.setattr(serve.time, "monotonic", lambda: now[0])
    server.handle_exit(signal.SIGTERM, None)
    now[0] = 1004.9
    assert _tick(server) is False
    now[0] = 1005.0
    assert _tick(server) is True and server.should_exit is True


def test_no_window_stops_accepting_at_the_next_tick(drain_started: list[bool]) -> None:
    server = _server(0)
    server.handle_exit(signal.SIGINT, None)
    assert _tick(server) is True


def test_a_second_ctrl_c_during_the_shutdown_stops_waiting_for_requests(drain_started: list[bool]) -> None:
    server = _server(0)
    server.handle_exit(signal.SIGTERM, None)
    _tick(server)
    server.handle_exit(signal.SIGTERM, None)
    assert server.force_exit is False  # an orchestrator repeating SIGTERM does not cut requests short
    server.handle_exit(signal.SIGINT, None)
    assert server.force_exit is True


def test_the_server_options() -> None:
    config = serve.server_config(host="0.0.0.0", port=8123)
    assert (config.host, config.port, config.http, config.ws, config.lifespan) == (
        "0.0.0.0", 8123, "httptools", "websockets-sansio", "off",
    )  # fmt: skip
    assert config.proxy_headers is False and config.server_header is False
    assert (config.timeout_keep_alive, config.timeout_graceful_shutdown) == (75, 30)


def test_readyz_answers_503_while_draining(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "draining", lambda: True)
    response = health.readyz(RequestFactory().get("/readyz"))
    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "draining"}
