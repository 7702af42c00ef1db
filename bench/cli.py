"""How fast the ``archivist`` commands start, and how much memory they take (issue 14).

Each command runs as its own process against a data folder holding one loaded source (the
sample guide) and one agent, ``--rounds`` times, the commands taking turns so that other work
on the machine slows them all alike. ``python -c pass`` is the floor: what starting Python
costs here. Wall time is the median round; peak RSS the process's own (``wait4``).

Usage::

    python -m bench.cli                      # table, and "## CLI start-up" in docs/benchmarks.md
    python -m bench.cli --rounds 3 --no-write
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from bench._report import machine_line, write_section

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "docs" / "sample" / "archivist-guide.pdf"
ARCHIVIST = [sys.executable, "-m", "bot"]  # as the console script runs, from any folder


@dataclass(frozen=True)
class Command:
    """One command line to time, with the issue's targets (None: no target)."""

    label: str
    argv: list[str]
    target_s: float | None = None
    target_mb: float | None = None


COMMANDS = (
    Command("python -c pass", [sys.executable, "-c", "pass"]),
    Command("archivist --help", [*ARCHIVIST, "--help"], 0.3),
    Command("archivist --version", [*ARCHIVIST, "--version"], 0.3),
    Command("archivist sources list", [*ARCHIVIST, "sources", "list"], 0.5, 100),
    Command("archivist sources show guide", [*ARCHIVIST, "sources", "show", "guide"], 0.5, 100),
    Command("archivist agents list", [*ARCHIVIST, "agents", "list"], 0.5, 100),
    Command(
        "archivist sources attach guide",
        [*ARCHIVIST, "sources", "attach", "guide", "--conversation", "discord:1:2"],
        0.5,
        100,
    ),
    Command(
        "archivist sources search (loads Milvus Lite and the model)",
        [*ARCHIVIST, "sources", "search", "--source", "guide", "attach a source"],
    ),
)


@dataclass(frozen=True)
class Timing:
    seconds: float
    rss_mb: float


def timed(argv: list[str], env: dict[str, str]) -> Timing:
    """Run ``argv`` to its end: wall seconds and peak resident memory."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=env["ARCHIVIST_STORAGE_DATA_DIR"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    problem = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: {problem}")
    return Timing(seconds, usage.ru_maxrss / 1024)


def prepare(env: dict[str, str]) -> None:
    """A data folder with the sample guide loaded and one agent (a search-only chat)."""
    load = [*ARCHIVIST, "load", "directory", "--name", "guide", "--input-files", str(SAMPLE)]
    here = env["ARCHIVIST_STORAGE_DATA_DIR"]
    subprocess.run(load, env=env, cwd=here, check=True, capture_output=True)
    chat = [*ARCHIVIST, "chat"]
    subprocess.run(chat, env=env, cwd=here, input="/memory\n", text=True, capture_output=True)


def measure(rounds: int) -> list[tuple[Command, list[Timing]]]:
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as data:
        # The embedded defaults (no config file, no model): only the data folder is set.
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ARCHIVIST_", "OPENAI_"))},
            "ARCHIVIST_STORAGE_DATA_DIR": data,
        }
        prepare(env)
        results: dict[str, list[Timing]] = {c.label: [] for c in COMMANDS}
        for _ in range(rounds):
            for command in COMMANDS:
                results[command.label].append(timed(command.argv, env))
    return [(c, results[c.label]) for c in COMMANDS]


def _met(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "met" if value <= target else "**missed**"


def table(rows: list[tuple[Command, list[Timing]]]) -> str:
    lines = [
        "| command | median s | min s | peak RSS MB | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    for command, timings in rows:
        median = statistics.median(t.seconds for t in timings)
        rss = max(t.rss_mb for t in timings)
        target = " · ".join(
            part
            for part in (
                f"≤ {command.target_s} s" if command.target_s else "",
                f"≤ {command.target_mb:.0f} MB" if command.target_mb else "",
            )
            if part
        )
        verdicts = {_met(median, command.target_s), _met(rss, command.target_mb)} - {""}
        verdict = "**missed**" if "**missed**" in verdicts else "".join(verdicts)
        lines.append(
            f"| `{command.label}` | {median:.2f} | {min(t.seconds for t in timings):.2f}"
            f" | {rss:.0f} | {target} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="runs of each command")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    args = parser.parse_args(argv)
    rows = measure(args.rounds)
    markdown = (
        f"{machine_line()}\n\n"
        f"Each command {args.rounds} times as its own process, taking turns, on a data folder"
        " holding the sample guide and one agent (`python -m bench.cli`). The state-only"
        " commands read SQLite and import no store, model or platform library.\n\n"
        f"{table(rows)}\n"
    )
    print(markdown)
    if not args.no_write:
        print(f"wrote {write_section('CLI start-up', markdown)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
