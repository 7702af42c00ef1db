"""What each dependency costs on disk in the installed environment (issue 14, footprint).

Walks the requirement tree of ``archivist-bot`` as installed (``importlib.metadata``), sizes
every distribution by the files its RECORD lists, and says which of our direct dependencies
pulls each one in. Run it in the venv the README's install makes (``pip install -e .``; the
test extras are counted apart).

Usage::

    python -m bench.footprint            # table, and "## Footprint" in docs/benchmarks.md
    python -m bench.footprint --no-write
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from bench._report import machine_line, write_section

PROJECT = "archivist-bot"
MB = 1024 * 1024


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: metadata.Distribution, extra: str | None = None) -> list[str]:
    """Names ``dist`` requires on this platform (with ``extra``, only that extra's)."""
    names = []
    for line in dist.requires or []:
        requirement, _, marker = line.partition(";")
        wanted = f'extra == "{extra}"' in marker if extra else "extra ==" not in marker
        if not wanted or ("sys_platform" in marker and "linux" not in marker):
            continue
        if "python_version < " in marker and sys.version_info >= (3, 11):
            continue
        names.append(_key(re.split(r"[\s<>=!~\[(]", requirement.strip(), maxsplit=1)[0]))
    return names


def _installed() -> dict[str, metadata.Distribution]:
    return {_key(d.metadata["Name"]): d for d in metadata.distributions()}


def _size(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def _closure(root: str, installed: dict[str, metadata.Distribution]) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo.extend(_requirements(installed[name]))
    return seen


def measure() -> tuple[list[tuple[str, float, str]], float, float]:
    """Rows (distribution, MB, pulled in by), the runtime total and the test extras' total."""
    installed = _installed()
    project = installed[_key(PROJECT)]
    pulled_by: dict[str, set[str]] = defaultdict(set)
    for direct in _requirements(project):
        for name in _closure(direct, installed):
            pulled_by[name].add(direct)
    runtime = set(pulled_by)
    test = {
        name
        for direct in _requirements(project, "test")
        for name in _closure(direct, installed)
        if name not in runtime
    }
    sizes = {name: _size(installed[name]) / MB for name in runtime | test}
    rows = [
        (name, sizes[name], ", ".join(sorted(pulled_by[name])) if name in runtime else "tests")
        for name in sorted(runtime | test, key=lambda n: -sizes[n])
    ]
    return rows, sum(sizes[n] for n in runtime), sum(sizes[n] for n in test)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    parser.add_argument("--top", type=int, default=25, help="rows in the table")
    args = parser.parse_args(argv)
    rows, runtime, test = measure()
    table = ["| distribution | MB | pulled in by |", "|---|---:|---|"]
    table += [f"| {name} | {mb:.1f} | {by} |" for name, mb, by in rows[: args.top]]
    rest = rows[args.top :]
    if rest:
        table.append(f"| {len(rest)} more | {sum(mb for _, mb, _ in rest):.1f} | |")
    markdown = (
        f"{machine_line()}\n\n"
        f"Installed size of every distribution `pip install -e .` brings (`python -m"
        f" bench.footprint`): **{runtime:.0f} MB** for the bot, {test:.0f} MB more with the"
        " test extras. *Pulled in by* names our direct dependencies that need it.\n\n"
        + "\n".join(table)
        + "\n"
    )
    print(markdown)
    if not args.no_write:
        print(f"wrote {write_section('Footprint', markdown)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
