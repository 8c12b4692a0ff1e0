"""nginx ``secure_link`` tokens in the path prefix (pure), checked by the edge config we ship.

URL base: ``<edge>/s/<md5>/<expires>/<prefix>`` where
``md5 = base64url(MD5("<expires><prefix><ip> <secret>"))`` without padding, ``<ip>`` empty unless
tokens are bound to the viewer's address; nginx computes the same with ``secure_link $token,$expires;
secure_link_md5 "$secure_link_expires$prefix$lessons_binding $lessons_secret";`` where the server
sets ``$lessons_binding`` to "" or ``$remote_addr`` (see deploy/nginx/lessons-token-check.conf).
Relative playlist URIs keep the token for every segment.
"""

from __future__ import annotations

import base64
import hashlib

from playback.binding import UNBOUND, Binding


def secure_link_token(*, secret: str, prefix: str, expires_at: int, ip: str = "") -> str:
    digest = hashlib.md5(f"{expires_at}{prefix}{ip} {secret}".encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class NginxSecureLinkSigner:
    def __init__(self, *, secret: str, base_url: str) -> None:
        if not secret:
            raise ValueError("the nginx secure_link secret must not be empty")
        self._secret = secret
        self._base = base_url.rstrip("/")

    def sign_prefix(self, *, prefix: str, expires_at: int, binding: Binding = UNBOUND) -> str:
        if binding.session:
            raise ValueError("an nginx edge cannot check a Django session binding")
        token = secure_link_token(secret=self._secret, prefix=prefix, expires_at=expires_at, ip=binding.ip)
        return f"{self._base}/s/{token}/{expires_at}/{prefix}"
