"""What a playback credential is tied to besides its version prefix and expiry.

PLAYBACK_TOKEN_BINDING chooses: "none" (the default: a URL works for whoever holds it until it
expires), "ip" (only from the viewer's address: every provider supports it, but a phone moving from
Wi-Fi to mobile data then needs a new playback session, i.e. a reload), or
"session" (only with the viewer's Django session cookie: the origin signer only, since an edge
cannot see our sessions).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest


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
    """The viewer's address: PLAYBACK_CLIENT_IP_HEADER when a trusted proxy sets it, else the peer."""
    header = settings.PLAYBACK_CLIENT_IP_HEADER
    if header:
        # X-Forwarded-For style lists: the proxy we trust appends the address it saw last.
        value = _address(request.headers.get(header, "").split(",")[-1].strip(), with_port=header.lower() == PORTED)
        if value:
            return value
    return request.META.get("REMOTE_ADDR", "")


# CloudFront's header always ends in ":<port>" (IPv6 too, unbracketed), so the port must go first.
PORTED = "cloudfront-viewer-address"


def _address(value: str, *, with_port: bool) -> str:
    """The IP address in a header value ("" if there is none)."""
    if with_port:
        value = value.rsplit(":", 1)[0].strip("[]")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


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
