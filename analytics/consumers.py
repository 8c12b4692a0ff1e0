"""Staff-only websocket that pushes a live snapshot at least once a second."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from analytics.selectors import live_snapshot

PUSH_INTERVAL_SECONDS = 1.0
CLOSE_FORBIDDEN = 4403


class LiveDashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        self._pusher = asyncio.create_task(self._push_forever())

    async def disconnect(self, code: int) -> None:
        pusher = getattr(self, "_pusher", None)
        if pusher is not None:
            pusher.cancel()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The dashboard only listens; anything sent is ignored.
        return None

    async def _push_forever(self) -> None:
        while True:
            await self.send_json(await database_sync_to_async(live_snapshot)())
            await asyncio.sleep(PUSH_INTERVAL_SECONDS)
