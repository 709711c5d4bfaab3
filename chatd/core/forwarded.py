"""Which address a request came from, behind reverse proxies: read X-Forwarded-For from the right.

Each proxy appends the address it received the request from (nginx's
`$proxy_add_x_forwarded_for`), so only the entries our own proxies added can be believed; the
leftmost ones are whatever the client sent. Two ways to say which proxies are ours:

- a number of hops: the address that many entries from the right is the client's
  (1: one nginx in front; the rightmost entry is what it saw);
- trusted networks: if the direct peer is trusted, walk from the right past trusted addresses;
  the first one that is not trusted is the client's.

When the header cannot be believed (too few entries, an entry that is no address, a peer that
is not a trusted proxy) the answer falls back to the nearest address we can vouch for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyTrust:
    """Whose X-Forwarded-For entries to believe: `hops` proxies, or those in `networks`.

    Both empty: the header is ignored and the peer's address is the client's."""

    hops: int = 0
    networks: tuple[Network, ...] = ()

    def __post_init__(self) -> None:
        if self.hops < 0:
            raise ValueError("hops must be 0 or more")
        if self.hops and self.networks:
            raise ValueError("trust either a number of hops or a list of networks, not both")

    @property
    def ignores_header(self) -> bool:
        return not self.hops and not self.networks

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def parse_networks(text: str) -> tuple[Network, ...]:
    """ "127.0.0.1/32, 10.0.0.0/8, ::1" (a bare address is a network of one); ValueError naming
    the entry that is not a network."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP network; write e.g. 10.0.0.0/8, 127.0.0.1 or fd00::/8"
            ) from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: "1.2.3.4", "1.2.3.4:5678", "2001:db8::1",
    "[2001:db8::1]:443"; None if it is none (e.g. "unknown", "_hidden"). An IPv4 address in
    IPv6 clothing (::ffff:1.2.3.4) is the IPv4 address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_entries(headers: Iterable[str]) -> list[str]:
    """The entries of every X-Forwarded-For header, in order (several headers are one list)."""
    return [entry.strip() for header in headers for entry in header.split(",") if entry.strip()]


def client_address(peer: str | None, headers: Iterable[str], trust: ProxyTrust) -> str | None:
    """The client's address: from the X-Forwarded-For `headers` as far as `trust` allows, else
    `peer` (the direct connection's address; None if unknown)."""
    if trust.ignores_header:
        return peer
    entries = forwarded_entries(headers)
    if trust.hops:
        if len(entries) < trust.hops:
            return peer  # not through all our proxies: the header says nothing we can believe
        address = parse_address(entries[-trust.hops])
        return str(address) if address is not None else peer
    return _walk_trusted(peer, entries, trust)


def _walk_trusted(peer: str | None, entries: list[str], trust: ProxyTrust) -> str | None:
    nearest = parse_address(peer) if peer is not None else None
    if nearest is None or not trust.trusts(nearest):
        return peer  # not from one of our proxies: its header could say anything
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            break  # a trusted proxy passed on something unreadable: it is where we stop
        nearest = address
        if not trust.trusts(address):
            break
    return str(nearest)
