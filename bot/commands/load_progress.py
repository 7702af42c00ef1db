"""How ``archivist load`` shows a load under way: a bar with an ETA on a terminal, else lines.

Without a terminal (a service's log, a pipe) a bar cannot redraw, and silence until the last
line reads as a hang: a line per file every tenth of its pages or every 10 seconds instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agent.documents.loads import Progress as LoadProgress

# A line at least every this fraction of a file's pages (1/10), and at least this often.
LINES_PER_FILE = 10
LINE_EVERY_SECONDS = 10.0


class ProgressLines:
    """Progress as plain lines, throttled per file: the first report, every tenth of the pages
    or every 10 seconds, and the last page."""

    def __init__(
        self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._write = write
        self._clock = clock
        self._document: tuple[int, str] | None = None
        self._started = 0.0
        self._first_pages = 0
        self._last_time = 0.0
        self._last_pages = 0

    def __call__(self, p: LoadProgress) -> None:
        now = self._clock()
        share = p.pages_done / p.pages_total if p.pages_total else 1.0
        if self._document != (p.file_index, p.document):
            # The clock starts at the file's first report: a rate over its first range of pages
            # would count the time before it (opening, the previous file) as this file's.
            self._document = (p.file_index, p.document)
            self._started = self._last_time = now
            self._first_pages = p.pages_done
            self._last_pages = p.pages_done
            self._write(self._line(p, share, now))
            return
        due = (
            p.pages_done >= p.pages_total
            or (p.pages_done - self._last_pages) * LINES_PER_FILE >= p.pages_total
            or now - self._last_time >= LINE_EVERY_SECONDS
        )
        if due and p.pages_done > self._last_pages:
            self._last_time, self._last_pages = now, p.pages_done
            self._write(self._line(p, share, now))

    def _line(self, p: LoadProgress, share: float, now: float) -> str:
        files = f" (file {p.file_index} of {p.files_total})" if p.files_total > 1 else ""
        line = (
            f"{p.document}{files}: {p.pages_done}/{p.pages_total} pages ({share:.0%}),"
            f" {p.passages_done} passages"
        )
        elapsed = now - self._started
        if elapsed > 0 and share < 1.0:
            line += f", {(p.pages_done - self._first_pages) / elapsed:.1f} pages/s"
        return line


@contextmanager
def load_progress(console: Console) -> Iterator[Callable[[LoadProgress], None]]:
    """Report a load's progress on ``console``: a bar with an ETA on a terminal, else lines."""
    if not console.is_terminal:
        yield ProgressLines(lambda line: console.print(line, markup=False, highlight=False))
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages · {task.fields[passages]} passages"),
        TimeElapsedColumn(),
        TextColumn("· ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[tuple[int, str], Any] = {}

        def update(p: LoadProgress) -> None:
            key = (p.file_index, p.document)
            if key not in tasks:
                tasks[key] = bar.add_task(p.document, total=p.pages_total, passages=0)
            bar.update(tasks[key], completed=p.pages_done, passages=p.passages_done)

        yield update
