"""Where webhooks may go: public addresses only (in prod), checked when an endpoint is registered and
again when each request is sent, on the address actually connected to.

At registration a host that is a private address in any spelling is refused: `127.1`, `2130706433`,
`0x7f000001` and `0177.0.0.1` all parse as 127.0.0.1 (inet_aton), `0` as 0.0.0.0; so are
`localhost`, `localhost.` and `*.localhost`. A hostname may still resolve to a private address later
(DNS rebinding), so the sender's connector resolves through `PublicResolver`, which drops every
private, loopback, link-local (cloud metadata at 169.254.169.254), shared, reserved and multicast
address; aiohttp connects to what the resolver returned, so the checked address is the one used.
Literal IPs in a URL skip resolvers, so the sender checks those itself. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(OSError):
    """The receiver resolves only to addresses webhooks may not reach."""


def allowed(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal(host: str) -> Address | None:
    """The address a host names by itself, in any spelling a resolver accepts, or None for a name."""
    h = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(h))  # 127.1, 2130706433, 0x7f000001, 0177.0.0.1, 0
    except (OSError, ValueError):
        return None


def host_problem(host: str) -> str | None:
    """Why webhooks may not be sent to `host`, or None if it may be (names are checked again when sent)."""
    h = host.lower().rstrip(".")
    if not h:
        return "no host"
    if h == "localhost" or h.endswith(".localhost"):
        return "loopback addresses are not allowed"
    ip = literal(h)
    if ip is not None and not allowed(ip):
        return "loopback, private, link-local and reserved addresses are not allowed"
    return None


class PublicResolver(AbstractResolver):
    """A resolver that answers only with addresses webhooks may reach."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if allowed(ipaddress.ip_address(r["host"]))]
        if not kept:
            raise Refused(f"refused: {host} resolves only to private or reserved addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def check_url_host(host: str | None) -> None:
    """Before sending: a literal address in the URL (resolvers never see those) must be public."""
    ip = None if host is None else literal(host)
    if ip is not None and not allowed(ip):
        raise Refused(f"refused: {host} is not a public address")


def connector_options(allow_private: bool) -> dict[str, Any]:
    return {} if allow_private else {"resolver": PublicResolver()}
