"""The client address, believing forwarding headers only from trusted proxies.

``X-Forwarded-For`` and ``Forwarded`` are trivially spoofed by clients, so they are read
only when the socket peer is a configured trusted proxy, and then right to left: the
first address that is not itself a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ._config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port (Forwarded syntax)
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def _forwarded_chain(forwarded_for: list[bytes], forwarded: list[bytes]) -> list[str]:
    """Hop addresses, nearest client first, from ``Forwarded`` (preferred) or XFF."""
    if forwarded:
        hops: list[str] = []
        for header in forwarded:
            for element in header.decode("latin-1").split(","):
                for pair in element.split(";"):
                    key, _, value = pair.strip().partition("=")
                    if key.lower() == "for":
                        hops.append(value)
        return hops
    return [hop for header in forwarded_for for hop in header.decode("latin-1").split(",")]


def client_address(
    peer: Sequence[object] | None,
    forwarded_for: list[bytes],
    forwarded: list[bytes],
    trusted_proxies: Sequence[IPNetwork],
) -> str | None:
    """``client.address`` for a request whose socket peer is ``peer`` (host, port)."""
    host = peer[0] if peer else None
    if not isinstance(host, str):
        return None
    if not trusted_proxies or not (forwarded_for or forwarded):
        return host
    peer_ip = _parse_ip(host)
    if peer_ip is None or not _is_trusted(peer_ip, trusted_proxies):
        return host
    client = peer_ip
    for hop in reversed(_forwarded_chain(forwarded_for, forwarded)):
        hop_ip = _parse_ip(hop)
        if hop_ip is None:
            break  # garbage or an obfuscated identifier: stop at the last address we trust
        client = hop_ip
        if not _is_trusted(hop_ip, trusted_proxies):
            break
    return str(client)
