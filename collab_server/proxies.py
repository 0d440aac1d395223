"""Who a request really comes from when it came through reverse proxies. Framework-free.

A reverse proxy connects to the server itself, so the TCP peer is the proxy.
It passes on what it saw in headers: ``X-Forwarded-For`` (each proxy appends
the address it received the request from), ``X-Forwarded-Proto`` (http or
https) and sometimes ``X-Real-IP``. Anyone can send those headers, so they
count only when the TCP peer is a trusted proxy. ``X-Forwarded-For`` is then
read from the right, skipping trusted proxies; the first address that is not
one is the client. Everything to its left was written by the client itself
(or by proxies nobody vouches for) and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")


def parse_address(text: str) -> Address | None:
    """An address as a proxy writes it (``1.2.3.4``, ``::1``, ``[::1]``), or None.

    IPv4-mapped IPv6 addresses (``::ffff:1.2.3.4``, what a dual-stack socket
    reports) become the IPv4 address. A zone (``%eth0``) is dropped.
    """
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(text: str) -> Network:
    """A trusted proxy entry: an address or a CIDR network. Raises ValueError if it is neither."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or network (like 10.0.0.0/8)") from None


@dataclass(frozen=True, slots=True)
class Client:
    """The client as far as the server can tell: its address and the scheme it used."""

    address: str
    scheme: str


class TrustedProxies:
    """The proxies whose forwarded headers are believed; empty trusts nobody."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        """``entries`` are addresses or CIDR networks; raises ValueError on anything else."""
        self.networks: tuple[Network, ...] = tuple(parse_network(e) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` (as text) is one of the trusted proxies."""
        parsed = parse_address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def client(
        self,
        peer: str,
        scheme: str,
        forwarded_for: str | None = None,
        forwarded_proto: str | None = None,
        real_ip: str | None = None,
    ) -> Client:
        """The real client of a request whose TCP peer is ``peer``, reached over ``scheme``.

        The headers' values are passed as received (several headers of one
        name joined by commas). From an untrusted peer they are ignored. From
        a trusted one, the client is the rightmost ``forwarded_for`` entry that
        is not a trusted proxy (``real_ip`` stands in when there is no
        ``forwarded_for``); an entry that is not an address stops the walk at
        the last trusted hop, so garbage never becomes a client address.
        ``forwarded_proto``'s last entry, if http or https, is the scheme.
        """
        if not self.trusts(peer):
            return Client(peer, scheme)
        if forwarded_for:
            hops = forwarded_for.split(",")
        elif real_ip:
            hops = [real_ip]
        else:
            hops = []
        address = peer
        for hop in reversed(hops):
            parsed = parse_address(hop)
            if parsed is None:
                break
            address = str(parsed)
            if not self.trusts(address):
                break
        if forwarded_proto:
            proto = forwarded_proto.split(",")[-1].strip().lower()
            if proto in SCHEMES:
                scheme = proto
        return Client(address, scheme)
