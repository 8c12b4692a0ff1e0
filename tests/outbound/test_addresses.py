from __future__ import annotations

import ipaddress

import pytest

from outbound.addresses import is_public, may_connect, parse_networks

NOT_PUBLIC = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fd00::1", "fe80::1", "ff02::1", "fec0::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("value", NOT_PUBLIC)
def test_internal_addresses_are_not_public(value: str) -> None:
    assert is_public(ipaddress.ip_address(value)) is False
    assert may_connect(ipaddress.ip_address(value)) is False


@pytest.mark.parametrize("value", PUBLIC)
def test_global_unicast_addresses_are_public(value: str) -> None:
    assert is_public(ipaddress.ip_address(value)) is True


def test_an_operator_allows_a_network_explicitly() -> None:
    allow = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    assert may_connect(ipaddress.ip_address("127.0.0.1"), allow=allow)
    assert may_connect(ipaddress.ip_address("10.200.0.1"), allow=allow)
    assert not may_connect(ipaddress.ip_address("127.0.0.2"), allow=allow)
    assert not may_connect(ipaddress.ip_address("::1"), allow=allow)


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="'localhost' is not an IP address"):
        parse_networks(["127.0.0.1", "localhost"])
