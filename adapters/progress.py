"""One progress message, edited as a load advances, at most once per interval."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class ThrottledEdit:
    """Keeps the newest text and edits the message with it no more often than ``interval``.

    ``update`` is synchronous (load progress arrives from a plain callback); the edits run
    in a task. A failed edit is logged and skipped: progress is a courtesy, the load goes on.
    """

    def __init__(self, edit: Callable[[str], Awaitable[object]], *, interval: float) -> None:
        self._edit = edit
        self._interval = interval
        self._latest: str | None = None
        self._shown: str | None = None
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def update(self, text: str) -> None:
        """Show ``text`` at the next allowed moment (a newer text replaces it)."""
        self._latest = text
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())

    async def finish(self, text: str) -> None:
        """Show ``text`` now, after any edit in flight; no progress edit follows it."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._edit(text)

    async def _flush(self) -> None:
        wait = self._last + self._interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # Discord's own edit rate limit: this is the throttle
        text = self._latest
        if text is None or text == self._shown:
            return
        self._last = time.monotonic()
        try:
            await self._edit(text)
            self._shown = text
        except Exception:  # a courtesy edit that fails is only logged
            log.warning("progress edit failed", exc_info=True)
