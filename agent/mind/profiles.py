"""Personas and human profiles: plain text files, shipped or added by the operator.

Shipped ones live in ``agent/mind/prompts/{personas,humans}/``; an operator adds their own in
``[agent] personas_dir`` (``<name>.txt`` for personas, ``humans/<name>.txt`` for humans), and
theirs win over shipped ones of the same name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agent.errors import ArchivistError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class UnknownProfile(ArchivistError):
    """A persona or human profile that does not exist."""


@dataclass(frozen=True)
class Profiles:
    """Where persona and human texts are found: the shipped ones, then the operator's."""

    extra_dir: Path | None = None

    def persona(self, name: str) -> str:
        """The text of persona ``name``."""
        return self._read("personas", name)

    def human(self, name: str) -> str:
        """The text of human profile ``name``."""
        return self._read("humans", name)

    def names(self, kind: str) -> list[str]:
        """Every available persona (``kind="personas"``) or human (``"humans"``) name."""
        found = {
            p.name[:-4] for p in resources.files("agent.mind.prompts").joinpath(kind).iterdir()
        }
        folder = self._folder(kind)
        if folder is not None and folder.is_dir():
            found.update(p.stem for p in folder.glob("*.txt"))
        return sorted(n for n in found if _NAME.match(n))

    def _folder(self, kind: str) -> Path | None:
        if self.extra_dir is None:
            return None
        return self.extra_dir if kind == "personas" else self.extra_dir / "humans"

    def _read(self, kind: str, name: str) -> str:
        if not _NAME.match(name):
            raise UnknownProfile(f"'{name[:64]}' is not a valid {kind[:-1]} name.")
        folder = self._folder(kind)
        if folder is not None and (folder / f"{name}.txt").is_file():
            return (folder / f"{name}.txt").read_text(encoding="utf-8").strip()
        shipped = resources.files("agent.mind.prompts").joinpath(kind).joinpath(f"{name}.txt")
        if shipped.is_file():
            return shipped.read_text(encoding="utf-8").strip()
        choices = ", ".join(self.names(kind))
        raise UnknownProfile(f"There is no {kind[:-1]} called '{name}'; choose from: {choices}.")
