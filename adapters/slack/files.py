"""Files shared in Slack into sources: download with the bot token, then load and attach."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.core import ArchivistError

log = logging.getLogger(__name__)

# Slack answers a download it will not serve with an HTML page (its sign-in page) and status
# 200: to a token without files:read, but also behind SSO or a proxy, or for a file gone.
HTML_INSTEAD = "Slack sent an HTML page instead of {name}: nothing was loaded; share it again."
NO_FILES_READ = (
    "Slack sent its sign-in page instead of {name}: the bot token lacks the files:read scope"
    " (reinstall the app with it)."
)


class HtmlInsteadOfFile(ArchivistError):
    """A download answered with a web page; :func:`html_sentence` says why, if Slack tells."""

    def __init__(self, name: str) -> None:
        super().__init__(HTML_INSTEAD.format(name=name))
        self.name = name


def is_pdf_file(file: dict[str, Any]) -> bool:
    """Whether a Slack file object claims to be a PDF (the loader checks the bytes too)."""
    return file.get("filetype") == "pdf" or file.get("mimetype") == "application/pdf"


def is_stub(file: dict[str, Any]) -> bool:
    """Whether a message shows only a stub of the file (Slack Connect shares, for instance):
    what it is, its name and its URL come from ``files.info``."""
    return file.get("file_access") == "check_file_info"


def may_be_pdf(file: dict[str, Any]) -> bool:
    """Whether a shared file is a PDF, or a stub that may be one."""
    return is_pdf_file(file) or is_stub(file)


async def whole_file(client: AsyncWebClient, file: dict[str, Any]) -> dict[str, Any]:
    """The file object itself: ``file``, or for a stub what ``files.info`` says about it."""
    if not is_stub(file):
        return file
    try:
        info = await client.files_info(file=str(file.get("id") or ""))
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning("files.info for shared file %s failed: %s", file.get("id"), error)
        raise ArchivistError(
            f"Slack would not describe the shared file ({error}): share it again."
        ) from exc
    found = info.get("file")
    return dict(found) if isinstance(found, dict) else file


def file_hosts(api_base_url: str) -> frozenset[str]:
    """The hosts whose files may be fetched with the bot token: files.slack.com, the API's
    host and its ``files.`` host (``slack-gov.com`` → ``files.slack-gov.com``)."""
    api = urlsplit(api_base_url).hostname or "slack.com"
    domain = api.removeprefix("api.")
    return frozenset({"files.slack.com", api, f"files.{domain}"})


def trusted_file_url(url: str, api_base_url: str) -> bool:
    """Whether ``url`` is on one of the configured Slack's :func:`file_hosts`.

    The bot token is sent with the download, so it must never go anywhere else.
    """
    return (urlsplit(url).hostname or "") in file_hosts(api_base_url)


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
            content_type = got.content_type
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
    if content_type == "text/html" or data[:15].lstrip().lower().startswith(
        (b"<!doctype", b"<html")
    ):
        title = re.search(rb"<title>([^<]{0,80})", data, re.IGNORECASE)
        log.warning(
            "download of %s from %s: an HTML page (%s, title %r) instead of the file",
            name,
            urlsplit(url).hostname,
            content_type,
            title[1].decode(errors="replace").strip() if title else None,
        )
        raise HtmlInsteadOfFile(name)
    return data


async def html_sentence(
    client: AsyncWebClient, file: dict[str, Any], error: HtmlInsteadOfFile
) -> str:
    """What to say about a web page received instead of ``file``: a token that may not read
    files is named as the cause (Slack says so through ``files.info``), anything else is not."""
    try:
        await client.files_info(file=str(file.get("id") or ""))
    except SlackApiError as exc:
        if exc.response.get("error") == "missing_scope":
            return NO_FILES_READ.format(name=error.name)
        log.info("files.info for %s: %s", file.get("id"), exc.response.get("error"))
    return str(error)


def _too_big(name: str, max_bytes: int) -> str:
    return f"{name} is larger than the {max_bytes / 2**20:.0f} MB limit."
