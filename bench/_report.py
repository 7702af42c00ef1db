"""Write benchmark results into ``docs/benchmarks.md``, one ``## title`` section per script.

Each script in ``bench/`` owns one section: :func:`write_section` replaces the section with
the same title (everything up to the next ``## `` heading) or appends it, leaving the other
scripts' sections as they are. :func:`machine_line` says where and with what the numbers were
measured, so sections from different days or machines are not compared blindly.

Scripts import it as ``from bench import _report`` and run as ``python -m bench.NAME``.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"
_HEADER = "# Benchmarks\n\nMeasured numbers, one section per benchmark script in `bench/`.\n"
_VERSIONED = ("numpy", "onnxruntime", "pymilvus")


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def machine_line() -> str:
    """One Markdown line: date, CPU, cores, memory, OS, and Python/numpy/onnxruntime/pymilvus."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine()
    memory = _proc_field("/proc/meminfo", "MemTotal")
    memory_gib = f"{int(memory.split()[0]) / 1024**2:.0f} GiB" if memory else "? GiB"
    versions = ", ".join(f"{name} {_version(name)}" for name in _VERSIONED)
    return (
        f"*Measured {datetime.date.today().isoformat()} on {cpu}, {os.cpu_count()} cores,"
        f" {memory_gib} RAM; {platform.system()} {platform.release()};"
        f" Python {platform.python_version()}, {versions}.*"
    )


def write_section(title: str, markdown: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace the ``## title`` section of ``path`` with ``markdown``, or append it.

    Creates the file (with a short header) if missing; returns the path written.
    """
    text = path.read_text(encoding="utf-8") if path.is_file() else _HEADER
    section = f"## {title}\n\n{markdown.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        # A function replacement, so backslashes in the markdown are not read as escapes.
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def latency_table(what: str, rows: list[tuple[str, list[float]]], target: str) -> str:
    """A Markdown table of p50, p99 and max (ms) per bot state, with the target."""
    table = (
        f"| bot state | {what} | p50 ms | p99 ms | max ms | target |\n"
        "|---|---:|---:|---:|---:|---|\n"
    )
    return table + "\n".join(
        f"| {name} | {len(v)} | {percentile(v, 50):.1f} | {percentile(v, 99):.1f} |"
        f" {max(v):.1f} | {target} |"
        for name, v in rows
    )
