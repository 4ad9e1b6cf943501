"""Turning a host name into socket addresses without blocking the executor.

``socket.getaddrinfo`` may wait seconds for a DNS server, and a fiber that
calls it stops every other fiber meanwhile. So:

* numeric addresses (``127.0.0.1``, ``::1``) are parsed here, at once;
* ``localhost`` means the loopback addresses (RFC 6761), also at once;
* any other name goes to :func:`rocket.getaddrinfo`, which resolves in a worker
  thread, when that helper is available.

The result is a list of ``(family, sockaddr)`` pairs, in the order to try.
"""

from __future__ import annotations

import socket
from collections.abc import Generator
from typing import Any

from rocket.request import Request
from rocket.threads import getaddrinfo

__all__ = ["Address", "check_host", "check_port", "has_ipv6", "numeric", "resolve", "wildcard"]

#: ``(family, sockaddr)``: what ``socket(family).connect(sockaddr)`` needs.
Address = tuple[int, Any]


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


_IPV6: bool | None = None


def has_ipv6() -> bool:
    """True if this machine can bind an IPv6 loopback socket (checked once)."""
    global _IPV6
    if _IPV6 is None:
        _IPV6 = _has_ipv6()
    return _IPV6


def check_port(port: Any, op: str) -> int:
    """A port number 0..65535 (0: let the kernel pick one)."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{op}() argument 'port' must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{op}() argument 'port' must be between 0 and 65535, got {port}")
    return int(port)


def check_host(host: Any, op: str) -> str:
    """A host name or address: a non-empty str."""
    if not isinstance(host, str) or not host:
        raise TypeError(f"{op}() argument 'host' must be a non-empty str, not {host!r}")
    return host


def numeric(host: str, port: int) -> list[Address] | None:
    """The address list for a numeric or loopback host, or None if it needs DNS."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.partition("%")[0])
        except OSError:
            continue
        return [(family, (host, port))]
    if host.lower() in ("localhost", "localhost."):
        found: list[Address] = [(socket.AF_INET, ("127.0.0.1", port))]
        if has_ipv6():
            found.append((socket.AF_INET6, ("::1", port)))
        return found
    return None


def wildcard(port: int) -> list[Address]:
    """Every interface: IPv4 ``0.0.0.0`` and, where it exists, IPv6 ``::``."""
    found: list[Address] = [(socket.AF_INET, ("0.0.0.0", port))]
    if has_ipv6():
        found.append((socket.AF_INET6, ("::", port)))
    return found


def resolve(host: str, port: int, op: str) -> Generator[Request[Any], Any, list[Address]]:
    """All stream addresses of ``host``, resolving names without blocking.

    Use with ``yield from``. Raises ``socket.gaierror`` for a name that does
    not resolve, as ``socket.getaddrinfo`` does.
    """
    check_host(host, op)
    found = numeric(host, port)
    if found is not None:
        return found
    infos = yield from getaddrinfo(host, port)
    addresses: list[Address] = []
    for family, kind, _proto, _name, sockaddr in infos:
        if kind in (0, socket.SOCK_STREAM) and (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{op}(): {host!r} has no stream address")
    return addresses
