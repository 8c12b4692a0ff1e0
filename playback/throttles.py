"""Request throttles for the playback-session, license and key endpoints.

DRF's sliding-window throttle, keyed by user (or client IP when anonymous), with its counters in the
shared "throttle" cache (Redis) so every web process counts together, and rates from settings
(THROTTLE_*). The plain Django views (license, key) use the same classes through ``throttle_refusal``.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, JsonResponse
from rest_framework.throttling import SimpleRateThrottle


class _ViewerRateThrottle(SimpleRateThrottle):
    setting_name = ""

    def __init__(self) -> None:
        self.cache = caches["throttle"]
        super().__init__()

    def get_rate(self) -> str:
        return getattr(settings, self.setting_name)

    def get_cache_key(self, request, view) -> str:  # type: ignore[no-untyped-def, override]
        user = getattr(request, "user", None)
        ident = f"user:{user.pk}" if user is not None and user.is_authenticated else f"ip:{self.get_ident(request)}"
        return f"{self.scope}:{ident}"


class PlaybackSessionThrottle(_ViewerRateThrottle):
    scope = "playback-session"
    setting_name = "THROTTLE_PLAYBACK_SESSION"


class LicenseThrottle(_ViewerRateThrottle):
    scope = "drm-license"
    setting_name = "THROTTLE_DRM_LICENSE"


class KeyThrottle(_ViewerRateThrottle):
    scope = "drm-key"
    setting_name = "THROTTLE_DRM_KEY"


def throttle_refusal(throttle: _ViewerRateThrottle, request: HttpRequest) -> JsonResponse | None:
    """A 429 response when ``request`` is over the rate, else None (and the request is counted)."""
    if throttle.allow_request(request, None):
        return None
    wait = throttle.wait()
    response = JsonResponse({"detail": "too many requests"}, status=429)
    response["Retry-After"] = str(max(1, math.ceil(wait or 1)))
    response["Cache-Control"] = "no-store"
    return response
