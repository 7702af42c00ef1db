"""What a load looks like in chat: its progress line and its closing line."""

from __future__ import annotations

from agent.core import LoadReport, Progress


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
