"""Loads under way, as shutdown sees them: refused once it starts, given the grace period,
then cancelled (the loader rolls a cancelled file back) with a sentence saying so."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from agent.errors import ArchivistError

T = TypeVar("T")

LOAD_REFUSED = "Archivist is shutting down: load it again in a minute."


class LoadRefused(ArchivistError):
    """A load asked for after shutdown began."""

    def __init__(self) -> None:
        super().__init__(LOAD_REFUSED)


class LoadStopped(ArchivistError):
    """A load still running when the shutdown grace ended: cancelled and rolled back."""

    def __init__(self, names: str) -> None:
        super().__init__(
            f"Loading {names} was stopped by the shutdown and nothing of it was kept:"
            " load it again in a minute."
        )


class RunningLoads:
    """Runs each load as a task of its own, so that :meth:`close` can wait for and stop it."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._stopped: set[asyncio.Task[Any]] = set()

    async def run(self, names: str, load: Coroutine[Any, Any, T]) -> T:
        """Run ``load`` (the files ``names``) to its end; raise :class:`LoadRefused` once
        shutdown began, :class:`LoadStopped` if shutdown cancelled it."""
        if self._closing:
            load.close()
            raise LoadRefused
        task = asyncio.create_task(load)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await task  # the caller cancelled cancels the load too
        except asyncio.CancelledError:
            if task in self._stopped:  # by close, not by the caller's own cancellation
                raise LoadStopped(names) from None
            raise

    async def close(self, grace: float = 0.0) -> None:
        """Refuse new loads, give those under way up to ``grace`` seconds, then cancel the
        rest and wait for their roll-back."""
        self._closing = True
        if grace > 0 and self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        late = list(self._running)
        for task in late:
            self._stopped.add(task)
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
