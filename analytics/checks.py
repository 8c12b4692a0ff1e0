"""A deploy check: the Redis that holds the task queue must refuse writes when full, never evict.

Beacons are bounded (docs/adr/0020), but the bound protects the queue only if Redis, once full,
refuses writes (`noeviction`) instead of deleting keys, queued tasks among them. Run by
`manage.py check --deploy`. A Redis that cannot be asked (down, or CONFIG disabled, as managed
services do) is skipped: /readyz reports reachability, and the operator's console the policy.
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.caches, deploy=True)
def redis_never_evicts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        config = client.config_get("maxmemory*")
        client.close()
    except redis.RedisError:
        return []
    messages: list[CheckMessage] = []
    policy = config.get("maxmemory-policy", "")
    if policy and policy != "noeviction":
        messages.append(
            Warning(
                f"Redis maxmemory-policy is {policy}: when full it deletes keys, queued tasks among them.",
                hint="Set maxmemory-policy noeviction (README, Redis).",
                id="analytics.W001",
            )
        )
    if str(config.get("maxmemory", "0")) == "0":
        messages.append(
            Warning(
                "Redis has no maxmemory: a flood of writes can take the machine's memory.",
                hint="Set maxmemory above QOE_STREAM_MAX_BYTES plus the deepest task queue (README, Redis).",
                id="analytics.W002",
            )
        )
    return messages
