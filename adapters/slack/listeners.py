"""Slack events, commands and actions into calls on the core, each reporting its own failure.

Listeners are registered on a bolt ``AsyncApp`` by :func:`register`. Events are acknowledged
by bolt before a listener runs; commands and actions call ``ack()`` first and then work,
answering with ``respond`` (private to the user unless it concerns the channel).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.loading import outcome_line, progress_line
from adapters.progress import ThrottledEdit
from adapters.slack.access import management_refusal
from adapters.slack.files import download_file, is_pdf_file
from adapters.slack.options import SlackOptions
from adapters.slack.render import escape, message_blocks, reply_text
from agent.core import Core
from agent.documents.fetch import download
from agent.documents.loader import FileInput
from agent.errors import ArchivistError, shown_url
from agent.mind.loop import Incoming

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on our side (it has been logged): try again."
EMPTY_QUESTION = "Ask me something after the mention, e.g. `@archivist what does chapter 3 say?`"
# Each is the method of the same name; adapters/slack_manifest.yml declares them to Slack.
COMMANDS = ("/attach", "/detach", "/sources", "/load", "/memory", "/search", "/reset")
ATTACH_ACTION = "archivist_attach"
RESET_ACTION = "archivist_reset"
RESET_QUESTION = "Forget this channel's conversation? Core memory and sources stay."
LOAD_USAGE = "Usage: /load https://example.org/paper.pdf (or share the PDF in the channel)."
# How far back /load looks for a shared PDF.
_HISTORY = 100
_URL = re.compile(r"<?(https?://[^\s|>]+)")
Respond = Callable[..., Awaitable[Any]]


class Refused(ArchivistError):
    """The user may not do this; the message says who may."""


def sentence_for(error: BaseException, where: str) -> str:
    """The user's sentence for a failure; unexpected ones are logged with their traceback."""
    if isinstance(error, ArchivistError):
        log.info("%s: %s", where, error)
        return str(error)
    log.error("%s failed", where, exc_info=error)
    return INTERNAL_ERROR


