"""Waiting for what only a server can show (a lock waited for, a row written by another
process): the condition is read again every 20 ms until it holds, within a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    """Return once ``condition()`` is true; fail naming ``what`` if it never is."""

    async def poll() -> None:
        while not await condition():  # noqa: ASYNC110 (the state is in another process)
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
