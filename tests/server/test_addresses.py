"""What per-address limits count a client as: :func:`roomz.server.addresses.limit_key`."""

from __future__ import annotations

import pytest

from roomz.server.addresses import limit_key


@pytest.mark.parametrize(("address", "key"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    ("[2001:db8:1:2::1]", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("::1", "::/64"),
    ("unknown", "unknown"),
])
def test_ipv6_counts_by_its_64_network_and_ipv4_by_itself(address: str, key: str) -> None:
    """An IPv6 address is counted as its /64 (what one host is usually given), an
    IPv4-mapped one as the IPv4 address, an IPv4 address as itself, anything else as is."""
    assert limit_key(address) == key


def test_two_addresses_of_one_64_share_a_key_and_the_next_64_does_not() -> None:
    """Every address of a /64 shares one key; the neighbouring /64 has its own."""
    assert limit_key("2001:db8::1") == limit_key("2001:db8::ffff:ffff:ffff:ffff")
    assert limit_key("2001:db8::1") != limit_key("2001:db8:0:1::1")
