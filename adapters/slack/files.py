"""Files shared in Slack into sources: download with the bot token, then load and attach."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from agent.core import ArchivistError

log = logging.getLogger(__name__)

# Slack answers a download without a valid token with its HTML sign-in page and status 200.
LOGIN_PAGE = (
    "Slack sent its sign-in page instead of {name}: the bot token cannot read files"
    " (reinstall the app with the files:read scope)."
)


def is_pdf_file(file: dict[str, Any]) -> bool:
    """Whether a Slack file object claims to be a PDF (the loader checks the bytes too)."""
    return file.get("filetype") == "pdf" or file.get("mimetype") == "application/pdf"


def trusted_file_url(url: str, api_base_url: str) -> bool:
    """Whether ``url`` is Slack's own (files.slack.com, or the configured API's host).

    The bot token is sent with the download, so it must never go anywhere else.
    """
    host = urlsplit(url).hostname or ""
    return host == "files.slack.com" or host == urlsplit(api_base_url).hostname


async def download_file(
    file: dict[str, Any], *, token: str, api_base_url: str, max_bytes: int
) -> Path:
    """Download a shared file into a new temporary folder; the caller removes the folder."""
    name = str(file.get("name") or "file.pdf")
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not trusted_file_url(url, api_base_url):
        raise ArchivistError(f"{name} does not come from Slack's file server: not downloaded.")
    if int(file.get("size") or 0) > max_bytes:
        raise ArchivistError(_too_big(name, max_bytes))
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="archivist-slack-"))
    path = folder / "upload.pdf"
    try:
        data = await _fetch(url, name, token, max_bytes)
        await asyncio.to_thread(path.write_bytes, data)
        return path
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise


async def _fetch(url: str, name: str, token: str, max_bytes: int) -> bytes:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as got:
            if got.status != 200:
                raise ArchivistError(f"Slack answered HTTP {got.status} for {name}: try again.")
            html = got.content_type == "text/html"
            chunks: list[bytes] = []
            size = 0
            async for chunk in got.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise ArchivistError(_too_big(name, max_bytes))
                chunks.append(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("download of %s failed: %r", name, exc)
        raise ArchivistError(f"Could not download {name} from Slack: try again.") from exc
    data = b"".join(chunks)
    if html or data[:15].lstrip().lower().startswith((b"<!doctype", b"<html")):
        raise ArchivistError(LOGIN_PAGE.format(name=name))
    return data


def _too_big(name: str, max_bytes: int) -> str:
    return f"{name} is larger than the {max_bytes / 2**20:.0f} MB limit."
