"""``archivist load``'s progress without a terminal: lines a service log can show (the
whole command's lines are in ``test_cli``)."""

from __future__ import annotations

import re

from agent.documents.loads import Progress
from bot.commands.load_progress import ProgressLines

PROGRESS_LINE = re.compile(r"^.+: \d+/\d+ pages \(\d+%\)")


def said(stderr: str) -> list[str]:
    """What a piped command wrote to stderr besides its progress lines."""
    return [line for line in stderr.splitlines() if not PROGRESS_LINE.match(line)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_per_tenth_of_the_pages_or_ten_seconds_and_the_last_page() -> None:
    lines: list[str] = []
    clock = Clock()
    report = ProgressLines(lines.append, clock)

    def at(pages: int, seconds: float, document: str = "big.pdf", index: int = 1) -> None:
        clock.now += seconds
        report(Progress(document, index, 2, pages, 200, pages * 3))

    at(4, 1)  # the first report: a line at once
    at(8, 1)  # 2 % more, 1 s later: quiet
    at(24, 1)  # 10 % since the last line
    at(26, 12)  # 1 % more but 12 s later
    at(27, 1)  # quiet again
    at(200, 30)  # the last page
    at(200, 1)  # the same again: said once
    assert lines == [
        "big.pdf (file 1 of 2): 4/200 pages (2%), 12 passages",
        "big.pdf (file 1 of 2): 24/200 pages (12%), 72 passages, 10.0 pages/s",
        "big.pdf (file 1 of 2): 26/200 pages (13%), 78 passages, 1.6 pages/s",
        "big.pdf (file 1 of 2): 200/200 pages (100%), 600 passages",
    ]
    at(10, 5, "small.pdf", 2)  # the next file starts its own lines and its own clock
    assert lines[-1] == "small.pdf (file 2 of 2): 10/200 pages (5%), 30 passages"