class Listeners:
    """The bot's behaviour on Slack, over one core."""

    def __init__(self, core: Core, options: SlackOptions, api_base_url: str) -> None:
        self._core = core
        self._options = options
        self._api_base = api_base_url
        self._working: set[asyncio.Task[object]] = set()

    def register(self, app: AsyncApp) -> None:
        """Attach every listener; bolt runs the first match, so file shares come first."""
        app.middleware(self._drop_duplicates)
        app.event({"type": "message", "subtype": "file_share"})(self.on_file_share)
        app.event("app_mention")(self.on_mention)
        # Subscribed events we do not act on are acknowledged, or Slack retries them.
        app.event("message")(_ignore)
        app.event("file_shared")(_ignore)
        for name in COMMANDS:
            app.command(name)(getattr(self, name.removeprefix("/")))
        app.action(ATTACH_ACTION)(self.attach_chosen)
        app.action(RESET_ACTION)(self.reset_confirmed)

    def _track(self) -> None:
        """Count the running listener as work that shutdown waits for."""
        task = asyncio.current_task()
        if task is not None:
            self._working.add(task)
            task.add_done_callback(self._working.discard)

    async def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for answers and loads under way to be posted."""
        current = asyncio.current_task()
        pending = {t for t in self._working if t is not current}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _drop_duplicates(
        self, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Answer a re-delivered event at once (asking Slack not to retry) and do nothing.

        Slack retries events it thinks were not acknowledged, and sometimes sends the same
        message again under a new event id: both are recognised here.
        """
        event_id = body.get("event_id")
        if event_id and not await self._core.first_delivery(f"slack:event:{event_id}"):
            log.info("event %s already handled", event_id)
            return BoltResponse(status=200, body="", headers={"x-slack-no-retry": "1"})
        await next()
        return None

    def _place(self, team: str, channel: str) -> tuple[str, str]:
        return f"slack:{team}:{channel}", f"slack:{team}"

    async def on_mention(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Answer a mention in its thread, with 👀 on the question while the agent works."""
        self._track()
        channel, ts = event["channel"], event["ts"]
        if not await self._core.first_delivery(f"slack:mention:{channel}:{ts}"):
            return
        text = re.sub(r"<@[A-Z0-9]+>", " ", event.get("text") or "").strip()
        if not text and event.get("files"):
            return  # a file shared with a mention: the file_share listener loads it
        conversation, scope = self._place(body.get("team_id") or event.get("team", ""), channel)
        thread = event.get("thread_ts") or ts
        turn = None
        if text:
            # Queued before the reaction and the reply are awaited, in arrival order.
            turn = asyncio.create_task(
                self._core.ask(
                    Incoming(
                        conversation, scope, text, f"slack:{event.get('user')}", speaker_name(event)
                    )
                )
            )
        try:
            if turn is None:
                await client.chat_postMessage(
                    channel=channel, thread_ts=thread, text=EMPTY_QUESTION
                )
                return
            await _react(client, "reactions_add", channel, ts)
            reply = await turn
            text_out = reply_text(reply, show_thoughts=self._options.show_thoughts)
            for blocks in message_blocks(text_out):
                fallback = blocks[0]["text"]["text"][:3000]
                await client.chat_postMessage(
                    channel=channel, thread_ts=thread, text=fallback, blocks=blocks
                )
            await _react(client, "reactions_remove", channel, ts)
        except Exception as exc:
            await _say_failure(
                client, channel, thread, sentence_for(exc, f"mention {channel}/{ts}")
            )

    async def on_file_share(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Load each PDF shared in a channel once, with a progress message in its thread."""
        self._track()
        channel, ts, user = event["channel"], event["ts"], str(event.get("user"))
        pdfs = [f for f in event.get("files") or [] if is_pdf_file(f)]
        pdfs = [
            f
            for f in pdfs
            if await self._core.first_delivery(f"slack:file:{f.get('id')}:{channel}:{ts}")
        ]
        if not pdfs:
            return
        conversation, scope = self._place(body.get("team_id") or event.get("team", ""), channel)
        try:
            refusal = await management_refusal(client, user, self._options)
            if refusal:
                await client.chat_postMessage(channel=channel, thread_ts=ts, text=refusal)
                return
            for file in pdfs:
                await self._load_shared(client, file, channel, ts, conversation, scope, user)
        except Exception as exc:
            await _say_failure(client, channel, ts, sentence_for(exc, f"file share {channel}/{ts}"))

    async def _load_shared(
        self,
        client: AsyncWebClient,
        file: dict[str, Any],
        channel: str,
        thread: str,
        conversation: str,
        scope: str,
        user: str,
    ) -> None:
        name = str(file.get("name") or "file.pdf")
        posted = await client.chat_postMessage(
            channel=channel, thread_ts=thread, text=f"Loading {name}…"
        )
        show = _updater(client, channel, str(posted["ts"]), self._options.progress_interval)
        try:
            path = await download_file(
                file,
                token=self._options.bot_token,
                api_base_url=self._api_base,
                max_bytes=self._options.max_upload_bytes,
            )
        except Exception as exc:
            await show.finish(sentence_for(exc, f"download of {name}"))
            return
        try:
            line = await self._load(
                conversation,
                scope,
                path,
                name,
                by=f"slack:{user}",
                origin=file.get("permalink"),
                show=show,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, path.parent, True)
        await show.finish(line)

    async def _load(
        self,
        conversation: str,
        scope: str,
        path: Path,
        name: str,
        *,
        by: str,
        origin: str | None,
        show: ThrottledEdit,
    ) -> str:
        source = re.sub(r"\.pdf$", "", name, flags=re.IGNORECASE) or "document"
        try:
            report = await self._core.load(
                conversation,
                scope,
                source,
                [FileInput(path, name=name, origin=origin)],
                by=by,
                progress=lambda p: show.update(progress_line(p)),
            )
        except ArchivistError as exc:
            return str(exc)
        return outcome_line(report, "this channel")

    async def _require_manager(self, client: AsyncWebClient, user: str) -> None:
        """Raise :class:`Refused` (reported like any failure) unless ``user`` may manage."""
        refusal = await management_refusal(client, user, self._options)
        if refusal:
            raise Refused(refusal)

    async def attach(
        self, ack: Any, command: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        """``/attach [source]``: attach by name, or offer a menu of the workspace's sources."""
        await ack()
        conversation, scope = self._place(command["team_id"], command["channel_id"])
        try:
            await self._require_manager(client, command["user_id"])
            name = command.get("text", "").strip()
            if name:
                await respond(
                    text=await self._attach(conversation, scope, name, command["user_id"])
                )
                return
            sources = await self._core.sources(scope)
            if not sources:
                await respond(text="No sources yet: share a PDF in a channel, or /load a link.")
                return
            options = [
                {"text": {"type": "plain_text", "text": s.name[:75]}, "value": s.name[:150]}
                for s in sources[:100]
            ]
            await respond(
                text="Attach which source?",
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
        except Exception as exc:
            await respond(text=sentence_for(exc, "/attach"))

    async def _attach(self, conversation: str, scope: str, name: str, user: str) -> str:
        source, new = await self._core.attach(conversation, scope, name, by=f"slack:{user}")
        return (
            f"Attached {escape(source.name)}."
            if new
            else f"{escape(source.name)} was already attached."
        )

    async def attach_chosen(
        self, ack: Any, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        """A source picked from the /attach menu."""
        await ack()
        user = body["user"]["id"]
        conversation, scope = self._place(body["team"]["id"], body["channel"]["id"])
        try:
            await self._require_manager(client, user)
            name = body["actions"][0]["selected_option"]["value"]
            await respond(
                text=await self._attach(conversation, scope, name, user), replace_original=True
            )
        except Exception as exc:
            await respond(text=sentence_for(exc, "attach menu"))

    async def detach(
        self, ack: Any, command: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        """``/detach source``."""
        await ack()
        conversation, scope = self._place(command["team_id"], command["channel_id"])
        try:
            await self._require_manager(client, command["user_id"])
            name = command.get("text", "").strip()
            if not name:
                await respond(text="Usage: /detach SOURCE")
                return
            source, removed = await self._core.detach(conversation, scope, name)
            await respond(
                text=f"Detached {escape(source.name)}."
                if removed
                else f"{escape(source.name)} was not attached here."
            )
        except Exception as exc:
            await respond(text=sentence_for(exc, "/detach"))

    async def sources(self, ack: Any, command: dict[str, Any], respond: Respond) -> None:
        """``/sources``: the workspace's sources; those attached here are marked."""
        await ack()
        conversation, scope = self._place(command["team_id"], command["channel_id"])
        try:
            listed = await self._core.sources(scope)
            attached = {s.id for s in await self._core.attached(conversation)}
            if not listed:
                await respond(text="No sources yet: share a PDF in a channel, or /load a link.")
                return
            lines = [
                f"{':paperclip:' if s.id in attached else '•'} *{escape(s.name)}*: {s.status},"
                f" {s.pages} pages, {s.passages} passages"
                for s in listed
            ]
            await respond(text="\n".join(lines) + "\n_:paperclip: attached to this channel_")
        except Exception as exc:
            await respond(text=sentence_for(exc, "/sources"))

    async def load(
        self, ack: Any, command: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        """``/load URL``: fetch a PDF from the web (never from inside the network) and load it."""
        await ack()
        self._track()
        conversation, scope = self._place(command["team_id"], command["channel_id"])
        user = command["user_id"]
        try:
            await self._require_manager(client, user)
            match = _URL.search(command.get("text", ""))
            if not match:
                await self._load_latest(client, command, respond, conversation, scope)
                return
            url = match.group(1)
            await respond(text=f"Fetching {escape(shown_url(url))}…")
            folder = Path(await asyncio.to_thread(_temporary_folder))
            try:
                got = await download(
                    url,
                    folder,
                    max_bytes=self._options.max_upload_bytes,
                    allow_private=self._options.allow_private_urls,
                    allowed_hosts=self._options.allowed_url_hosts,
                )
                # A real message, not the command's response_url: Slack takes only five
                # posts there, fewer than a load's progress updates.
                posted = await client.chat_postMessage(
                    channel=command["channel_id"], text=f"Loading {escape(got.name)}…"
                )
                show = _updater(
                    client,
                    command["channel_id"],
                    str(posted["ts"]),
                    self._options.progress_interval,
                )
                line = await self._load(
                    conversation,
                    scope,
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
        except Exception as exc:
            await respond(text=sentence_for(exc, "/load"))

    async def _load_latest(
        self,
        client: AsyncWebClient,
        command: dict[str, Any],
        respond: Respond,
        conversation: str,
        scope: str,
    ) -> None:
        """Load the most recent PDF shared in the channel, reporting in that message's thread."""
        channel = command["channel_id"]
        history = await client.conversations_history(channel=channel, limit=_HISTORY)
        for message in history.get("messages") or []:
            pdfs = [f for f in message.get("files") or [] if is_pdf_file(f)]
            if pdfs:
                await respond(text=f"Loading {escape(str(pdfs[0].get('name')))}…")
                await self._load_shared(
                    client,
                    pdfs[0],
                    channel,
                    str(message["ts"]),
                    conversation,
                    scope,
                    command["user_id"],
                )
                return
        await respond(text=LOAD_USAGE)

    async def memory(self, ack: Any, command: dict[str, Any], respond: Respond) -> None:
        """``/memory``: the channel agent's core memory and memory sizes."""
        await ack()
        conversation, _ = self._place(command["team_id"], command["channel_id"])
        try:
            view = await self._core.memory(conversation)
            sources = ", ".join(view.sources) or "none attached"
            await respond(
                text=f"```{escape(view.core)[:2800]}```\n{view.messages} messages;"
                f" {view.passages} passages in archival memory ({escape(sources)})."
            )
        except Exception as exc:
            await respond(text=sentence_for(exc, "/memory"))

    async def search(self, ack: Any, command: dict[str, Any], respond: Respond) -> None:
        """``/search query``: the attached sources' best passages, without the model."""
        await ack()
        conversation, _ = self._place(command["team_id"], command["channel_id"])
        try:
            query = command.get("text", "").strip()
            if not query:
                await respond(text="Usage: /search QUERY")
                return
            found = await self._core.search(conversation, query)
            if not found.results:
                await respond(text="No results: is a source attached here? (/sources)")
                return
            lines = [
                f"*[{r.rank}] {escape(r.citation)}* {escape(' '.join(r.text.split())[:300])}"
                for r in found.results
            ]
            await respond(text="\n".join(lines)[:3000])
        except Exception as exc:
            await respond(text=sentence_for(exc, "/search"))

    async def reset(
        self, ack: Any, command: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        """``/reset``: a confirm button that only the person who asked may press."""
        await ack()
        try:
            await self._require_manager(client, command["user_id"])
            await respond(
                text="Forget this channel's conversation?",
                blocks=[
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": RESET_QUESTION,
                        },
                    },
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": RESET_ACTION,
                                "style": "danger",
                                "text": {"type": "plain_text", "text": "Forget"},
                                "value": command["user_id"],
                            }
                        ],
                    },
                ],
            )
        except Exception as exc:
            await respond(text=sentence_for(exc, "/reset"))

    async def reset_confirmed(self, ack: Any, body: dict[str, Any], respond: Respond) -> None:
        """The /reset button: only its author's press counts."""
        await ack()
        action = body["actions"][0]
        if body["user"]["id"] != action.get("value"):
            await respond(
                text="Only the person who ran /reset can confirm it.",
                replace_original=False,
                response_type="ephemeral",
            )
            return
        conversation, _ = self._place(body["team"]["id"], body["channel"]["id"])
        try:
            forgotten = await self._core.reset(conversation)
            await respond(
                text=f"Forgot {forgotten} messages; sources stay attached.", replace_original=True
            )
        except Exception as exc:
            await respond(text=sentence_for(exc, "reset"))


async def _ignore() -> None:
    """Acknowledge an event we subscribe to but do not act on."""


def speaker_name(event: dict[str, Any]) -> str:
    """A speaker's name as the event gives it (the id when it gives none)."""
    profile = event.get("user_profile") or {}
    return str(
        profile.get("display_name") or profile.get("real_name") or event.get("user") or "someone"
    )


def _temporary_folder() -> str:
    return tempfile.mkdtemp(prefix="archivist-url-")


def _updater(client: AsyncWebClient, channel: str, ts: str, interval: float) -> ThrottledEdit:
    return ThrottledEdit(
        lambda text: client.chat_update(channel=channel, ts=ts, text=text), interval=interval
    )


async def _react(client: AsyncWebClient, method: str, channel: str, ts: str) -> None:
    """Add or remove 👀; a courtesy that may fail (already there, no scope) without harm."""
    try:
        await getattr(client, method)(channel=channel, timestamp=ts, name="eyes")
    except SlackApiError as exc:
        log.info("%s failed: %s", method, exc.response.get("error"))


async def _say_failure(client: AsyncWebClient, channel: str, thread: str, sentence: str) -> None:
    try:
        await client.chat_postMessage(
            channel=channel, thread_ts=thread, text=f":warning: {sentence}"
        )
    except SlackApiError:
        log.warning("could not report a failure in %s", channel, exc_info=True)
