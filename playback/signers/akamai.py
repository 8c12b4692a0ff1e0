"""Akamai EdgeAuth token 2.0 (pure): an ACL token covering one version prefix.

``[ip=<ip>~]st=<start>~exp=<end>~acl=<acl>~hmac=<hex HMAC-SHA256(key, the fields before hmac)>``
with the key given as hex, as Akamai's property manager shows it. The token travels in the
``__token__`` cookie (or query parameter) that the property's token verification reads.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from urllib.parse import urlsplit

from playback.binding import UNBOUND, Binding


def edgeauth_token(*, key_hex: str, acl: str, start: int, end: int, ip: str | None = None) -> str:
    if end <= start:
        raise ValueError("the token would already have expired")
    fields = ([f"ip={ip}"] if ip else []) + [f"st={start}", f"exp={end}", f"acl={acl}"]
    body = "~".join(fields)
    signature = hmac.new(binascii.a2b_hex(key_hex), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}~hmac={signature}"


class AkamaiSigner:
    TOKEN_NAME = "__token__"

    def __init__(self, *, key_hex: str, base_url: str) -> None:
        binascii.a2b_hex(key_hex)  # fail at start-up on a malformed key
        self._key_hex = key_hex
        self._base = base_url.rstrip("/")

    def sign_prefix(self, *, prefix: str, expires_at: int, binding: Binding = UNBOUND) -> str:
        if binding.session:
            raise ValueError("Akamai cannot check a Django session binding")
        return f"{self._base}/{prefix}"

    def cookies_for_prefix(
        self, *, prefix: str, expires_at: int, start: int, client_ip: str | None = None
    ) -> dict[str, str]:
        # The ACL is a path: it matches the prefix on every edge hostname of the property.
        path = urlsplit(self._base).path
        token = edgeauth_token(
            key_hex=self._key_hex, acl=f"{path}/{prefix}*", start=start, end=expires_at, ip=client_ip
        )
        return {self.TOKEN_NAME: token}
