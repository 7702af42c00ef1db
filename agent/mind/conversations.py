"""One queue per conversation: turns in order within it, conversations side by side.

Each active conversation has a worker task that runs its jobs (turns, resets) one at a time,
so an agent never runs two at once and answers in arrival order, while a slow model call in
one channel delays no other channel. A worker idle for ``idle_seconds`` ends; the next job
starts a new one (all state is in SQLite).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Protocol, TypeVar

from agent.errors import INTERNAL_ERROR, ArchivistError
from agent.mind.loop import Incoming, Reply, Stop

log = logging.getLogger(__name__)

T = TypeVar("T")

SHUTTING_DOWN = "The bot is restarting: ask again in a moment."


class ShuttingDown(ArchivistError):
    """Work arrived after :meth:`Conversations.close` began."""

    def __init__(self) -> None:
        super().__init__(SHUTTING_DOWN)


@dataclass
class _Job:
    run: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any]


class _Sentinel(Enum):
    STOP = "stop"


# Queued after a conversation's last job at shutdown: its worker ends when it gets here.
_STOP: Final = _Sentinel.STOP


class TurnRunner(Protocol):
    """What runs one turn of a conversation's agent (:class:`agent.mind.loop.Agents`)."""

    async def turn(self, incoming: Incoming) -> Reply:
        """Handle one message and return the reply."""
        ...


Exclusive = Callable[[str], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _alone(conversation: str) -> AsyncIterator[None]:
    yield


class Conversations:
    """Routes work to per-conversation workers.

    ``exclusive(conversation)`` is held around each job: with several bot processes on one
    database it keeps two of them from running the same conversation's turns at once (a
    PostgreSQL advisory lock); one process alone needs nothing beyond its own queue.
    """

    def __init__(
        self, agents: TurnRunner, *, idle_seconds: float = 300.0, exclusive: Exclusive = _alone
    ) -> None:
        self._agents = agents
        self._exclusive = exclusive
        self._idle = idle_seconds
        self._queues: dict[str, asyncio.Queue[_Job | _Sentinel]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def active(self) -> int:
        """Conversations with a live worker."""
        return len(self._queues)

    @property
    def queued(self) -> int:
        """Jobs waiting for their turn, across all conversations."""
        return sum(q.qsize() for q in self._queues.values())

    async def ask(self, incoming: Incoming) -> Reply:
        """Queue a message behind earlier work of its conversation and wait for the reply.

        A failure becomes the reply's notice: the user's sentence for an expected failure
        (the model or Milvus down), a generic one, logged with its traceback, for a bug.
        """

        async def turn() -> Reply:
            try:
                return await self._agents.turn(incoming)
            except ArchivistError as exc:
                log.warning("turn in %s failed: %s", incoming.conversation, exc)
                return Reply([], stop=Stop.ERROR, notice=str(exc))
            except Exception:
                log.exception("turn in %s failed", incoming.conversation)
                return Reply([], stop=Stop.INTERNAL_ERROR, notice=INTERNAL_ERROR)

        try:
            return await self.run(incoming.conversation, turn)
        except ShuttingDown:
            return Reply([], stop=Stop.SHUTTING_DOWN, notice=SHUTTING_DOWN)
        except ArchivistError as exc:  # the conversation's lock could not be had
            log.warning("turn in %s could not start: %s", incoming.conversation, exc)
            return Reply([], stop=Stop.ERROR, notice=str(exc))

    async def run(self, conversation: str, job: Callable[[], Awaitable[T]]) -> T:
        """Run ``job`` in the conversation's order (e.g. a reset between two turns).

        Raises :class:`ShuttingDown` once :meth:`close` has begun.
        """
        if self._closing:
            raise ShuttingDown
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(conversation)
        if queue is None:
            queue = self._queues[conversation] = asyncio.Queue()
            worker = asyncio.create_task(self._work(conversation, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.put_nowait(_Job(job, done))
        return await asyncio.shield(done)

    async def _work(self, key: str, queue: asyncio.Queue[_Job | _Sentinel]) -> None:
        try:
            while True:
                try:
                    job = await asyncio.wait_for(queue.get(), self._idle)
                except asyncio.TimeoutError:
                    if queue.empty():  # no await before the removal below: nothing slips in
                        return
                    continue
                if job is _STOP:
                    return
                try:
                    async with self._exclusive(key):
                        result = await job.run()
                except asyncio.CancelledError:
                    if not job.done.done():
                        job.done.set_exception(ShuttingDown())
                    raise
                except Exception as exc:  # the caller's to handle; the worker carries on
                    if not job.done.done():
                        job.done.set_exception(exc)
                    continue
                if not job.done.done():
                    job.done.set_result(result)
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]
            while not queue.empty():
                waiting = queue.get_nowait()
                if waiting is not _STOP and not waiting.done.done():
                    waiting.done.set_exception(ShuttingDown())

    async def close(self, grace: float = 0.0) -> None:
        """Refuse new work, give queued work up to ``grace`` seconds to finish, then stop.

        Turns cut short lose nothing: their messages are stored before they are acted on.
        Callers still waiting are told the bot is shutting down.
        """
        self._closing = True
        for queue in self._queues.values():
            queue.put_nowait(_STOP)
        if grace > 0 and self._workers:
            await asyncio.wait(set(self._workers), timeout=grace)
        for worker in list(self._workers):
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
