"""Which network addresses a request made on a user's behalf may reach (an SSRF guard).

Used by every component that connects where a user says: the worker's ``http``
executor today, webhooks tomorrow. The rule is an allow-list: only globally routable
unicast addresses pass, unless a configured network contains the address.

``ipaddress``'s ``is_global`` alone is not enough: on the Python versions we support it
calls site-local ``fec0::/10``, IPv4-compatible ``::a.b.c.d`` and 6to4 ``2002::/16``
global, and an IPv6 address can carry an IPv4 one (mapped ``::ffff:a.b.c.d``, NAT64
``64:ff9b::a.b.c.d``) that is what the packet finally reaches. So embedded IPv4
addresses are judged as IPv4, and the deprecated or translating ranges whose real
destination cannot be judged are refused outright.

Decide, then connect to the vetted address (never resolve twice): :func:`resolve_reachable`
returns the address to use, so a DNS answer cannot change between check and use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence

from interlock.common.errors import InterlockError

__all__ = [
    "AddressNotAllowed",
    "HostNotResolved",
    "IPAddress",
    "IPNetwork",
    "is_reachable",
    "parse_networks",
    "resolve_reachable",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressNotAllowed(InterlockError):
    """A host is, or resolves to, an address that may not be reached."""


class HostNotResolved(InterlockError):
    """A host name did not resolve (in time, or to any address)."""


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR ranges such as ``"127.0.0.0/8"`` or ``"::1/128"``.

    Raises:
        ValueError: When one is not a network.
    """
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""RFC 6052 well-known NAT64 prefix: the last 32 bits are the IPv4 destination."""

_REFUSED = parse_networks(
    [
        "100.64.0.0/10",  # shared address space (carrier NAT; some clouds' metadata)
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated (RFC 7526)
        "::/96",  # IPv4-compatible IPv6, deprecated
        "::ffff:0:0:0/96",  # SIIT IPv4-translated addresses
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "2001::/32",  # Teredo: tunnels to an IPv4 address of someone's choosing
        "2002::/16",  # 6to4: same, deprecated
        "fec0::/10",  # site-local, deprecated, is_global says True before Python 3.12
    ]
)
"""Ranges refused although some Python versions call them global."""


def _destination(address: IPAddress) -> IPAddress:
    """The address a packet to ``address`` finally reaches, where IPv6 embeds IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_reachable(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> bool:
    """Tell whether a request on a user's behalf may connect to ``address``.

    Args:
        address: The resolved address.
        allowed: Networks reachable even though they are not public (e.g. an internal
            range a deployment trusts its users with). Default: none.

    Returns:
        Whether the address may be reached: inside ``allowed``, or globally routable
        unicast outside the refused ranges (IPv4 carried in IPv6 is judged as IPv4).
    """
    destination = _destination(address)
    if any(
        candidate.version == net.version and candidate in net
        for candidate in (address, destination)
        for net in allowed
    ):
        return True
    return all(
        candidate.is_global
        and not candidate.is_multicast
        and not any(candidate.version == net.version and candidate in net for net in _REFUSED)
        for candidate in (address, destination)
    )


async def resolve_reachable(
    host: str, port: int, *, allowed: Sequence[IPNetwork] = (), timeout_s: float
) -> IPAddress:
    """Resolve ``host`` and vet every address it has; the first one, to connect to.

    Every address must pass :func:`is_reachable`: a name with one public and one
    internal address is refused, since a client could be handed either.

    Raises:
        HostNotResolved: No answer within ``timeout_s``, or none at all.
        AddressNotAllowed: An address may not be reached.
    """
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            async with asyncio.timeout(timeout_s):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except (OSError, TimeoutError) as error:
            raise HostNotResolved(f"cannot resolve {host!r}: {error}") from None
        # Drop an IPv6 zone ("fe80::1%eth0"): the address is judged, not the interface.
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise HostNotResolved(f"{host!r} resolves to no address")
    denied = [address for address in addresses if not is_reachable(address, allowed)]
    if denied:
        raise AddressNotAllowed(
            f"{host!r} resolves to an address that may not be reached ({denied[0]})"
        )
    return addresses[0]
