"""Staff-only live dashboard socket.

QoE snapshots arrive through the Channels group (published once a second by `qoe_live`, so every
web process's sockets get the same figures); the pipeline's state is read here every few seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from analytics.live import GROUP, snapshot_for_lessons
from analytics.selectors import live_snapshot
from courses import selectors as course_selectors

PIPELINE_INTERVAL_SECONDS = 1.0
CLOSE_FORBIDDEN = 4403


class LiveDashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Superusers see every lesson; an educator the lessons of the courses they teach (refreshed
        # with the pipeline state, so a lesson created meanwhile appears within a second).
        self._lessons: set[str] | None = None if user.is_superuser else await self._lessons_taught()
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        self._pusher = asyncio.create_task(self._push_pipeline_state())

    async def disconnect(self, code: int) -> None:
        pusher = getattr(self, "_pusher", None)
        if pusher is not None:
            pusher.cancel()
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The dashboard only listens; anything sent is ignored.
        return None

    async def qoe_snapshot(self, event: dict[str, Any]) -> None:
        await self.send_json(snapshot_for_lessons(event["snapshot"], lessons=self._lessons))

    async def _lessons_taught(self) -> set[str]:
        return set(await database_sync_to_async(course_selectors.lesson_ids_taught_by)(user=self.scope["user"]))

    async def _push_pipeline_state(self) -> None:
        while True:
            if self._lessons is not None:
                self._lessons = await self._lessons_taught()
            await self.send_json(await database_sync_to_async(live_snapshot)())
            await asyncio.sleep(PIPELINE_INTERVAL_SECONDS)
