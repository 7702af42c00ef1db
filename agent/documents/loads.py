"""What a load is given and what it reports: files in, progress along the way, results out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.documents.display_names import safe_display_name
from agent.documents.registry import Source
from agent.errors import quoted_name


@dataclass(frozen=True)
class FileInput:
    """A file to load: where it is, what to call it, and where it came from (for citations)."""

    path: Path
    name: str | None = None
    origin: str | None = None
    folder: tuple[str, ...] = ()
    """Folders above the file that tell it apart from another file of the same name."""

    @property
    def display_name(self) -> str:
        """The name shown to users and stored with passages (``guide/manual.pdf``)."""
        name = safe_display_name(self.name or self.path.name)
        return "/".join([*(safe_display_name(part) for part in self.folder), name])


def named_apart(paths: Sequence[Path]) -> list[FileInput]:
    """Files of one load, each named by its file name; files that share one are named by as
    much of their folders as tells them apart (``a/manual.pdf``, ``b/manual.pdf``), so their
    citations do too."""
    # Without the anchor ("/"): it names no folder a person would recognise.
    folders = [path.resolve().parent.parts[1:] for path in paths]
    inputs = [FileInput(path) for path in paths]
    by_name: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        by_name.setdefault(path.name, []).append(index)
    for same in (group for group in by_name.values() if len(group) > 1):
        depth = 1
        deepest = max(len(folders[i]) for i in same)
        while depth < deepest and len({folders[i][-depth:] for i in same}) < len(same):
            depth += 1
        for index in same:
            inputs[index] = FileInput(paths[index], folder=folders[index][-depth:])
    return inputs


@dataclass(frozen=True)
class Progress:
    """Where a load is: the current file and totals so far."""

    document: str
    file_index: int
    files_total: int
    pages_done: int
    pages_total: int
    passages_done: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class FileResult:
    """The outcome of loading one file."""

    name: str
    status: Literal["loaded", "duplicate", "failed"]
    pages: int = 0
    passages: int = 0
    error: str | None = None
    unavailable: bool = False
    """The store failed (Milvus down): this file, and any not tried after it, did not load."""


@dataclass
class StageTimes:
    """Seconds spent waiting on each stage (parse is what was not hidden behind embedding)."""

    parse: float = 0.0
    chunk: float = 0.0
    embed: float = 0.0
    insert: float = 0.0


@dataclass(frozen=True)
class LoadReport:
    """What a load did, file by file."""

    source: Source | None
    source_name: str
    files: list[FileResult]
    times: StageTimes = field(default_factory=StageTimes)

    @property
    def failed(self) -> list[FileResult]:
        """Files that did not load."""
        return [f for f in self.files if f.status == "failed"]

    @property
    def loaded(self) -> list[FileResult]:
        """Files whose passages are now in the source."""
        return [f for f in self.files if f.status == "loaded"]

    @property
    def unavailable(self) -> bool:
        """True when the load stopped because a store failed, rather than on bad files."""
        return any(f.unavailable for f in self.files)

    @property
    def passages(self) -> int:
        """Passages added by the files that loaded."""
        return sum(f.passages for f in self.loaded)

    def summary(self) -> str:
        """One line in the style of ``Loaded 914 passages from 285 pages (1 file) into ...``."""
        loaded = self.loaded
        passages = self.passages
        pages = sum(f.pages for f in loaded)
        files = f"{len(loaded)} file" + ("" if len(loaded) == 1 else "s")
        line = (
            f"Loaded {passages} passages from {pages} pages ({files}) into source"
            f" {quoted_name(self.source_name)}"
        )
        duplicates = [f for f in self.files if f.status == "duplicate"]
        if duplicates:
            line += f"; {len(duplicates)} already there"
        if self.failed:
            line += f"; {len(self.failed)} failed"
        return line
