"""What a playback credential is tied to besides its version prefix and expiry.

PLAYBACK_TOKEN_BINDING chooses: "none" (the default: a URL works for whoever holds it until it
expires), "ip" (only from the viewer's address: every provider supports it, but a phone moving from
Wi-Fi to mobile data then needs a new playback session, i.e. a reload), or
"session" (only with the viewer's Django session cookie: the origin signer only, since an edge
cannot see our sessions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from config.client_address import request_client_address


@dataclass(frozen=True)
class Binding:
    ip: str = ""
    session: str = ""  # a digest of the session key, never the key itself

    def token_value(self) -> str:
        """The text the origin and steering tokens sign besides expiry and prefix ("" = unbound)."""
        if self.ip:
            return f"ip={self.ip}"
        if self.session:
            return f"sid={self.session}"
        return ""


UNBOUND = Binding()


def client_ip(request: HttpRequest) -> str:
    """The viewer's address: the peer, or what a proxy in TRUSTED_PROXIES says (config/client_address.py)."""
    return request_client_address(request)


def _session_digest(session_key: str) -> str:
    return hashlib.sha256(f"playback-binding:{session_key}".encode()).hexdigest()[:32]


def binding_for(request: HttpRequest, *, issuing: bool = False) -> Binding:
    """The binding for this request under settings. When ``issuing`` and the binding is "session",
    a viewer without a session (a public lesson watched anonymously) gets one, so the cookie exists
    before the first segment request."""
    mode = settings.PLAYBACK_TOKEN_BINDING
    if mode == "ip":
        return Binding(ip=client_ip(request))
    if mode == "session":
        session = request.session
        if session.session_key is None and issuing:
            session.save()
        return Binding(session=_session_digest(session.session_key or ""))
    return UNBOUND
