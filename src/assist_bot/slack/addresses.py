"""Where a file download may go, and which hosts may see the bot token.

Two rules, both decided here so that `downloads.py` only asks:

- **The token** goes only to Slack's own origins — the configured Web API's origin (a proxy or
  a test fake) and https://files.slack.com — compared by scheme, host *and* port, so neither
  `http://files.slack.com` nor `https://files.slack.com:8443` ever receives it.
- **Internal addresses** (loopback, private, link-local, 100.64/10 carrier-grade NAT, 0.0.0.0,
  multicast, reserved, and IPv4 hidden inside IPv6) are never reached, whatever the spelling:
  `2130706433`, `0x7f000001`, `127.1`, `0177.0.0.1`, `0` and `[::ffff:127.0.0.1]` are all
  127.0.0.1 or 0.0.0.0 to the operating system, so they are normalised before they are judged,
  and host names are resolved and every address they resolve to is judged. The one exception
  is deliberate: the configured SLACK_API_URL host itself (an operator's proxy, or the tests'
  fake on loopback) is trusted, because the operator chose it.

`GuardedResolver` repeats the check when aiohttp connects, so a name that resolves to a public
address when checked and to an internal one a moment later (DNS rebinding) is still refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Origin = tuple[str, str, int]

SLACK_FILES_ORIGIN: Origin = ("https", "files.slack.com", 443)
_SHARED_NAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC = frozenset("0123456789abcdefxABCDEFX.")


class RefusedAddress(OSError):
    """A connection to an internal address was refused (an OSError, so aiohttp reports it as a connect failure)."""


def literal_ip(host: str) -> IP | None:
    """The address a host literally names, however it is spelled; None for a host name."""
    text = host.strip("[]").rstrip(".")
    ip: IP | None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        ip = None
        # The BSD forms the OS also accepts: 127.1, 2130706433, 0x7f000001, 0177.0.0.1, 0.
        if text and set(text) <= _NUMERIC:
            try:
                ip = ipaddress.IPv4Address(socket.inet_aton(text))
            except OSError:
                ip = None
    return _unwrap(ip) if ip is not None else None


def _unwrap(ip: IP) -> IP:
    """IPv4 carried inside IPv6 (mapped, compatible, 6to4, NAT64) is judged as the IPv4 it reaches."""
    if isinstance(ip, ipaddress.IPv6Address):
        if 1 < int(ip) <= 0xFFFFFFFF:  # ::a.b.c.d, the deprecated IPv4-compatible form (not :: or ::1)
            return ipaddress.IPv4Address(int(ip))
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_internal(ip: IP) -> bool:
    ip = _unwrap(ip)
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip in _SHARED_NAT


def normal_host(host: str) -> str:
    """One spelling per host: lower case, and an IP literal in its canonical form."""
    ip = literal_ip(host)
    return str(ip) if ip is not None else host.lower().rstrip(".")


def origin(url: URL) -> Origin:
    return (url.scheme.lower(), normal_host(url.host or ""), url.port or 0)


@dataclass(frozen=True, slots=True)
class FileHosts:
    """The rules for one bot, built from its SLACK_API_URL."""

    token_origins: frozenset[Origin]
    trusted_host: str  # the configured API host, the one internal host we may reach

    @classmethod
    def for_api(cls, slack_api_url: str) -> FileHosts:
        api = URL(slack_api_url)
        return cls(frozenset({origin(api), SLACK_FILES_ORIGIN}), normal_host(api.host or ""))

    def may_carry_token(self, url: URL) -> bool:
        return origin(url) in self.token_origins

    def is_trusted(self, host: str) -> bool:
        return bool(host) and normal_host(host) == self.trusted_host

    def secure(self, url: URL) -> bool:
        """https, or plain http to the configured host when it is on this machine (a fake or a local proxy)."""
        host = url.host or ""
        if url.scheme == "https":
            return bool(host)
        ip = literal_ip(host)
        loopback = host.lower() == "localhost" or (ip is not None and ip.is_loopback)
        return url.scheme == "http" and loopback and self.is_trusted(host)

    async def reaches_internal(self, url: URL) -> bool:
        """Would fetching `url` connect to an internal address we do not trust? Resolves host names."""
        host = url.host or ""
        if self.is_trusted(host):
            return False
        return any(is_internal(ip) for ip in await resolve(host, url.port or 443))


async def resolve(host: str, port: int) -> list[IP]:
    """Every address `host` stands for; a name that does not resolve raises OSError."""
    ip = literal_ip(host)
    if ip is not None:
        return [ip]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = [literal_ip(str(info[4][0])) for info in infos]
    return [ip for ip in found if ip is not None]


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing internal addresses for every host but the trusted one."""

    def __init__(self, hosts: FileHosts, inner: AbstractResolver | None = None) -> None:
        self._hosts = hosts
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._hosts.is_trusted(host):
            for result in results:
                ip = literal_ip(result["host"])
                if ip is None or is_internal(ip):
                    raise RefusedAddress(f"{host} resolves to an internal address")
        return results

    async def close(self) -> None:
        await self._inner.close()
