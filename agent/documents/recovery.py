"""Bring archive and registry back into agreement after failures and crashes.

Deletions in Milvus are queued in SQLite in the same transaction that hides the data, then
carried out; whatever could not be carried out (Milvus down) is retried at the next start.
Loads whose process died are found by their owner and heartbeat and rolled back.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import Protocol

from agent.documents.registry import SourceFile, SourceRegistry
from agent.errors import ArchivistError, StateUnavailable

log = logging.getLogger(__name__)

INTERRUPTED = "the load was interrupted before it finished: load the file again"
# A load is presumed dead after this long without a heartbeat (one comes per range of pages),
# whatever its process looks like: a pid can be reused by another process.
STALE_AFTER_SECONDS = 15 * 60


class PassageStore(Protocol):
    """Anything passages are stored in: the Milvus archive and the keyword index."""

    async def delete_source(self, source_id: int) -> None:
        """Remove every passage of a source."""

    async def delete_file(self, file_id: int) -> None:
        """Remove every passage of one file."""


async def drain_cleanups(registry: SourceRegistry, stores: Sequence[PassageStore]) -> int:
    """Carry out queued deletions in every store; returns how many are still pending."""
    pending = await registry.pending_cleanups()
    for done, (cleanup_id, source_id, file_id) in enumerate(pending):
        try:
            for store in stores:
                if file_id is None:
                    await store.delete_source(source_id)
                else:
                    await store.delete_file(file_id)
        except ArchivistError as exc:
            log.warning("archive cleanup postponed (%d pending): %s", len(pending) - done, exc)
            return len(pending) - done
        await registry.cleanup_done(cleanup_id)
    return 0


def process_owner() -> str:
    """``host:pid`` of this process, recorded on the files it loads (and read back below)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _is_dead(file: SourceFile, now: float, *, at_start: bool) -> bool:
    stale = file.heartbeat is None or now - file.heartbeat > STALE_AFTER_SECONDS
    host, _, pid = (file.owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            # At start-up our own pid on a row means an earlier process had it (pid 1 in
            # every container); later it is one of our loads, dead only if it stopped beating.
            return at_start or stale
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    return stale


async def recover(
    registry: SourceRegistry,
    stores: Sequence[PassageStore] | None,
    *,
    at_start: bool = True,
    dead_owner: str | None = None,
) -> int:
    """Roll back loads whose process died and retry pending deletions.

    A source left with nothing loaded is removed, as a failed load removes the source it
    created: a source exists once something of it has loaded, however its first load ended
    (a ``failed`` source with no file would only wait to be deleted by hand). A source that
    has other files keeps the interrupted one, listed as failed with the reason.

    Returns the number of interrupted files found. Run at start-up, before serving, and then
    now and again (``at_start=False``) for loads whose process died or hung since; with the
    disk full, the rollback waits for the next time (:class:`StateUnavailable` logged).
    With ``stores`` None (a command that reads only SQLite) the rolled-back passages are
    queued for deletion, for the next run that opens the archive. ``dead_owner`` names a
    process known to be dead (a worker whose job is taken over) whatever its heartbeats say.
    """
    now = time.time()
    found = await registry.interrupted_files()
    dead = [
        f
        for f in found
        if (dead_owner is not None and f.owner == dead_owner) or _is_dead(f, now, at_start=at_start)
    ]
    try:
        for file in dead:
            log.warning(
                "rolling back interrupted load of %s (source %d)", file.name, file.source_id
            )
            await registry.fail_file(file, INTERRUPTED)
        for source_id in sorted({f.source_id for f in dead}):
            if await registry.discard_if_empty(source_id):
                log.warning("removed source %d: its interrupted load was its only file", source_id)
        if stores is not None:
            await drain_cleanups(registry, stores)
    except StateUnavailable as exc:
        # A full disk: what is left stays hidden from searches (its files are still loading),
        # and reading the rest is still possible; the next start rolls it back.
        log.warning("rolling back interrupted loads postponed to the next start: %s", exc)
    return len(dead)
