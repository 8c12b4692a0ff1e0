"""The web process: HTTP and websockets (config/asgi.py) on uvicorn, with a drain on SIGTERM.

    python -m config.serve [--host 127.0.0.1] [--port 8000]

The one command every deployment runs for the web role (make run, systemd, the container's `web`
role, Kubernetes). One process per core: run more processes (units, containers, pods) behind the load
balancer rather than threads or workers inside one. docs/adr/0028 says why uvicorn and why this order:

1. SIGTERM (or SIGINT): /readyz answers 503 "draining" while every other request is still served, for
   WEB_DRAIN_SECONDS, so a load balancer that checks readiness stops sending new requests here. A
   second signal during that window ends it early (for an operator, or a script that has taken the
   process out of its load balancer itself).
2. The listening socket closes: a new connection is refused, and a proxy retries it on another
   backend (nothing was sent, so even a POST is safe to retry). Idle keep-alive connections close;
   websockets close with 1012 (service restart) and the dashboard reconnects to another process.
3. Requests in flight (a segment download, an upload part) finish, for up to
   WEB_SHUTDOWN_TIMEOUT_SECONDS; whatever is still running then is cancelled. SIGTERM during this
   phase changes nothing; SIGINT (a second Ctrl-C) stops waiting. The exit status is 0.

Options fixed here on purpose: no proxy headers (config/client_address.py decides whom to believe,
from TRUSTED_PROXIES, for every server alike), no ASGI lifespan (Django and Channels have none),
keep-alive longer than the proxy's (WEB_KEEPALIVE_SECONDS), no Server header.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

import uvicorn

from config.draining import draining_start

logger = logging.getLogger("config.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a readiness window between the signal and the graceful shutdown."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: int) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain_until: float | None = None  # monotonic end of the readiness window, once signalled

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn's own handler would re-raise the signal after the shutdown (exit status -15); a
        # drained process exits 0 instead, so a supervisor can tell a drain from a crash.
        if self.drain_until is None:
            draining_start()
            self.drain_until = time.monotonic() + self.drain_seconds
            logger.warning(
                "signal %s: draining; /readyz answers 503, new connections accepted for %d s more",
                signal.Signals(sig).name,
                self.drain_seconds,
            )
        elif not self.should_exit:
            logger.warning("signal %s again: ending the readiness window now", signal.Signals(sig).name)
            self.should_exit = True
        elif sig == signal.SIGINT:  # a second Ctrl-C, as with uvicorn itself: stop waiting for requests
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and time.monotonic() >= self.drain_until and not self.should_exit:
            logger.warning("readiness window over: refusing new connections, finishing those in flight")
            self.should_exit = True
        return await super().on_tick(counter)


APPLICATIONS = {
    "site": "config.asgi:application",  # the whole platform: Django, the beacon endpoint, websockets
    "beacons": "config.asgi_beacons:application",  # the beacon endpoint alone (a pod of its own)
}


def server_config(*, host: str, port: int, app: str = "site") -> uvicorn.Config:
    from django.conf import settings

    return uvicorn.Config(
        APPLICATIONS[app],
        host=host,
        port=port,
        loop="asyncio",
        http="httptools",
        ws="websockets-sansio",
        lifespan="off",
        interface="asgi3",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.WEB_KEEPALIVE_SECONDS,
        timeout_graceful_shutdown=settings.WEB_SHUTDOWN_TIMEOUT_SECONDS,
        access_log=settings.WEB_ACCESS_LOG,
        log_config=None,  # the settings' LOGGING (configured when the app loads) formats every record
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="Run the web process (HTTP and websockets).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--app", choices=sorted(APPLICATIONS), default="site", help="site (default) or beacons only")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    server = DrainingServer(
        server_config(host=args.host, port=args.port, app=args.app), drain_seconds=settings.WEB_DRAIN_SECONDS
    )
    server.run()
    # uvicorn exits itself (status 3) when it cannot start; here it started and stopped.
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
