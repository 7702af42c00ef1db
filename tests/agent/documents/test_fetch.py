"""Loading from URLs: private and local addresses refused, on every hop; size limits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.documents.fetch import UrlRefused, download, is_public


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),  # AWS metadata over IPv6
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 to 169.254.169.254
        ("2002:7f00:1::1", False),  # 6to4 around 127.0.0.1
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("64:ff9b::5db8:d822", True),  # NAT64 to a public address
    ],
)
def test_only_globally_routable_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/manual.pdf",
        "http://10.0.0.8/manual.pdf",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/manual.pdf",
        "http://localhost:9/manual.pdf",
    ],
)
async def test_private_and_local_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(UrlRefused, match="private or local address"):
        await download(url, tmp_path, max_bytes=1 << 20)


async def test_other_schemes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UrlRefused, match="Only http:// and https://"):
        await download("file:///etc/passwd", tmp_path, max_bytes=1 << 20)


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """A local server: a PDF, a redirect to the metadata address, a stream without length."""

    async def pdf(request: web.Request) -> web.Response:
        return web.Response(body=b"%PDF-1.4 small", content_type="application/pdf")

    async def to_metadata(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def to_pdf(request: web.Request) -> web.Response:
        raise web.HTTPFound("/files/paper.pdf")

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 65536)
        return response

    app = web.Application()
    app.router.add_get("/files/paper.pdf", pdf)
    app.router.add_get("/moved", to_metadata)
    app.router.add_get("/short", to_pdf)
    app.router.add_get("/endless.pdf", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_an_allowed_host_is_fetched_following_redirects(site: str, tmp_path: Path) -> None:
    got = await download(
        f"{site}/short", tmp_path, max_bytes=1 << 20, allowed_hosts=frozenset({"127.0.0.1"})
    )
    assert (got.name, got.size) == ("paper.pdf", 14)
    assert got.path.read_bytes() == b"%PDF-1.4 small"


async def test_a_redirect_into_the_network_is_refused(site: str, tmp_path: Path) -> None:
    with pytest.raises(
        UrlRefused, match=re.escape("169.254.169.254 is a private or local address")
    ):
        await download(
            f"{site}/moved", tmp_path, max_bytes=1 << 20, allowed_hosts=frozenset({"127.0.0.1"})
        )


async def test_the_size_limit_holds_while_streaming(site: str, tmp_path: Path) -> None:
    with pytest.raises(UrlRefused, match="larger than the 1 MB limit"):
        await download(f"{site}/endless.pdf", tmp_path, max_bytes=1 << 20, allow_private=True)
