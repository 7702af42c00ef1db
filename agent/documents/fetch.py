"""Downloading documents from URLs without letting a URL reach inside the network.

A ``/load https://…`` command makes the bot fetch what a user names, so a URL must not reach
the bot's own machine, its private network or a cloud metadata service (SSRF). Every address
a request connects to is checked, after DNS resolution and on every redirect hop, by
resolving through :class:`PublicOnlyResolver`; literal IP hosts are checked before the
request. The size limit is enforced while streaming, whatever ``Content-Length`` says.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from agent.errors import ArchivistError, shown_url

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_CHUNK = 1 << 16


class UrlRefused(ArchivistError):
    """The URL is not allowed or could not be fetched; the message says which and why."""


@dataclass(frozen=True)
class Downloaded:
    """A fetched file: where it was saved, its name from the URL, and its size in bytes."""

    path: Path
    name: str
    size: int


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local…)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public(str(embedded))
    return ip.is_global and not ip.is_multicast


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, IPv4-compatible): a
    network that translates it reaches that IPv4 host, so that is the one to check."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp does, then refuses any host that resolves to a non-public address.

    All of a name's addresses must be public: a name with one private address among public
    ones is refused rather than filtered, as it is either misconfigured or a rebinding trick.
    """

    def __init__(self, allowed_hosts: frozenset[str] = frozenset()) -> None:
        self._inner = DefaultResolver()
        self._allowed = allowed_hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses, if every one of them is public."""
        results = await self._inner.resolve(host, port, family)
        if host in self._allowed:
            return results
        private = [r["host"] for r in results if not is_public(r["host"])]
        if private:
            raise UrlRefused(
                f"{host} resolves to a private or local address ({private[0]}): loading from"
                " inside the network is off (an admin can allow it: [ingest] allow_private_urls)."
            )
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


async def download(
    url: str,
    folder: Path,
    *,
    max_bytes: int,
    allow_private: bool = False,
    allowed_hosts: frozenset[str] = frozenset(),
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``folder``; raises :class:`UrlRefused` with the reason.

    ``allowed_hosts`` are exempt from the private-address check (an intranet document
    server an operator trusts). Redirects are followed by hand (at most
    :data:`MAX_REDIRECTS`) so each hop is checked.
    """
    connector = aiohttp.TCPConnector(
        resolver=None if allow_private else PublicOnlyResolver(allowed_hosts),
        use_dns_cache=False,
    )
    limits = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=limits) as session:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(current, allow_private or urlsplit(current).hostname in allowed_hosts)
            try:
                async with session.get(current, allow_redirects=False, headers=headers) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise UrlRefused(f"{shown_url(current)} redirects nowhere.")
                        current = str(response.url.join(URL(location)))
                        continue
                    if response.status != 200:
                        raise UrlRefused(
                            f"{shown_url(current)} answered HTTP {response.status}: check the link."
                        )
                    return await _save(response, current, folder, max_bytes)
            except UrlRefused:
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("download of %s failed: %r", shown_url(current), exc)
                raise UrlRefused(
                    f"Could not download {shown_url(current)} ({type(exc).__name__}):"
                    " check the link and try again."
                ) from exc
        raise UrlRefused(f"{shown_url(url)} redirects more than {MAX_REDIRECTS} times.")


def _check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"Only http:// and https:// links can be loaded, not {shown_url(url)}.")
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return  # a name: checked when it is resolved
    if not is_public(str(literal)):
        raise UrlRefused(
            f"{parts.hostname} is a private or local address: loading from inside the network"
            " is off (an admin can allow it: [ingest] allow_private_urls)."
        )


async def _save(response: Any, url: str, folder: Path, max_bytes: int) -> Downloaded:
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise UrlRefused(_too_big(url, max_bytes))
    name = _file_name(url)
    path = folder / "download"
    size = 0
    with path.open("wb") as out:  # small chunks: each write is brief next to the network wait
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UrlRefused(_too_big(url, max_bytes))
            out.write(chunk)
    return Downloaded(path, name, size)


def _too_big(url: str, max_bytes: int) -> str:
    return f"{shown_url(url)} is larger than the {max_bytes / 2**20:.0f} MB limit."


def _file_name(url: str) -> str:
    last = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    return last or "download.pdf"
