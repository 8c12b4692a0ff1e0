"""URL signers: one module per delivery provider on the small ``Signer`` interface.

A signer turns a version prefix (``lessons/<id>/v<N>/``) and an expiry into a URL base under which
the player may fetch every object of that version. Because playlists reference segments
relatively, the base must carry the credential in its path (players drop query strings).
Providers: the Django origin (``origin.py``, the default) and an nginx edge with ``secure_link``
(``nginx.py``), chosen by PLAYBACK_SIGNER. CloudFront and Akamai (cookie-based) sign here too and
join the choice once sessions can hand cookies to the CDN's domain.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.urls import reverse

from media_pipeline.regions import Region


class Signer(Protocol):
    def sign_prefix(self, *, prefix: str, expires_at: int) -> str:
        """A URL base ending in ``/``; base + a name under ``prefix`` is a fetchable URL."""
        ...


def signer_get(region: Region | None = None) -> Signer:
    """The provider chosen by settings.PLAYBACK_SIGNER ("origin" or "nginx"), signing for one storage
    region (the primary when not given): its edge (REGION_<NAME>_BASE_URL) or the region's path on
    the Django origin."""
    base_url = region.base_url if region is not None else ""
    if settings.PLAYBACK_SIGNER == "nginx":
        from playback.signers.nginx import NginxSecureLinkSigner

        return NginxSecureLinkSigner(
            secret=settings.PLAYBACK_NGINX_SECRET, base_url=base_url or settings.PLAYBACK_EDGE_URL
        )

    from playback.signers.origin import OriginSigner

    # Derived from the URLconf so a different mount point (or FORCE_SCRIPT_NAME) stays correct.
    if region is None or region.primary:
        stream_root = reverse("playback:stream", kwargs={"token": "t", "key": "k"}).removesuffix("t/k")
    else:
        stream_root = reverse(
            "playback_region:stream", kwargs={"region": region.name, "token": "t", "key": "k"}
        ).removesuffix("t/k")
    return OriginSigner(secret=settings.PLAYBACK_TOKEN_SECRET.encode(), stream_root=base_url + stream_root)
