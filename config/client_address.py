"""The viewer's address, believing a forwarded header only from a proxy we were told to trust.

Every place that keys on the client's address (the beacon app's rate limit, the DRF throttles, IP
binding of playback credentials, DRM token issuers) asks here, so one setting decides for all:

- ``TRUSTED_PROXIES``: the networks (CIDRs) of the proxies in front of us. Empty (the default): no
  header is believed and the address is the connection's peer.
- ``CLIENT_IP_HEADER``: the header those proxies put the viewer's address in (``X-Forwarded-For``
  by default; ``X-Real-IP``; ``CloudFront-Viewer-Address``, "ip:port").

The header is read only when the peer is a trusted proxy. An ``X-Forwarded-For`` list is read from
the right: each proxy appends the address it saw, so entries are skipped while they are trusted
proxies themselves and the first one that is not is the viewer. Anything left of that was written
by the viewer and is never believed. A value that is not an address stops the walk at the last
address we could believe (the proxy), so garbage never becomes a key an attacker chooses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from outbound.addresses import IPNetwork as Network
from outbound.addresses import parse_networks

if TYPE_CHECKING:  # only for the annotations: this module imports neither Django nor DRF
    from django.http import HttpRequest
    from rest_framework.request import Request

__all__ = ["Network", "client_address", "parse_address", "parse_networks"]

# CloudFront's header always ends in ":<port>" (IPv6 too, unbracketed), so the port must go first.
PORTED = "cloudfront-viewer-address"
LISTS = frozenset({"x-forwarded-for"})


def parse_address(value: str, *, with_port: bool = False) -> str:
    """The canonical IP address in a header entry ("" if there is none): "[v6]:port" and "v4:port" too."""
    value = value.strip()
    if with_port:
        value = value.rsplit(":", 1)[0]
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:443"; a bare IPv6 address has several colons
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(*, peer: str, header_name: str, header_value: str | None, trusted: Sequence[Network]) -> str:
    """The viewer's address for a request from ``peer`` carrying ``header_value`` (pure).

    ``header_value`` is every occurrence of the header joined with "," in the order received.
    """
    peer = parse_address(peer) or peer
    if not trusted or not header_name or not header_value or not _trusted(peer, trusted):
        return peer
    name = header_name.lower()
    if name not in LISTS:
        return parse_address(header_value.split(",")[-1], with_port=name == PORTED) or peer
    believed = peer
    for entry in reversed(header_value.split(",")):
        address = parse_address(entry)
        if not address:
            return believed
        believed = address
        if not _trusted(address, trusted):
            return address
    return believed  # every hop was a trusted proxy: the leftmost is as far as we can see


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def configured_client_address(*, peer: str, header_value: str | None) -> str:
    """`client_address` under settings.TRUSTED_PROXIES and settings.CLIENT_IP_HEADER."""
    from django.conf import settings

    return client_address(
        peer=peer,
        header_name=settings.CLIENT_IP_HEADER,
        header_value=header_value,
        trusted=_networks(tuple(settings.TRUSTED_PROXIES)),
    )


def request_client_address(request: HttpRequest | Request) -> str:
    """The viewer's address for a Django (or DRF) request."""
    from django.conf import settings

    meta = request.META
    header = settings.CLIENT_IP_HEADER
    value = meta.get("HTTP_" + header.upper().replace("-", "_")) if header else None
    return configured_client_address(peer=meta.get("REMOTE_ADDR", "") or "", header_value=value)


def scope_client_address(scope: dict) -> str:
    """The viewer's address for an ASGI HTTP scope (repeated headers joined in order, as Django does)."""
    from django.conf import settings

    header = settings.CLIENT_IP_HEADER.lower().encode()
    values = [value.decode("latin-1") for name, value in scope.get("headers") or [] if name.lower() == header]
    peer = (scope.get("client") or ("", 0))[0] or ""
    return configured_client_address(peer=peer, header_value=",".join(values) if values and header else None)
