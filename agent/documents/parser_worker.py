"""What runs inside the PDF parser process, kept apart so that process imports little.

The parser process unpickles the functions it runs by module: anything defined in
``agent.documents.loader`` would drag Milvus and onnxruntime (~200 MB) into it; this module
needs only the standard library and :mod:`agent.errors`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

from agent.errors import DocumentTooLarge

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


def too_slow(display_name: str, timeout: float) -> DocumentTooLarge:
    """The refusal for a file whose parsing ran out of time."""
    return DocumentTooLarge(
        display_name,
        f"'{display_name}' took more than {timeout:g} s to parse, so it was stopped:"
        " re-save it with a PDF tool, or split it, and try again.",
    )


def start_worker(pid: Synchronized[int]) -> None:
    """Process initializer: tell the parent this worker's pid (so it can end a hung worker)
    and, on Linux, end this worker when the process that started it dies (even by SIGKILL)
    instead of leaving an orphan parsing on."""
    pid.value = os.getpid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run_limited(timeout: float, display_name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` under an alarm of ``timeout`` seconds of wall time in this process.

    The alarm's handler runs between Python bytecodes, so it stops a call between two PDFium
    calls (pages, streams) but not inside one: a file that hangs PDFium's C code is ended by
    the pool's backstop, which replaces this process.
    """

    def expire(signum: int, frame: object) -> None:
        raise too_slow(display_name, timeout)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
