"""client.address: the socket peer, unless a trusted proxy forwarded the request."""

from __future__ import annotations

import pytest

from otel_audit._config import parse_network
from otel_audit._forwarding import client_address

PROXIES = (parse_network("10.0.0.0/8"), parse_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "xff", "forwarded", "expected"),
    [
        pytest.param(
            "203.0.113.7", [b"1.2.3.4"], [], "203.0.113.7", id="untrusted-peer-spoofs-xff"
        ),
        pytest.param("10.0.0.5", [b"198.51.100.9"], [], "198.51.100.9", id="trusted-proxy"),
        pytest.param(
            "10.0.0.5",
            [b"6.6.6.6, 198.51.100.9, 10.0.0.7"],
            [],
            "198.51.100.9",
            id="chain-right-to-left",
        ),
        pytest.param(
            "10.0.0.5", [b"6.6.6.6", b"198.51.100.9"], [], "198.51.100.9", id="repeated-header"
        ),
        pytest.param("10.0.0.5", [b"garbage"], [], "10.0.0.5", id="garbage-stops-at-proxy"),
        pytest.param("10.0.0.5", [b"198.51.100.9:4711"], [], "198.51.100.9", id="v4-with-port"),
        pytest.param(
            "10.0.0.5",
            [],
            [b'for="[2001:db8::1]:4711";proto=https'],
            "2001:db8::1",
            id="forwarded-v6",
        ),
        pytest.param(
            "10.0.0.5", [b"1.1.1.1"], [b"for=198.51.100.2"], "198.51.100.2", id="forwarded-wins"
        ),
        pytest.param("10.0.0.5", [], [b"for=unknown"], "10.0.0.5", id="forwarded-obfuscated"),
        pytest.param("fd00::1", [b"2001:db8::2"], [], "2001:db8::2", id="v6-proxy"),
        pytest.param("10.0.0.5", [], [], "10.0.0.5", id="proxy-without-headers"),
        pytest.param("not-an-ip", [b"1.2.3.4"], [], "not-an-ip", id="unix-socket-peer"),
    ],
)
def test_client_address(peer: str, xff: list[bytes], forwarded: list[bytes], expected: str) -> None:
    """Forwarding headers count only from trusted proxies, read right to left."""
    assert client_address((peer, 1234), xff, forwarded, PROXIES) == expected


def test_no_trusted_proxies_means_peer_always() -> None:
    """Without configured proxies, forwarding headers are ignored entirely."""
    assert client_address(("10.0.0.5", 1), [b"1.2.3.4"], [], ()) == "10.0.0.5"


def test_missing_peer_gives_no_address() -> None:
    """A scope without a client (some servers, unix sockets) yields no client.address."""
    assert client_address(None, [b"1.2.3.4"], [], PROXIES) is None
