"""A rolling restart of the web tier under load fails no request (issue 15; docs/adr/0028).

Two web processes (`python -m config.serve`) behind nginx as the load balancer on 127.0.0.1, and a
load of real requests through it until the restarts are done: playback sessions (POST), segment
downloads from the origin, the home page. Each process in turn is restarted the way an orchestrator
does it: SIGTERM; its /readyz answers 503 while it still serves; the balancer routes around it (an
nginx reload, then its old workers finish, as Kubernetes' endpoints would); a second SIGTERM ends
the readiness window (standing in for WEB_DRAIN_SECONDS running out); it refuses new connections,
finishes a large download that is provably still in flight, exits 0; it starts again and goes back
into the balancer once ready. The live dashboard's websocket on the first process is closed with
1012 (service restart) when that process stops, and reconnects through the balancer to the other.
Every step waits for the condition it needs, never for a time.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.web_cluster import Balancer, Load, SlowDownload, Web, World, free_port, make_world, web_env

LARGE = 16 * 1024 * 1024  # far more than the server's socket send buffer (4 MiB at most) and ours (16 KiB)
EACH = 10  # requests every backend answers before the restarts and after them


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def world(transactional_db: None) -> Iterator[World]:
    """Committed rows (the web processes read them over their own connections; flushed afterwards)."""
    from tests.conftest import _empty_storage_prefix

    made = make_world(large_size=LARGE, slug="rolling-course")
    yield made
    _empty_storage_prefix(made.key_prefix)


def _dashboard(port: int, world: World) -> ClientConnection:
    """The live dashboard's websocket on 127.0.0.1:port, as a staff user."""
    return connect(
        f"ws://127.0.0.1:{port}/ws/analytics/live/",
        additional_headers={"Cookie": f"sessionid={world.staff_session}", "Origin": f"http://127.0.0.1:{port}"},
        open_timeout=30,
    )


def _close_code(socket: ClientConnection) -> int | None:
    """The close code the server sent, reading whatever came before it."""
    try:
        while True:
            socket.recv(timeout=60)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@pytest.mark.slow
def test_a_rolling_restart_under_load_fails_no_request(world: World, tmp_path: Path) -> None:
    # A readiness window far longer than the test: only the second signal ends it.
    env = web_env(database_url=_database_url(), WEB_DRAIN_SECONDS="600")
    webs = [Web(port=free_port(), env=env, log=tmp_path / f"web-{i}.log") for i in range(2)]
    (tmp_path / "nginx").mkdir()
    balancer = Balancer(tmp_path / "nginx", [web.port for web in webs])
    upstreams = [f"127.0.0.1:{web.port}" for web in webs]
    large_path = f"/stream/{world.stream_token}/{world.large}"
    with ExitStack() as stack:
        stack.callback(_stop, balancer, webs)
        for web in webs:
            web.start()
        for web in webs:
            web.wait_readiness(200)
        balancer.start()
        # Straight to the first process: a balancer reload may itself close the websockets it proxies
        # (nginx did, without a close frame), which the page survives the same way.
        dashboard = stack.enter_context(_dashboard(webs[0].port, world))
        with Load(balancer.base, world.calls(), threads=3) as load:
            load.wait_served(0, upstreams, at_least=EACH)
            for phase, (victim, other) in enumerate([(webs[0], webs[1]), (webs[1], webs[0])], start=1):
                load.phase = phase
                download = SlowDownload(victim.port, large_path)
                assert download.head.startswith(b"HTTP/1.1 200"), download.head

                victim.signal(signal.SIGTERM)
                victim.wait_readiness(503)  # draining: not ready, and still answering
                balancer.route([other.port])
                victim.signal(signal.SIGTERM)
                victim.wait_refusing()
                assert victim.process is not None and victim.process.poll() is None, "exited with a download in flight"
                head, body = download.finish()
                assert head.startswith(b"HTTP/1.1 200")
                assert len(body) == LARGE and body == download.expected(LARGE)
                assert victim.wait_exit() == 0, victim.log_tail()
                if phase == 1:
                    assert _close_code(dashboard) == 1012  # service restart: the page reconnects
                    with _dashboard(balancer.port, world) as again:
                        assert again.response is not None
                        assert again.response.headers["X-Upstream"] == f"127.0.0.1:{other.port}"

                victim.start()
                victim.wait_readiness(200)
                balancer.route([web.port for web in webs])
            load.phase = 3
            load.wait_served(3, upstreams, at_least=EACH)

        assert load.failures() == []
        before, after = load.served(0), load.served(3)
        assert all(before[u] >= EACH and after[u] >= EACH for u in upstreams), (before, after)
        # While one was out, the other answered.
        for phase, other in ((1, upstreams[1]), (2, upstreams[0])):
            assert set(load.served(phase)) <= set(upstreams) and load.served(phase)[other] > 0
        kinds = {o.call for o in load.outcomes}
        assert kinds == {"playback session", "segment", "home page"}
        assert all(web.starts == 2 for web in webs)


def _stop(balancer: Balancer, webs: list[Web]) -> None:
    balancer.stop()
    for web in webs:
        web.stop()
