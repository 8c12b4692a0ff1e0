"""Which addresses the server may connect to on someone else's behalf (pure: no Django, no I/O).

A URL handed to us by a platform, an LMS administrator or an integrator must never make the server
reach inside its own network: loopback, private ranges, link-local (cloud metadata at
169.254.169.254), carrier-grade NAT, multicast, reserved space, or any of those wrapped in an IPv6
form (IPv4-mapped, NAT64, 6to4, Teredo). Only globally routable unicast addresses pass, unless an
operator lists a network explicitly (OUTBOUND_HTTP_ALLOW, for development and tests).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` -> networks; raises ValueError naming the bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address or network (CIDR)") from exc
    return tuple(networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address, including what an IPv6 form of IPv4 carries inside."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        if address.scope_id:
            return False
    special = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )
    return address.is_global and not special


def may_connect(address: IPAddress, *, allow: Iterable[IPNetwork] = ()) -> bool:
    """True for a public address, or one inside a network the operator allowed explicitly."""
    return any(address.version == network.version and address in network for network in allow) or is_public(address)


def allowed_explicitly(address: IPAddress, *, allow: Iterable[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in allow)
