"""One queue per conversation: turns in order within it, conversations side by side.

Each active conversation has a worker task that takes its messages one at a time, so an agent
never runs two turns at once and answers in arrival order, while a slow model call in one
channel delays no other channel. A worker idle for ``idle_seconds`` ends; the next message
starts a new one (all state is in SQLite).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from agent.agent import Agents, Incoming, Reply

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on our side while answering (it has been logged): try again."


@dataclass
class _Job:
    incoming: Incoming
    done: asyncio.Future[Reply]


class Conversations:
    """Routes messages to per-conversation workers."""

    def __init__(self, agents: Agents, *, idle_seconds: float = 300.0) -> None:
        self._agents = agents
        self._idle = idle_seconds
        self._queues: dict[str, asyncio.Queue[_Job]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        """Conversations with a live worker."""
        return len(self._queues)

    @property
    def queued(self) -> int:
        """Messages waiting for their turn, across all conversations."""
        return sum(q.qsize() for q in self._queues.values())

    async def ask(self, incoming: Incoming) -> Reply:
        """Queue a message behind earlier ones of its conversation and wait for the reply."""
        job = _Job(incoming, asyncio.get_running_loop().create_future())
        queue = self._queues.get(incoming.conversation)
        if queue is None:
            queue = self._queues[incoming.conversation] = asyncio.Queue()
            worker = asyncio.create_task(self._work(incoming.conversation, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.put_nowait(job)
        return await asyncio.shield(job.done)

    async def _work(self, key: str, queue: asyncio.Queue[_Job]) -> None:
        while True:
            try:
                job = await asyncio.wait_for(queue.get(), self._idle)
            except asyncio.TimeoutError:
                # No await between this check and the removal: nothing can slip in.
                if queue.empty():
                    del self._queues[key]
                    return
                continue
            try:
                reply = await self._agents.turn(job.incoming)
            except asyncio.CancelledError:
                job.done.cancel()
                raise
            except Exception:
                log.exception("turn failed in conversation %s", key)
                reply = Reply([], notice=INTERNAL_ERROR)
            if not job.done.done():
                job.done.set_result(reply)

    async def close(self) -> None:
        """Cancel every worker (turns in progress end; their messages are already stored)."""
        for worker in list(self._workers):
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._queues.clear()
