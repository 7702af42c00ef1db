"""Sources in a workspace: shared PDFs, /load, /attach (and its menu), /detach, /sources."""

from __future__ import annotations

import re

from adapters.loading import shared_with
from adapters.policy import Action, UploadAnswer, reads_uploads, refusal, upload_answer
from adapters.slack.access import require, standing
from adapters.slack.files import is_pdf_file, may_be_pdf, whole_file
from adapters.slack.options import SlackOptions
from adapters.slack.render import escape
from adapters.slack.requests import JSON, Place, Request
from adapters.slack.uploads import Uploads
from agent.core import ArchivistError, Core, shown_url

ATTACH_ACTION = "archivist_attach"
NO_SOURCES = "No sources yet: share a PDF in a channel, or /load a link."
LOAD_USAGE = "Usage: /load https://example.org/paper.pdf (or share the PDF in the channel)."
# How far back /load looks for a shared PDF.
_HISTORY = 100
_URL = re.compile(r"<?(https?://[^\s|>]+)")


class Sources:
    """Loading, attaching and listing the documents a workspace's agents can read."""

    def __init__(self, core: Core, options: SlackOptions, api_base_url: str) -> None:
        self._core = core
        self._options = options
        self._uploads = Uploads(core, options, api_base_url)

    async def on_file_share(self, request: Request) -> None:
        """Load each PDF shared in a channel once, with a progress message in its thread.

        Which shares are read, and what someone who may not load hears, is
        :mod:`adapters.policy`'s: a share that does not mention the bot is not a request.
        """
        event, addressed = request.event, request.addressed
        if not reads_uploads(self._options.ingest_uploads, addressed=addressed):
            return
        channel, ts = request.place.channel, event["ts"]
        claimed = [
            file
            for file in event.get("files") or []
            if may_be_pdf(file)
            and await self._core.first_delivery(f"slack:file:{file.get('id')}:{channel}:{ts}")
        ]
        pdfs = [f for f in await self._whole(request, claimed) if is_pdf_file(f)]
        if not pdfs:
            return
        found = await standing(request.client, request.user, self._options)
        answer = upload_answer(found, addressed=addressed)
        if answer is UploadAnswer.REFUSE:
            await request.post(str(refusal(found)))
        if answer is not UploadAnswer.LOAD:
            return
        name, _ = shared_with(request.question)
        for file in pdfs:
            await self._uploads.load_shared(
                request.client,
                request.place,
                file,
                thread=request.thread,
                user=request.user,
                source=name,
            )

    async def _whole(self, request: Request, files: list[JSON]) -> list[JSON]:
        """The files themselves (stubs looked up); one Slack will not describe is skipped,
        and the sender hears why when they asked the bot."""
        found = []
        for file in files:
            try:
                found.append(await whole_file(request.client, file))
            except ArchivistError as exc:
                if request.addressed:
                    await request.post(str(exc))
        return found

    async def attach(self, request: Request) -> None:
        """``/attach [source]``: attach by name, or offer a menu of the workspace's sources."""
        await require(request, Action.ATTACH, self._options)
        name = request.text.strip()
        if name:
            await request.respond(await self._attach(request.place, name, request.user))
            return
        sources = await self._core.sources(request.place.scope)
        if not sources:
            await request.respond(NO_SOURCES)
            return
        options = [
            {"text": {"type": "plain_text", "text": s.name[:75]}, "value": s.name[:150]}
            for s in sources[:100]
        ]
        await request.respond(
            "Attach which source?",
            blocks=[
                {
                    "type": "section",
                    "block_id": "attach",
                    "text": {"type": "mrkdwn", "text": "Attach which source to this channel?"},
                    "accessory": {
                        "type": "static_select",
                        "action_id": ATTACH_ACTION,
                        "placeholder": {"type": "plain_text", "text": "A source"},
                        "options": options,
                    },
                }
            ],
        )

    async def attach_chosen(self, request: Request) -> None:
        """A source picked from the /attach menu."""
        await require(request, Action.ATTACH, self._options)
        name = request.body["actions"][0]["selected_option"]["value"]
        text = await self._attach(request.place, name, request.user)
        await request.respond(text, replace_original=True)

    async def _attach(self, place: Place, name: str, user: str) -> str:
        source, new = await self._core.attach(
            place.conversation, place.scope, name, by=f"slack:{user}"
        )
        return (
            f"Attached {escape(source.name)}."
            if new
            else f"{escape(source.name)} was already attached."
        )

    async def detach(self, request: Request) -> None:
        """``/detach source``."""
        await require(request, Action.DETACH, self._options)
        name = request.text.strip()
        if not name:
            await request.respond("Usage: /detach SOURCE")
            return
        place = request.place
        source, removed = await self._core.detach(place.conversation, place.scope, name)
        await request.respond(
            f"Detached {escape(source.name)}."
            if removed
            else f"{escape(source.name)} was not attached here."
        )

    async def sources(self, request: Request) -> None:
        """``/sources``: the workspace's sources; those attached here are marked."""
        await require(request, Action.LIST_SOURCES, self._options)
        listed = await self._core.sources(request.place.scope)
        attached = {s.id for s in await self._core.attached(request.place.conversation)}
        if not listed:
            await request.respond(NO_SOURCES)
            return
        lines = [
            f"{':paperclip:' if s.id in attached else '•'} *{escape(s.name)}*: {s.status},"
            f" {s.pages} pages, {s.passages} passages"
            for s in listed
        ]
        await request.respond("\n".join(lines) + "\n_:paperclip: attached to this channel_")

    async def load(self, request: Request) -> None:
        """``/load URL``: fetch a PDF from the web; without a link, the latest shared PDF."""
        await require(request, Action.LOAD, self._options)
        match = _URL.search(request.text)
        if not match:
            await self._load_latest(request)
            return
        url = match.group(1)
        await request.respond(f"Fetching {escape(shown_url(url))}…")
        await self._uploads.load_link(request.client, request.place, url, user=request.user)

    async def _load_latest(self, request: Request) -> None:
        """Load the most recent PDF shared in the channel, reporting in that message's thread."""
        history = await request.client.conversations_history(
            channel=request.place.channel, limit=_HISTORY
        )
        for message in history.get("messages") or []:
            shared = [f for f in message.get("files") or [] if may_be_pdf(f)]
            pdfs = [
                f for f in [await whole_file(request.client, f) for f in shared] if is_pdf_file(f)
            ]
            if pdfs:
                await request.respond(f"Loading {escape(str(pdfs[0].get('name')))}…")
                await self._uploads.load_shared(
                    request.client,
                    request.place,
                    pdfs[0],
                    thread=str(message.get("thread_ts") or message["ts"]),
                    user=request.user,
                )
                return
        await request.respond(LOAD_USAGE)
