"""DRM providers, one module each on the ``DrmProvider`` interface (base.py), chosen by DRM_PROVIDER."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from playback.drm.providers.base import DrmGrant, DrmProvider, ProtectedContent, Viewer

__all__ = ["DrmGrant", "DrmProvider", "ProtectedContent", "Viewer", "provider_get"]


def provider_get() -> DrmProvider:
    if settings.DRM_PROVIDER == "axinom":
        from playback.drm.providers.axinom import AxinomProvider

        return AxinomProvider(
            com_key_id=settings.AXINOM_COM_KEY_ID,
            com_key_b64=settings.AXINOM_COM_KEY,
            license_urls=dict(settings.AXINOM_LICENSE_URLS),
        )
    from playback.drm.providers.clearkey import ClearKeyProvider

    return ClearKeyProvider(
        secret=settings.DRM_LICENSE_TOKEN_SECRET.encode(),
        license_url=reverse("drm:clearkey-license"),
        hls_key_url=reverse("drm:hls-key", kwargs={"kid": "0" * 32}).removesuffix("0" * 32),
    )
