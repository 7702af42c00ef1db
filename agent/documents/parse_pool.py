"""A one-process pool for PDF parsing that replaces itself if the worker dies or hangs."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

from agent.documents.parser_worker import run_limited, start_worker, too_slow
from agent.errors import CorruptDocument

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

T = TypeVar("T")

# A load queues at most this many page ranges ahead of the one it waits for.
PREFETCH = 2


class ParsePool:
    """Runs parsing calls in one worker process of its own.

    ``spawn`` rather than ``fork``: this process runs threads (gRPC, onnxruntime) that a
    forked child would inherit in an unknown state.
    """

    def __init__(self, *, timeout: float = 120.0) -> None:
        self._timeout = timeout
        self._executor: ProcessPoolExecutor | None = None
        self._context = multiprocessing.get_context("spawn")
        # Written once by the worker as it starts (see start_worker).
        self._worker_pid: Synchronized[int] = self._context.Value("i", 0, lock=False)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._worker_pid.value = 0
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=self._context,
                initializer=start_worker,
                initargs=(self._worker_pid,),
            )
        return self._executor

    async def run(self, display_name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker process.

        The worker stops a call that runs longer than the timeout itself (a hostile file can
        make a parser loop), so time spent queued does not count; a worker that crashes, or
        hangs where even that cannot reach it, is replaced. Either way the file is refused
        with a :class:`DocumentError`.
        """
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(
            self._pool(), run_limited, self._timeout, display_name, fn, *args
        )
        try:
            # Backstop only: the worker's own alarm normally ends a slow call.
            return await asyncio.wait_for(call, self._timeout * (PREFETCH + 1) + 10)
        except BrokenProcessPool:
            self.shutdown()
            raise CorruptDocument(
                display_name,
                f"'{display_name}' made the PDF parser crash: re-save it with a PDF tool"
                " (or print it to a new PDF) and try again.",
            ) from None
        except asyncio.TimeoutError:
            self.shutdown()
            raise too_slow(display_name, self._timeout) from None

    def shutdown(self) -> None:
        """Stop the worker process at once (a new one starts on next use)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # A hung worker would never pick up a shutdown request: end it outright.
        if self._worker_pid.value:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._worker_pid.value, signal.SIGTERM)
        executor.shutdown(wait=False, cancel_futures=True)
