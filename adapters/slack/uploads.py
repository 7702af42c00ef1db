"""PDFs into sources: a shared file or a link, loaded with a progress message in the channel."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.failures import sentence_for
from adapters.loading import outcome_line, progress_line, source_name
from adapters.progress import ThrottledEdit
from adapters.slack.files import HtmlInsteadOfFile, download_file, html_sentence
from adapters.slack.options import SlackOptions
from adapters.slack.render import escape
from adapters.slack.requests import Place
from agent.core import ArchivistError, Core, FileInput, download, shown_url


class Uploads:
    """Loads files into a workspace's sources and attaches them to a channel's agent."""

    def __init__(self, core: Core, options: SlackOptions, api_base_url: str) -> None:
        self._core = core
        self._options = options
        self._api_base = api_base_url

    async def load_shared(
        self,
        client: AsyncWebClient,
        place: Place,
        file: dict[str, Any],
        *,
        thread: str | None,
        user: str,
        source: str | None = None,
    ) -> None:
        """Download a shared file with the bot token and load it into ``source`` (named after
        the file when None), reporting in ``thread``."""
        name = str(file.get("name") or "file.pdf")
        posted = await client.chat_postMessage(
            channel=place.channel, thread_ts=thread, text=f"Loading {name}…"
        )
        show = self._updater(client, place.channel, str(posted["ts"]))
        try:
            path = await download_file(
                file,
                token=self._options.bot_token,
                api_base_url=self._api_base,
                max_bytes=self._options.max_upload_bytes,
            )
        except HtmlInsteadOfFile as exc:
            await show.finish(await html_sentence(client, file, exc))
            return
        except ArchivistError as exc:
            await show.finish(sentence_for(exc, f"download of {name}"))
            return
        try:
            line = await self._load(
                place,
                path,
                name,
                by=f"slack:{user}",
                origin=file.get("permalink"),
                show=show,
                source=source,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, path.parent, True)
        await show.finish(line)

    async def load_link(self, client: AsyncWebClient, place: Place, url: str, *, user: str) -> None:
        """Fetch a PDF from the web (never from inside the network) and load it."""
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="archivist-url-"))
        try:
            got = await download(
                url,
                folder,
                max_bytes=self._options.max_upload_bytes,
                allow_private=self._options.allow_private_urls,
                allowed_hosts=self._options.allowed_url_hosts,
            )
            # A real message, not the command's response_url: Slack takes only five posts
            # there, fewer than a load's progress updates.
            posted = await client.chat_postMessage(
                channel=place.channel, text=f"Loading {escape(got.name)}…"
            )
            show = self._updater(client, place.channel, str(posted["ts"]))
            line = await self._load(
                place,
                got.path,
                got.name,
                by=f"slack:{user}",
                # Without its query: a signed link's key must not reach every channel.
                origin=shown_url(url),
                show=show,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        await show.finish(line)

    async def _load(
        self,
        place: Place,
        path: Path,
        name: str,
        *,
        by: str,
        origin: str | None,
        show: ThrottledEdit,
        source: str | None = None,
    ) -> str:
        source = source_name(name, source)
        try:
            report = await self._core.load(
                place.conversation,
                place.scope,
                source,
                [FileInput(path, name=name, origin=origin)],
                by=by,
                progress=lambda p: show.update(progress_line(p)),
            )
        except ArchivistError as exc:
            return str(exc)
        return outcome_line(report, "this channel")

    def _updater(self, client: AsyncWebClient, channel: str, ts: str) -> ThrottledEdit:
        return ThrottledEdit(
            lambda text: client.chat_update(channel=channel, ts=ts, text=text),
            interval=self._options.progress_interval,
        )
