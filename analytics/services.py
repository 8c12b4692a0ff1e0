"""Analytics workflows that other code calls."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from analytics import ingest, live


def live_publish() -> dict[str, Any]:
    """Compute the live snapshot and send it to every dashboard socket, on any web process."""
    snapshot = live.snapshot(ingest.client())
    async_to_sync(get_channel_layer().group_send)(live.GROUP, {"type": "qoe.snapshot", "snapshot": snapshot})
    return snapshot
