"""Which network addresses the ``http`` executor may reach."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["IPAddress", "IPNetwork", "is_reachable", "parse_networks"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR ranges such as ``"127.0.0.0/8"`` or ``"::1/128"``.

    Raises:
        ValueError: When one is not a network.
    """
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def is_reachable(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> bool:
    """Tell whether a task may connect to ``address``.

    Public unicast addresses are reachable. Private, loopback, link-local (cloud
    metadata endpoints live there), unspecified, multicast and reserved ones are not,
    unless a network of ``allowed`` contains them. IPv4 addresses written as IPv6
    (``::ffff:10.0.0.1``) are judged as IPv4.

    Args:
        address: The resolved address.
        allowed: Networks reachable even though they are not public. Default: none.

    Returns:
        Whether the address may be reached.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address.version == net.version and address in net for net in allowed):
        return True
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )
