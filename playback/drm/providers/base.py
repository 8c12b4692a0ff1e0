"""The DRM provider interface: what a player needs to obtain licenses for one playback session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from media_pipeline.content_keys import ContentKeyMaterial

# EME key system names, as players configure them.
CLEARKEY = "org.w3.clearkey"
WIDEVINE = "com.widevine.alpha"
PLAYREADY = "com.microsoft.playready"
FAIRPLAY = "com.apple.fps"


@dataclass(frozen=True)
class Viewer:
    user_id: str
    session: str  # playback.drm.license_tokens.session_binding of the viewer's session


@dataclass(frozen=True)
class ProtectedContent:
    lesson: str  # public id
    version: int
    kids: tuple[str, ...]  # 32 hex digits each
    # Filled only for providers with ``needs_keys`` (a service that is handed the keys per license).
    keys: tuple[ContentKeyMaterial, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class DrmGrant:
    provider: str
    servers: dict[str, str]  # EME key system -> license server URL
    headers: dict[str, str]  # sent with every license (and HLS key) request; never in a URL
    expires_at: int  # Unix seconds; the player renews its playback session before then
    hls_key_url: str = ""  # this site's HLS key endpoint, "<url>/<kid hex>" (ClearKey provider only)


class DrmProvider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def needs_keys(self) -> bool: ...

    def grant(self, *, viewer: Viewer, content: ProtectedContent, expires_at: int, now: int) -> DrmGrant:
        """Credentials for ``viewer`` to obtain licenses for ``content`` until ``expires_at``."""
        ...
