"""URL signers: one module per delivery provider on the small ``Signer`` interface.

A signer turns a version prefix (``lessons/<id>/v<N>/``) and an expiry into a URL base under which
the player may fetch every object of that version. Providers, chosen by PLAYBACK_SIGNER:

- ``origin`` (the default): an HMAC token in the path, checked by this Django app (``origin.py``);
- ``nginx``: a ``secure_link`` token in the path, checked by the edge we ship (``nginx.py``);
- ``cloudfront``: signed cookies with a custom policy on the version prefix (``cloudfront.py``);
- ``akamai``: an EdgeAuth 2.0 token in the ``__token__`` cookie (``akamai.py``).

Path tokens survive in players because playlists reference segments relatively; cookie providers
leave the URL plain and hand the credential to the browser with the playback session
(``session_cookies``), on PLAYBACK_COOKIE_DOMAIN, a parent of the CDN's host.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from media_pipeline.regions import Region
from playback.binding import UNBOUND, Binding

if TYPE_CHECKING:
    from playback.signers.cloudfront import CloudFrontSigner


class Signer(Protocol):
    def sign_prefix(self, *, prefix: str, expires_at: int, binding: Binding = UNBOUND) -> str:
        """A URL base ending in ``/``; base + a name under ``prefix`` is a fetchable URL."""
        ...


@dataclass(frozen=True)
class SignedCookie:
    name: str
    value: str
    path: str


def signer_get(region: Region | None = None) -> Signer:
    """The provider chosen by settings.PLAYBACK_SIGNER, signing for one storage region (the primary
    when not given): its edge (REGION_<NAME>_BASE_URL, else PLAYBACK_EDGE_URL) or the region's path
    on the Django origin."""
    base_url = region.base_url if region is not None else ""
    provider = settings.PLAYBACK_SIGNER
    if provider == "nginx":
        from playback.signers.nginx import NginxSecureLinkSigner

        return NginxSecureLinkSigner(
            secret=settings.PLAYBACK_NGINX_SECRET, base_url=base_url or settings.PLAYBACK_EDGE_URL
        )
    if provider == "cloudfront":
        return _cloudfront(base_url or settings.PLAYBACK_EDGE_URL)
    if provider == "akamai":
        from playback.signers.akamai import AkamaiSigner

        return AkamaiSigner(key_hex=settings.PLAYBACK_AKAMAI_KEY, base_url=base_url or settings.PLAYBACK_EDGE_URL)

    from playback.signers.origin import OriginSigner

    # Derived from the URLconf so a different mount point (or FORCE_SCRIPT_NAME) stays correct.
    if region is None or region.primary:
        stream_root = reverse("playback:stream", kwargs={"token": "t", "key": "k"}).removesuffix("t/k")
    else:
        stream_root = reverse(
            "playback_region:stream", kwargs={"region": region.name, "token": "t", "key": "k"}
        ).removesuffix("t/k")
    return OriginSigner(secret=settings.PLAYBACK_TOKEN_SECRET.encode(), stream_root=base_url + stream_root)


def session_cookies(*, prefix: str, expires_at: int, binding: Binding, regions: list[Region]) -> list[SignedCookie]:
    """The cookies a cookie-based provider needs for ``prefix`` on every region's edge; none for
    providers whose token is in the path. One set serves all regions, since they share the cookie
    domain, so the regions' edges must share their URL path (checked here)."""
    provider = settings.PLAYBACK_SIGNER
    if provider not in ("cloudfront", "akamai"):
        return []
    bases = [(region.base_url or settings.PLAYBACK_EDGE_URL).rstrip("/") for region in regions]
    paths = {urlsplit(base).path for base in bases}
    if len(paths) != 1:
        raise ImproperlyConfigured(f"with PLAYBACK_SIGNER={provider} every region's edge needs the same URL path")
    path = f"{paths.pop()}/{prefix}"
    if provider == "cloudfront":
        cookies = _cloudfront(bases[0]).cookies_for_prefix(
            prefix=prefix, expires_at=expires_at, client_ip=binding.ip or None, other_bases=tuple(bases[1:])
        )
    else:
        from playback.signers.akamai import AkamaiSigner

        # A minute of slack: clock skew between us and the edge must not make a fresh token "too early".
        cookies = AkamaiSigner(key_hex=settings.PLAYBACK_AKAMAI_KEY, base_url=bases[0]).cookies_for_prefix(
            prefix=prefix, expires_at=expires_at, start=int(time.time()) - 60, client_ip=binding.ip or None
        )
    return [SignedCookie(name=name, value=value, path=path) for name, value in cookies.items()]


@functools.lru_cache(maxsize=16)
def _cloudfront_signer(key_pair_id: str, private_key_pem: str, base_url: str) -> CloudFrontSigner:
    from playback.signers.cloudfront import CloudFrontSigner

    # Parsing the PEM costs more than signing: keep one signer per key and base.
    return CloudFrontSigner(key_pair_id=key_pair_id, private_key_pem=private_key_pem.encode(), base_url=base_url)


def _cloudfront(base_url: str) -> CloudFrontSigner:
    return _cloudfront_signer(
        settings.PLAYBACK_CLOUDFRONT_KEY_PAIR_ID, settings.PLAYBACK_CLOUDFRONT_PRIVATE_KEY, base_url
    )
