"""Who is asking: the client's address and scheme, believing only the reverse proxies we trust.

Behind a proxy every request comes from the proxy's address, and the proxy says who its
client was in ``X-Forwarded-For`` (and how it was reached in ``X-Forwarded-Proto``). Anyone
can send those headers, so they count only when the peer is a proxy named in
``--trusted-proxies``; each proxy appends the address it saw, so the client is the right-most
entry that is not itself one of our proxies.

Limits per client address count an IPv6 address by its /64 network (:func:`limit_key`):
one IPv6 host is usually handed a whole /64, so counting its addresses one by one would
let it pass any such limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV6_SITE_PREFIX = 64  # the network an IPv6 host usually gets for itself


def limit_key(address: str) -> str:
    """What per-address limits count ``address`` as: an IPv4 address as itself, an IPv6
    address as its /64 network (``2001:db8::/64``), an IPv4-mapped IPv6 address as the IPv4
    address; anything that is not an IP address as itself."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_SITE_PREFIX), strict=False))
    return str(ip)


class ClientAddresses:
    """Reads a request's client address and scheme, trusting forwarded headers only from
    ``trusted_proxies`` (addresses or networks such as ``10.0.0.0/8``)."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in trusted_proxies)

    def is_trusted(self, address: str | None) -> bool:
        """True when ``address`` belongs to one of the trusted proxies."""
        if address is None or not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def client_address(self, request: web.Request) -> str:
        """The address of whoever sent ``request``: the peer, or behind a trusted proxy the
        right-most ``X-Forwarded-For`` entry that is not a trusted proxy."""
        peer = request.remote or "unknown"
        if not self.is_trusted(peer):
            return peer
        hops = _listed(request, "X-Forwarded-For")
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop
        # Every hop is one of ours (or the proxy sent none): the left-most is the nearest guess.
        return hops[0] if hops else peer

    def is_https(self, request: web.Request) -> bool:
        """True when the client reached us over TLS: directly, or through a trusted proxy
        whose ``X-Forwarded-Proto`` (the nearest proxy's, the last value) says ``https``."""
        if request.secure:
            return True
        if not self.is_trusted(request.remote):
            return False
        protos = _listed(request, "X-Forwarded-Proto")
        return bool(protos) and protos[-1].lower() == "https"


def _listed(request: web.Request, name: str) -> list[str]:
    """The comma-separated values of every ``name`` header, in order."""
    return [value.strip() for header in request.headers.getall(name, [])
            for value in header.split(",") if value.strip()]
