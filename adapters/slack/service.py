"""The Slack adapter as ``archivist run`` sees it: Socket Mode or the HTTP Events API."""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlsplit

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.failures import UNREACHABLE, unreachable_reason
from adapters.slack.listeners import Listeners
from adapters.slack.options import SlackOptions
from agent.core import ArchivistError, Core

log = logging.getLogger(__name__)

SLACK_API = "https://slack.com/api/"
# The core has finished or refused every turn when the adapter closes: what is left is
# posting the replies.
_DELIVERY_TIMEOUT = 10.0


class SlackUnavailable(ArchivistError):
    """Slack refused the app or cannot be reached; the message says what to fix."""


class SlackAdapter:
    """Serves one workspace over Socket Mode (an app token) or HTTP (a signing secret)."""

    name = "slack"

    def __init__(self, core: Core, options: SlackOptions) -> None:
        self._options = options
        api_base = self._api_base = options.api_base_url or SLACK_API
        client = AsyncWebClient(token=options.bot_token, base_url=api_base)
        # bolt copies the client's retry handlers into the client it makes for each request.
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        self.app = AsyncApp(
            client=client,
            signing_secret=options.signing_secret or "",
            # Socket Mode frames come over the app token's own websocket, unsigned.
            request_verification_enabled=options.app_token is None,
        )
        self.listeners = Listeners(core, options, api_base)
        self.listeners.register(self.app)
        self._handler: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self._closed = asyncio.Event()
        self._serving = asyncio.Event()
        self.port: int | None = None

    async def run(self) -> None:
        """Check the token, connect, and serve until :meth:`close`; may be called again after
        it raised, to retry.

        Raises :class:`SlackUnavailable` with the fix when Slack refuses a token or cannot be
        reached.
        """
        self._serving.clear()
        await self._stop_serving()  # what a failed run left behind
        try:
            identity = await self.app.client.auth_test()
        except SlackApiError as exc:
            raise SlackUnavailable(
                f"Slack rejected the bot token ({exc.response.get('error')}): copy the Bot User"
                " OAuth Token (xoxb-…) from the app's OAuth & Permissions page into"
                " SLACK_BOT_TOKEN."
            ) from exc
        except UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        log.info("connected to Slack as %s in %s", identity.get("user"), identity.get("team"))
        if self._options.app_token:
            self._handler = AsyncSocketModeHandler(self.app, self._options.app_token)
            try:
                await self._handler.connect_async()  # type: ignore[no-untyped-call]
            except SlackApiError as exc:
                raise SlackUnavailable(
                    f"Slack rejected the app-level token ({exc.response.get('error')}): create"
                    " one with connections:write under Basic Information → App-Level Tokens"
                    " into SLACK_APP_TOKEN."
                ) from exc
            except UNREACHABLE as exc:
                raise self._unreachable(exc) from exc
        else:
            self._runner = web.AppRunner(self.app.web_app(path=self._options.http_path))
            await self._runner.setup()
            host, port = self._options.http_host, self._options.http_port
            try:
                await web.TCPSite(self._runner, host, port).start()
            except OSError as exc:
                why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
                raise SlackUnavailable(
                    f"Cannot listen for Slack's requests on {host}:{port} ({why}): set"
                    " [slack] http_port to a free port."
                ) from exc
            self.port = int(self._runner.addresses[0][1])
            log.info("serving Slack events on port %d at %s", self.port, self._options.http_path)
        self._serving.set()
        await self._closed.wait()

    def _unreachable(self, exc: BaseException) -> SlackUnavailable:
        host = urlsplit(self._api_base).hostname
        return SlackUnavailable(
            f"Cannot reach Slack at {host} ({unreachable_reason(exc)}): check the network,"
            " or [slack] api_base_url."
        )

    async def _stop_serving(self) -> None:
        if self._handler is not None:
            await self._handler.close_async()  # type: ignore[no-untyped-call]
            self._handler = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.port = None

    async def wait_until_serving(self) -> None:
        """Return once connected (Socket Mode) or listening (HTTP)."""
        await self._serving.wait()

    def serving(self) -> bool:
        """Whether the current (or, once it stopped, the last) run got connected."""
        return self._serving.is_set()

    async def ready(self) -> None:
        """Raise unless connected (Socket Mode) or listening (HTTP)."""
        if self._handler is not None and await self._handler.client.is_connected():
            return
        if self._runner is not None and self.port is not None:
            return
        raise SlackUnavailable("Not connected to Slack (yet): see the bot's log.")

    async def close(self) -> None:
        """Let answers under way reach Slack, then disconnect or stop listening."""
        await self.listeners.finish(_DELIVERY_TIMEOUT)
        await self._stop_serving()
        self._closed.set()
