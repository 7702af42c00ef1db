"""Where a running bot's admin endpoint is, for commands started beside it.

The bot writes ``<data_dir>/admin.json`` (its URL, a fresh token, its pid) readable by its
owner only, and removes it when it stops; a command that finds the file and gets an answer
from the URL with the token hands its work to the bot (:mod:`bot.handoff`). A file left by a
bot that was killed names a port nobody answers on, or answers without that token: the
command then runs in its own process as it would without a bot.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.core import Core


ADMIN_FILE = "admin.json"


@dataclass(frozen=True)
class AdminAddress:
    """How to reach a running bot's admin endpoint."""

    url: str
    token: str
    pid: int


def admin_file(data_dir: Path) -> Path:
    """The file naming the admin endpoint of the bot using ``data_dir``."""
    return data_dir / ADMIN_FILE


def read_address(data_dir: Path) -> AdminAddress | None:
    """The address a bot using ``data_dir`` wrote, if there is a readable one."""
    try:
        fields = json.loads(admin_file(data_dir).read_text(encoding="utf-8"))
        return AdminAddress(str(fields["url"]), str(fields["token"]), int(fields["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable and writable by the owner only."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


@asynccontextmanager
async def serving_admin(core: Core, data_dir: Path) -> AsyncIterator[AdminAddress]:
    """Serve the admin endpoint for ``core`` and name it in ``data_dir`` while it runs."""
    # Here, not at the top: commands that only look for a running bot import this module.
    from adapters.admin import AdminServer

    token = secrets.token_urlsafe(32)
    server = AdminServer(core, token)
    port = await server.start()
    address = AdminAddress(f"http://127.0.0.1:{port}", token, os.getpid())
    path = admin_file(data_dir)
    try:
        _write_private(path, json.dumps(address.__dict__))
        yield address
    finally:
        # Only our own file: a second bot on this folder may have written its own since.
        if read_address(data_dir) == address:
            with contextlib.suppress(OSError):
                path.unlink()
        await server.close()
