"""The SSRF guard, judged by decision: addresses are resolved and vetted, never connected to."""

import ipaddress

import pytest

from interlock.common.addresses import (
    AddressNotAllowed,
    is_reachable,
    parse_networks,
    resolve_reachable,
)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700::1111",
        "::ffff:8.8.8.8",  # IPv4-mapped public address
        "64:ff9b::808:808",  # NAT64 to a public address
    ],
)
def test_globally_routable_addresses_are_reachable(address: str) -> None:
    assert is_reachable(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.5",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff0e::1",
        "255.255.255.255",
        "::ffff:127.0.0.1",
        # Each of these passed the old guard:
        "100.100.100.200",  # shared address space: a cloud metadata service
        "100.64.0.1",
        "fec0::1",  # site-local
        "2002:a9fe:a9fe::1",  # 6to4 embedding 169.254.169.254
        "2002:808:808::1",  # 6to4 even to a public address: its route is not ours to judge
        "64:ff9b::a9fe:a9fe",  # NAT64 to 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 to loopback
        "64:ff9b:1::a00:1",  # local-use NAT64
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "::ffff:0:7f00:1",  # SIIT translated loopback
        "2001::1",  # Teredo
        "192.88.99.1",  # 6to4 relay anycast
        "198.18.0.1",  # benchmarking
        "240.0.0.1",  # reserved
        "2001:db8::1",  # documentation
    ],
)
def test_internal_and_embedded_addresses_are_refused(address: str) -> None:
    assert not is_reachable(ipaddress.ip_address(address))


def test_configured_networks_are_reachable() -> None:
    allowed = parse_networks(["127.0.0.0/8", "::1/128", "100.64.0.0/10"])
    assert is_reachable(ipaddress.ip_address("127.0.0.1"), allowed)
    assert is_reachable(ipaddress.ip_address("::1"), allowed)
    assert is_reachable(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert is_reachable(ipaddress.ip_address("100.100.100.200"), allowed)
    assert not is_reachable(ipaddress.ip_address("10.0.0.1"), allowed)


async def test_resolution_vets_every_address_of_a_name() -> None:
    # "localhost" resolves locally (no packet leaves the machine) to loopback only.
    with pytest.raises(AddressNotAllowed, match="may not be reached"):
        await resolve_reachable("localhost", 80, timeout_s=5)
    loopback = parse_networks(["127.0.0.0/8", "::1/128"])
    address = await resolve_reachable("localhost", 80, allowed=loopback, timeout_s=5)
    assert address.is_loopback


async def test_literal_addresses_are_vetted_without_resolving() -> None:
    with pytest.raises(AddressNotAllowed):
        await resolve_reachable("100.100.100.200", 80, timeout_s=5)
    assert str(await resolve_reachable("8.8.8.8", 443, timeout_s=5)) == "8.8.8.8"
