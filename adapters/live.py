"""A reply shown while it is written: one message posted, then edited as the text grows.

A local model on CPU takes a minute for a turn; with the reply streamed, the person reads the
first words after a few seconds. Platforms limit edits (Discord about five per five seconds
per channel, Slack about one ``chat.update`` per second), so edits are throttled: the newest
text at most every ``every`` seconds, never one call per token. The preview is a courtesy:
if posting or editing it fails, previewing stops and the reply is delivered as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["WRITING_MARK", "LiveMessage"]

log = logging.getLogger(__name__)

Handle = TypeVar("Handle")

WRITING_MARK = " …"
"""Ends a preview: the text is still being written."""


class LiveMessage(Generic[Handle]):
    """The sink a turn streams its reply into (``Incoming.on_partial``).

    ``post`` sends the first preview and returns what ``edit`` needs to change it; both get the
    text cut to ``limit`` characters. :meth:`finish` stops the previews and hands over the
    posted message, for the delivered reply to replace.
    """

    def __init__(
        self,
        post: Callable[[str], Awaitable[Handle]],
        edit: Callable[[Handle, str], Awaitable[object]],
        *,
        every: float,
        limit: int,
    ) -> None:
        self._post = post
        self._edit = edit
        self._every = every
        self._limit = limit
        self._latest = ""
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.handle: Handle | None = None

    def __call__(self, text: str) -> None:
        if self._done.is_set():
            return
        self._latest = text
        self._changed.set()
        if self._task is None:
            self._task = asyncio.ensure_future(self._show())

    async def finish(self) -> Handle | None:
        """Stop previewing (an edit under way completes); the preview message, if one was
        posted."""
        self._done.set()
        self._changed.set()
        if self._task is not None:
            await self._task
        return self.handle

    async def _show(self) -> None:
        while True:
            await self._changed.wait()
            if self._done.is_set():
                return
            self._changed.clear()
            text = self._latest
            if len(text) + len(WRITING_MARK) > self._limit:
                text = text[: self._limit - len(WRITING_MARK) - 1].rstrip()
            try:
                if self.handle is None:
                    self.handle = await self._post(text + WRITING_MARK)
                else:
                    await self._edit(self.handle, text + WRITING_MARK)
            except Exception as exc:  # any platform error: the reply still goes out at the end
                log.info("reply preview stopped: %r", exc)
                return
            # Throttle: the next edit waits, unless the turn ends first.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._done.wait(), self._every)
