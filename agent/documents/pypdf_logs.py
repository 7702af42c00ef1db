"""pypdf's log records, diverted per call instead of flooding the root logger.

:func:`agent.documents.stream_guard.check_streams` reads under ``ROUTER.capture``: what pypdf
logs meanwhile goes into the call's :class:`PypdfWarnings`, which the caller summarises in one
line and checks for a limit error that pypdf swallowed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pypdf.errors import LimitReachedError

__all__ = ["ROUTER", "PypdfLogRouter", "PypdfWarnings"]

_log = logging.getLogger(__name__)


@dataclass
class PypdfWarnings:
    """pypdf log records seen during one call on one thread."""

    count: int = 0
    first: list[str] = field(default_factory=list)
    swallowed_limit: LimitReachedError | None = None

    def add(self, record: logging.LogRecord) -> None:
        self.count += 1
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not break reading
            message = str(record.msg)
        message = message[:300]
        if len(self.first) < 3:
            self.first.append(message)
        _log.debug("pypdf: %s", message)
        # pypdf catches some errors, e.g. in form XObjects during text
        # extraction, and only logs them; a limit hit there is still a bomb.
        args = record.args
        values: Any = args.values() if isinstance(args, Mapping) else (args or ())
        for value in values:
            if isinstance(value, LimitReachedError):
                self.swallowed_limit = value


class PypdfLogRouter(logging.Handler):
    """Diverts pypdf's log records to the current call's :class:`PypdfWarnings`.

    While at least one call is active (in any thread) the ``pypdf`` logger stops
    propagating and this handler sits on it; records from threads without an
    active call are handed to the root logger as if nothing had changed.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._local = threading.local()
        self._users = 0
        self._saved: tuple[bool, int] = (True, logging.NOTSET)
        self._saved_effective = logging.NOTSET
        self._install_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        # Handlers run on the thread that logged, so thread-local state is the call's.
        state: PypdfWarnings | None = getattr(self._local, "state", None)
        if state is None:
            # Another thread's pypdf use: deliver as before, including a level
            # someone set on "pypdf" that capture() may have lowered.
            if record.levelno >= self._saved_effective:
                logging.getLogger().handle(record)
        else:
            state.add(record)

    @contextmanager
    def capture(self, state: PypdfWarnings) -> Iterator[None]:
        logger = logging.getLogger("pypdf")
        with self._install_lock:
            if self._users == 0:
                self._saved = (logger.propagate, logger.level)
                self._saved_effective = logger.getEffectiveLevel()
                logger.addHandler(self)
                logger.propagate = False
                # If someone silenced pypdf above WARNING we would miss swallowed
                # limit errors; records still go nowhere but our summary.
                if logger.getEffectiveLevel() > logging.WARNING:
                    logger.setLevel(logging.WARNING)
            self._users += 1
        previous: PypdfWarnings | None = getattr(self._local, "state", None)
        self._local.state = state
        try:
            yield
        finally:
            self._local.state = previous
            with self._install_lock:
                self._users -= 1
                if self._users == 0:
                    logger.removeHandler(self)
                    logger.propagate, saved_level = self._saved
                    logger.setLevel(saved_level)


ROUTER = PypdfLogRouter()
