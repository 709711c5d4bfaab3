"""X-Forwarded-For read from the right: hostile headers cannot choose the client's address."""

from __future__ import annotations

import ipaddress

import pytest

from chatd.core.forwarded import (
    ProxyTrust,
    client_address,
    forwarded_entries,
    parse_address,
    parse_networks,
)

PEER = "127.0.0.1"  # the proxy on this machine
ONE_HOP = ProxyTrust(hops=1)
TWO_HOPS = ProxyTrust(hops=2)
LOCAL_AND_LAN = ProxyTrust(networks=parse_networks("127.0.0.1/32, 10.0.0.0/8, fd00::/8"))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["203.0.113.7"], "203.0.113.7"),  # the client sent none; nginx added what it saw
        (["1.1.1.1, 203.0.113.7"], "203.0.113.7"),  # a spoofed leftmost entry is ignored
        (["1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.7"], "203.0.113.7"),
        (["  1.1.1.1 ,203.0.113.7  "], "203.0.113.7"),  # whitespace
        (["1.1.1.1", "203.0.113.7"], "203.0.113.7"),  # the proxy added a second header line
        (["1.1.1.1,,203.0.113.7,"], "203.0.113.7"),  # empty entries do not count as hops
        (["garbage, 203.0.113.7"], "203.0.113.7"),  # garbage the client sent is ignored
        (["1.1.1.1, 2001:DB8:0::1"], "2001:db8::1"),  # IPv6, written canonically
        (["1.1.1.1, [2001:db8::1]:4711"], "2001:db8::1"),  # with a port
        (["1.1.1.1, 203.0.113.7:4711"], "203.0.113.7"),
        (["1.1.1.1, ::ffff:203.0.113.7"], "203.0.113.7"),  # IPv4 in IPv6 clothing
    ],
)
def test_one_hop_takes_the_rightmost_entry(headers: list[str], expected: str) -> None:
    assert client_address(PEER, headers, ONE_HOP) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], PEER),  # no header: the peer
        ([""], PEER),
        ([" , "], PEER),
        (["unknown"], PEER),  # the proxy wrote something that is no address
        (["203.0.113.7, not-an-ip"], PEER),
    ],
)
def test_one_hop_falls_back_to_the_peer(headers: list[str], expected: str) -> None:
    assert client_address(PEER, headers, ONE_HOP) == expected


def test_two_hops_take_the_second_from_the_right() -> None:
    headers = ["1.1.1.1, 203.0.113.7, 10.0.0.5"]  # client, CDN edge -> nginx -> chatd
    assert client_address(PEER, headers, TWO_HOPS) == "203.0.113.7"


def test_too_few_entries_for_the_hops_fall_back_to_the_peer() -> None:
    """Fewer entries than proxies: the request did not come through them all."""
    assert client_address(PEER, ["203.0.113.7"], TWO_HOPS) == PEER
    assert client_address(None, ["203.0.113.7"], TWO_HOPS) is None


def test_no_trust_ignores_the_header() -> None:
    assert client_address(PEER, ["203.0.113.7"], ProxyTrust()) == PEER
    assert client_address(None, ["203.0.113.7"], ProxyTrust()) is None


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        (PEER, ["1.1.1.1, 203.0.113.7"], "203.0.113.7"),
        (PEER, ["1.1.1.1, 203.0.113.7, 10.0.0.5, 10.1.2.3"], "203.0.113.7"),  # a chain of ours
        (PEER, ["1.1.1.1", "203.0.113.7", "10.0.0.5"], "203.0.113.7"),  # in several headers
        (PEER, ["1.1.1.1, 2001:db8::7, fd00::1"], "2001:db8::7"),
        (PEER, [], PEER),  # a trusted peer that forwarded nothing is itself the client
        (PEER, ["10.0.0.9, 10.0.0.5"], "10.0.0.9"),  # all trusted: the farthest one
        (PEER, ["203.0.113.7, garbage, 10.0.0.5"], "10.0.0.5"),  # stop at the unreadable
        (PEER, ["203.0.113.7, garbage"], PEER),
        ("::ffff:127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # the peer in IPv6 clothing
        # A peer that is not a trusted proxy: its header could say anything.
        ("198.51.100.4", ["1.1.1.1, 203.0.113.7, 10.0.0.5"], "198.51.100.4"),
        ("<local>", ["203.0.113.7"], "<local>"),
        (None, ["203.0.113.7"], None),
    ],
)
def test_trusted_networks_walk_from_the_right(
    peer: str | None, headers: list[str], expected: str | None
) -> None:
    assert client_address(peer, headers, LOCAL_AND_LAN) == expected


def test_parse_networks() -> None:
    assert parse_networks(" 127.0.0.1/32 , 10.0.0.0/8,::1, 192.168.1.7/24 ,") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("192.168.1.0/24"),  # host bits are forgiven
    )
    assert parse_networks("") == ()


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "localhost", "10.0.0", "1.2.3.4/8/8", "*"])
def test_parse_networks_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an IP network") as error:
        parse_networks(f"127.0.0.1, {bad}")
    assert repr(bad) in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7:80 ", "203.0.113.7"),
        ("[::1]", "::1"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
        ("unknown", None),
        ("_hidden", None),
        ("", None),
        ("[::1", "::1"),
        ("1.2.3.4.5", None),
        ("999.1.1.1", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address is not None else None) == expected


def test_forwarded_entries_join_several_headers_in_order() -> None:
    assert forwarded_entries(["a, b", " c ", "", "d,,e"]) == ["a", "b", "c", "d", "e"]


def test_trust_is_hops_or_networks_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        ProxyTrust(hops=1, networks=parse_networks("10.0.0.0/8"))
    with pytest.raises(ValueError, match="0 or more"):
        ProxyTrust(hops=-1)
