"""Request throttles for the playback-session, license and key endpoints.

A sliding window per viewer (the user, or the client address when anonymous, from
config/client_address.py): at most N requests in any period of the configured length (THROTTLE_*
settings, DRF's "N/period" syntax). The counters live in Redis so every web process counts together.

Why not DRF's SimpleRateThrottle: it reads the request history from the cache and writes it back,
two round trips to Redis on every playback start, and two concurrent requests can both read the
same history and each let themselves in. Here one MULTI/EXEC pipeline (one round trip, atomic)
drops the expired entries, adds this request, and counts; a refused request takes its entry back,
so refusals do not extend the wait (as with DRF). The window is a sorted set of request times.
"""

from __future__ import annotations

import functools
import math
import time
import uuid

import redis
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from config.client_address import request_client_address
from config.env import parse_rate

KEY_PREFIX = "throttle:"


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


class _ViewerRateThrottle(BaseThrottle):
    scope = ""
    setting_name = ""

    def __init__(self) -> None:
        self._wait = 0.0

    def get_ident(self, request: HttpRequest) -> str:
        # DRF's own reads X-Forwarded-For as sent unless NUM_PROXIES is set: one rule for every address.
        return request_client_address(request)

    def key_for(self, request: HttpRequest) -> str:
        user = getattr(request, "user", None)
        ident = f"user:{user.pk}" if user is not None and user.is_authenticated else f"ip:{self.get_ident(request)}"
        return f"{KEY_PREFIX}{self.scope}:{ident}"

    def allow_request(self, request: HttpRequest, view: APIView | None) -> bool:  # plain Django views too
        limit, window = parse_rate(getattr(settings, self.setting_name))
        key = self.key_for(request)
        now = time.time()
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        client = _client(settings.REDIS_URL)
        with client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zadd(key, {member: now})
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
            pipe.expire(key, window + 1)
            _, _, count, oldest, _ = pipe.execute()
        if count <= limit:
            return True
        client.zrem(key, member)
        oldest_at = oldest[0][1] if oldest else now
        self._wait = max(0.0, oldest_at + window - now)
        return False

    def wait(self) -> float:
        return self._wait


class PlaybackSessionThrottle(_ViewerRateThrottle):
    scope = "playback-session"
    setting_name = "THROTTLE_PLAYBACK_SESSION"


class LicenseThrottle(_ViewerRateThrottle):
    scope = "drm-license"
    setting_name = "THROTTLE_DRM_LICENSE"


class KeyThrottle(_ViewerRateThrottle):
    scope = "drm-key"
    setting_name = "THROTTLE_DRM_KEY"


def throttles_clear() -> None:
    """Forget every count (tests, and an operator lifting a mistaken lock-out)."""
    client = _client(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)


def throttle_refusal(throttle: _ViewerRateThrottle, request: HttpRequest) -> JsonResponse | None:
    """A 429 response when ``request`` is over the rate, else None (and the request is counted)."""
    if throttle.allow_request(request, None):
        return None
    response = JsonResponse({"detail": "too many requests"}, status=429)
    response["Retry-After"] = str(max(1, math.ceil(throttle.wait() or 1)))
    response["Cache-Control"] = "no-store"
    return response
