"""Whether this web process is draining: told to stop (config/serve.py), still serving, and saying so
on /readyz (config/health.py) so that a load balancer that checks readiness stops sending to it."""

from __future__ import annotations

import threading

_draining = threading.Event()


def draining_start() -> None:
    _draining.set()


def draining() -> bool:
    return _draining.is_set()
