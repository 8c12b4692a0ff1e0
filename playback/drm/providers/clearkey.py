"""This site as the license service: W3C ClearKey licenses and HLS keys, released by playback/drm/services.py."""

from __future__ import annotations

from dataclasses import dataclass

from playback.drm import license_tokens
from playback.drm.providers.base import CLEARKEY, DrmGrant, ProtectedContent, Viewer


@dataclass(frozen=True)
class ClearKeyProvider:
    secret: bytes
    license_url: str
    hls_key_url: str
    name: str = "clearkey"
    needs_keys: bool = False

    def grant(self, *, viewer: Viewer, content: ProtectedContent, expires_at: int, now: int) -> DrmGrant:
        token = license_tokens.token_issue(
            secret=self.secret,
            claims=license_tokens.LicenseClaims(
                user_id=viewer.user_id,
                session=viewer.session,
                lesson=content.lesson,
                version=content.version,
                kids=content.kids,
                expires_at=expires_at,
            ),
            now=now,
        )
        return DrmGrant(
            provider=self.name,
            servers={CLEARKEY: self.license_url},
            headers={"Authorization": f"Bearer {token}"},
            expires_at=expires_at,
            hls_key_url=self.hls_key_url,
        )
