"""What a load looks like in chat: the message sharing the files, the progress line and the
closing line."""

from __future__ import annotations

import re

from agent.core import MAX_NAME_CHARS, LoadReport, Progress

# ``name: "Field Manual" the question…`` or ``name: Field Manual`` (the whole line), at the
# start of the message or of one of its lines.
_NAME = re.compile(
    r'^[ \t]*name:[ \t]*(?:"(?P<quoted>[^"\n]+)"|(?P<line>[^\n]*))', re.IGNORECASE | re.MULTILINE
)


def shared_with(text: str) -> tuple[str | None, str]:
    """A message sharing PDFs, mentions removed: the source name it gives, and its question.

    The name is given as ``name: Field Manual`` on a line of its own, or quoted,
    ``name: "Field Manual" what does it say about X?``; without one the files name the
    source. What is left is a question to answer once the files are in.
    """
    found = _NAME.search(text)
    if found is None:
        return None, text.strip()
    name = " ".join((found["quoted"] or found["line"]).split()) or None
    return name, (text[: found.start()] + text[found.end() :]).strip()


def source_name(file_name: str, given: str | None = None) -> str:
    """The source a shared file loads into: the name given with it, else the file's name
    without ``.pdf``, made a name the core accepts (one line, printable, not too long)."""
    name = given or re.sub(r"\.pdf$", "", file_name, flags=re.IGNORECASE)
    name = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())
    return name[:MAX_NAME_CHARS].rstrip() or "document"


def progress_line(progress: Progress) -> str:
    """``Loading gri.pdf: 120/285 pages, 380 passages…``"""
    return (
        f"Loading {progress.document}: {progress.pages_done}/{progress.pages_total} pages,"
        f" {progress.passages_done} passages…"
    )


def outcome_line(report: LoadReport, attached_to: str) -> str:
    """``Loaded 914 passages from 285 pages of gri.pdf into source gri — attached to #docs``,
    or why the file did not load."""
    if report.failed:
        return report.failed[0].error or f"{report.failed[0].name} could not be loaded."
    if not report.loaded:
        names = ", ".join(f.name for f in report.files)
        return f"{names} is already in source {report.source_name}."
    loaded = report.loaded[0]
    return (
        f"Loaded {loaded.passages} passages from {loaded.pages} pages of {loaded.name}"
        f" into source {report.source_name} — attached to {attached_to}"
    )
