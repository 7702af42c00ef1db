"""The PostgreSQL fixtures give each test a working database of its own on a local server."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

_seen: list[str] = []


async def test_query_round_trips(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("CREATE TABLE note (id bigint PRIMARY KEY, body text, tags text[])")
        await conn.executemany(
            "INSERT INTO note VALUES ($1, $2, $3)",
            [(1, "première page", ["a", "b"]), (2, "€ and 漢字", [])],
        )
        rows = await conn.fetch("SELECT id, body, tags FROM note ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, "première page", ["a", "b"]), (2, "€ and 漢字", [])]
        assert await conn.fetchval("SELECT current_database()") == urlsplit(postgres_url).path[1:]
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
    finally:
        await conn.close()


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_has_its_own_database(
    run: int, postgres_url: str, postgres_server_url: str
) -> None:
    """Both runs create the same table: on a shared database the second would find it."""
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('marker')") is None
        await conn.execute("CREATE TABLE marker (run int)")
        await conn.execute("INSERT INTO marker VALUES ($1)", run)
        assert await conn.fetchval("SELECT count(*) FROM marker") == 1
    finally:
        await conn.close()
    name = urlsplit(postgres_url).path[1:]
    admin = await asyncpg.connect(postgres_server_url)
    try:
        existing = {r[0] for r in await admin.fetch("SELECT datname FROM pg_database")}
    finally:
        await admin.close()
    assert name in existing
    # The run before this one (in either order) dropped its database when it ended.
    assert not existing & set(_seen)
    _seen.append(name)


def _listeners(port: int) -> list[str]:
    """Local addresses (hex, as the kernel writes them) of TCP sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def _refused(family: socket.AddressFamily, host: str, port: int) -> bool:
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # no IPv6 on this machine: nothing can listen there either
        return True
    with s:
        s.settimeout(2)
        return s.connect_ex((host, port)) != 0


@pytest.mark.skipif(
    bool(os.environ.get("POSTGRES_SERVER_URL")), reason="an external server is not ours to check"
)
async def test_server_listens_on_loopback_only(postgres_url: str) -> None:
    port = urlsplit(postgres_url).port
    assert port is not None
    assert _listeners(port) == ["0100007F"]  # 127.0.0.1, little-endian; nothing on IPv6
    assert _refused(socket.AF_INET6, "::1", port)
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
        assert not (await conn.fetchval("SHOW unix_socket_directories")).startswith("/var/run")
        # Test-speed settings reached the server.
        assert await conn.fetchval("SHOW fsync") == "off"
        assert int(await conn.fetchval("SHOW max_connections")) >= 200
    finally:
        await conn.close()
