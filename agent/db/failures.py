"""SQLite's failures as the sentences a person is given: a data folder that cannot be made,
a disk that is full. The causes go to the log (``-v`` on the CLI)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from agent.errors import StateUnavailable

log = logging.getLogger("agent.db")
# SQLite's result code for a full disk (sqlite3.SQLITE_FULL since Python 3.11).
_SQLITE_FULL = 13


def make_data_folder(folder: Path) -> None:
    """Create the folder of the state file, or raise one sentence naming it and its setting."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create the data folder %s: %s", folder, exc)
        raise StateUnavailable(
            f"The data folder {folder} cannot be created ({exc.strerror or exc}): set"
            " [storage] data_dir (or ARCHIVIST_STORAGE_DATA_DIR) to a folder you can write."
        ) from None


def unwritable(exc: BaseException) -> BaseException:
    """A full disk as :class:`StateUnavailable` (caused by ``exc``); anything else unchanged."""
    if not isinstance(exc, sqlite3.OperationalError) or (
        getattr(exc, "sqlite_errorcode", None) != _SQLITE_FULL and "is full" not in str(exc)
    ):
        return exc
    log.warning("writing the state database failed: %s", exc)
    error = StateUnavailable(
        "The disk holding the state database (SQLite) is full: free some space, then try again."
    )
    error.__cause__ = exc
    return error
