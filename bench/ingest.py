"""Ingest speed and memory: a whole manual through ``Library.load``, against the embedding floor.

For each manual (by default the 1,151-page C++ Annotations and the 236-page *Writing R
Extensions*, see ``bench._manuals``) and each settings variant, three fresh processes run one
after the other, so that every peak RSS belongs to one job only:

1. **load**: settings -> ``open_library`` -> ``Library.load`` of the PDF into a new temporary
   data dir (SQLite + Milvus Lite). Reported: pages, passages, wall time of the ``load`` call,
   pages/s, passages/s, the seconds waited per stage (``LoadReport.times``: parse is what
   embedding did not hide), CPU seconds of this process and of the parser process, and peak
   RSS of the main process (``RUSAGE_SELF``) and of the parser process (``RUSAGE_CHILDREN``
   once it has been reaped; its ``VmHWM`` is also sampled while it runs).
2. **floor**: the same embedder (same settings) embeds exactly the passage texts that the load
   stored (``SELECT text FROM passages ORDER BY id`` in that data dir), in one ``embed`` call,
   after a warm-up. ``total / floor`` says how much the rest of the pipeline costs on top of
   the embedding itself.
3. **parse** (with ``--parse-only``): ``extract_pages`` over the whole PDF in one process,
   nothing else running in the bench, to know what the parser process needs on its own.

The reference printed with the table is MemGPT 0.3.25 loading a 285-page manual (914
passages) in 35.8 s with a 1.53 GB peak RSS on a 2-core machine with the same model.
``--vs-memgpt`` measures MemGPT itself instead, on the same manuals in the same run
(``bench.memgpt``, section "Ingest against MemGPT 0.3.25").

Variants are settings overrides, e.g. ``--variant t1:embeddings.threads=1``; several may be
given. ``--sweep`` adds a fixed set of variants (threads, batch size, pages per task,
concurrency) for the diagnosis.

Usage::

    python -m bench.ingest                              # both manuals, default settings
    python -m bench.ingest --manuals r-exts --no-write  # quick, prints only
    python -m bench.ingest --sweep --sweep-manual r-exts --parse-only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from bench import _manuals, _report

BENCH_DIR = Path(__file__).resolve().parent
SECTION = "Ingest"
SCOPE = "global"
SOURCE = "manual"
DEFAULT_MANUALS = ("cpp-annotations", "r-exts")

# MemGPT 0.3.25, same model, 2-core machine: 285 pages, 914 passages, 35.8 s, 1.53 GB peak.
MEMGPT_PAGES = 285
MEMGPT_PASSAGES = 914
MEMGPT_SECONDS = 35.8
MEMGPT_RSS_GB = 1.53
MEMGPT_PAGES_PER_S = MEMGPT_PAGES / MEMGPT_SECONDS

TARGET_SPEEDUP = 4.0  # x MemGPT's pages/s
TARGET_RSS_GB = 0.5
TARGET_FLOOR_RATIO = 1.3

SWEEP: dict[str, dict[str, Any]] = {
    "conc=1,threads=1": {"embeddings.max_concurrency": 1, "embeddings.threads": 1},
    "conc=1,threads=2": {"embeddings.max_concurrency": 1, "embeddings.threads": 2},
    "batch=16": {"embeddings.batch_size": 16},
    "batch=64": {"embeddings.batch_size": 64},
    "pages/task=4": {"ingest.pages_per_task": 4},
    "pages/task=64": {"ingest.pages_per_task": 64},
    "conc=2,threads=1": {"embeddings.max_concurrency": 2, "embeddings.threads": 1},
    "conc=3,threads=1": {"embeddings.max_concurrency": 3, "embeddings.threads": 1},
    "cells=4 (patch)": {"patch.max_batch_cells": 4},
    "cells=2 (patch)": {"patch.max_batch_cells": 2},
    "no spin (patch)": {"patch.spinning": 0},
}


# ------------------------------------------------------------------------------ settings


def bench_settings(data_dir: Path, overrides: dict[str, Any], config: Path | None = None) -> Any:
    """Project settings with storage and a Milvus Lite file in ``data_dir``, plus overrides.

    ``overrides`` maps ``section.key`` to a value (``{"embeddings.threads": 1}``). The
    converted model is cached in ``bench/data/models`` so fresh data dirs do not fold it again.
    """
    from bot.config import load_settings

    settings = load_settings(config)
    updates: dict[str, dict[str, Any]] = {
        "storage": {"data_dir": data_dir},
        "milvus": {"uri": ""},
        "embeddings": {},
    }
    if settings.embeddings.cache_dir is None:
        updates["embeddings"]["cache_dir"] = _manuals.DATA_DIR / "models"
    for dotted, value in overrides.items():
        if dotted.startswith("patch."):
            continue  # applied by apply_patches, not a setting
        section, key = dotted.split(".", 1)
        updates.setdefault(section, {})[key] = value
    sections = {
        name: getattr(settings, name).model_copy(update=values) for name, values in updates.items()
    }
    return settings.model_copy(update=sections)


def apply_patches(overrides: dict[str, Any]) -> None:
    """Bench-only what-ifs for code changes that no setting reaches (agent/ is not edited).

    ``patch.max_batch_cells=N``: ``agent.documents.local_embed._MAX_BATCH_CELLS`` is
    ``N * 256 * 256`` (the cap on batch x length^2; 2 in the code). ``patch.mem_pattern=0``:
    onnxruntime sessions without ``enable_mem_pattern``. ``patch.spinning=0``: onnxruntime's
    intra-op threads do not busy-wait (``session.intra_op.allow_spinning=0``).
    """
    import agent.documents.local_embed as embed

    if "patch.max_batch_cells" in overrides:
        # A Final in the code: rebinding the module's global is the point of this what-if.
        embed.__dict__["_MAX_BATCH_CELLS"] = int(overrides["patch.max_batch_cells"]) * 256 * 256
    no_pattern = overrides.get("patch.mem_pattern") == 0
    no_spin = overrides.get("patch.spinning") == 0
    if no_pattern or no_spin:
        import onnxruntime as ort  # type: ignore[import-untyped]

        def new_session(path: Path, *, threads: int) -> Any:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            if no_pattern:
                options.enable_mem_pattern = False
            if no_spin:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        embed.__dict__["_new_session"] = new_session  # the name LocalEmbedder looks up


def parse_overrides(spec: str) -> dict[str, Any]:
    """``a.b=1,c.d=x`` -> ``{"a.b": 1, "c.d": "x"}`` (ints and floats converted)."""
    result: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, raw = part.partition("=")
        value: Any = raw
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
        result[key.strip()] = value
    return result


# ------------------------------------------------------------------- process accounting


def _mb(kib: int) -> float:
    return kib / 1024


def _children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from ``/proc/PID/task/*/children``)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _is_parser(pid: int) -> bool:
    """Whether ``pid`` runs a multiprocessing spawn worker (the parser process)."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ChildSampler:
    """Samples the peak RSS (``VmHWM``) and CPU time of this process's parser while it runs."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.hwm_kib: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _children_of(os.getpid()):
                # A child forked but not yet exec'd still has this process's memory as its
                # own (a loaded machine can hold it there for seconds): only the parser counts.
                if not _is_parser(pid):
                    continue
                hwm = _status_kib(pid, "VmHWM:")
                if hwm:
                    self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), hwm)
                    self.cpu[pid] = max(self.cpu.get(pid, 0.0), _cpu_seconds(pid))


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def reap_children(timeout: float = 10.0) -> None:
    """Wait until the multiprocessing children (the parser pool) have exited and been reaped."""
    import multiprocessing

    deadline = time.monotonic() + timeout
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)


# --------------------------------------------------------------------------- child jobs


@dataclass
class LoadResult:
    """What one load child reports."""

    manual: str
    variant: str
    pages: int
    passages: int
    startup_s: float
    load_s: float
    stages: dict[str, float]
    rss_main_mb: float
    rss_children_mb: float
    parser_hwm_mb: float
    cpu_main_s: float
    cpu_children_s: float
    parser_cpu_s: float
    loadavg_before: float
    loadavg_after: float
    other_cpu_s: float
    timeline: list[tuple[float, int, int]] = field(default_factory=list)


async def child_load(
    pdf: Path, manual: str, variant: str, data_dir: Path, over: dict[str, Any]
) -> LoadResult:
    """Load ``pdf`` through the project's own code path; measure time, CPU and memory."""
    from agent.documents.loads import FileInput, Progress
    from bot.app import open_library

    apply_patches(over)
    settings = bench_settings(data_dir, over)
    loadavg_before = os.getloadavg()[0]
    busy0, own0 = busy_cpu_seconds(), own_cpu_seconds()
    began = time.perf_counter()
    timeline: list[tuple[float, int, int]] = []
    with ChildSampler() as sampler:
        async with open_library(settings) as library:
            startup = time.perf_counter() - began
            start = time.perf_counter()

            def progress(p: Progress) -> None:
                timeline.append((time.perf_counter() - start, p.pages_done, p.passages_done))

            report = await library.load(
                SCOPE, SOURCE, [FileInput(pdf)], created_by="bench", progress=progress
            )
            load_s = time.perf_counter() - start
        reap_children()
    other = (busy_cpu_seconds() - busy0) - (own_cpu_seconds() - own0)
    if report.failed:
        raise RuntimeError("; ".join(f"{f.name}: {f.error}" for f in report.failed))
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return LoadResult(
        manual=manual,
        variant=variant,
        pages=sum(f.pages for f in report.loaded),
        passages=sum(f.passages for f in report.loaded),
        startup_s=startup,
        load_s=load_s,
        stages=asdict(report.times),
        rss_main_mb=_mb(own.ru_maxrss),
        rss_children_mb=_mb(kids.ru_maxrss),
        parser_hwm_mb=_mb(max(sampler.hwm_kib.values(), default=0)),
        cpu_main_s=own.ru_utime + own.ru_stime,
        cpu_children_s=kids.ru_utime + kids.ru_stime,
        parser_cpu_s=max(sampler.cpu.values(), default=0.0),
        loadavg_before=loadavg_before,
        loadavg_after=os.getloadavg()[0],
        other_cpu_s=max(0.0, other),
        timeline=timeline,
    )


@dataclass
class FloorResult:
    """What one floor child reports."""

    passages: int
    word_pieces: int
    floor_s: float
    floor_cpu_s: float
    grouped_s: float | None
    rss_mb: float
    loadavg: float
    other_cpu_s: float


async def child_floor(data_dir: Path, over: dict[str, Any], grouped: bool) -> FloorResult:
    """Embed the passage texts stored in ``data_dir`` with the configured embedder, timed."""
    from bot.app import make_embedder

    with sqlite3.connect(data_dir / "archivist.db") as conn:
        texts = [row[0] for row in conn.execute("SELECT text FROM passages ORDER BY id")]
    apply_patches(over)
    settings = bench_settings(data_dir, over)
    embedder = await make_embedder(settings)  # warms up: session open, first inference
    try:
        pieces = sum(len(embedder.token_spans(t)) for t in texts)
        busy0, own0 = busy_cpu_seconds(), own_cpu_seconds()
        start = time.perf_counter()
        vectors = await embedder.embed(texts)
        floor_s = time.perf_counter() - start
        floor_cpu = own_cpu_seconds() - own0
        other = (busy_cpu_seconds() - busy0) - (own_cpu_seconds() - own0)
        assert vectors.shape[0] == len(texts)
        grouped_s = None
        if grouped:  # as the loader calls it: 64 texts at a time, in order
            start = time.perf_counter()
            for i in range(0, len(texts), 64):
                await embedder.embed(texts[i : i + 64])
            grouped_s = time.perf_counter() - start
    finally:
        await embedder.aclose()
    return FloorResult(
        passages=len(texts),
        word_pieces=pieces,
        floor_s=floor_s,
        floor_cpu_s=floor_cpu,
        grouped_s=grouped_s,
        rss_mb=_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
        loadavg=os.getloadavg()[0],
        other_cpu_s=max(0.0, other),
    )


def child_parse(pdf: Path, pages_per_task: int) -> dict[str, float]:
    """Parse the whole PDF in this process as the parser process does; wall and CPU seconds."""
    from agent.documents.pdf import PdfLimits, extract_pages, inspect_pdf

    limits = PdfLimits(max_bytes=100 << 20, max_pages=5000, max_stream_bytes=64 << 20)
    cpu0 = time.process_time()
    start = time.perf_counter()
    info = inspect_pdf(pdf, pdf.name, limits)
    chars = 0
    for first in range(1, info.pages + 1, pages_per_task):
        last = min(first + pages_per_task - 1, info.pages)
        chars += sum(len(p.text) for p in extract_pages(pdf, pdf.name, first, last, limits))
    return {
        "pages": info.pages,
        "chars": chars,
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu0,
        "rss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    }


def run_child(args: argparse.Namespace) -> int:
    """Entry point of the child processes: run one job, print its JSON on the last line."""
    over = json.loads(args.overrides)
    result: Any
    if args.child == "load":
        result = asdict(
            asyncio.run(
                child_load(
                    Path(args.pdf), args.manual, args.variant_name, Path(args.data_dir), over
                )
            )
        )
    elif args.child == "floor":
        result = asdict(asyncio.run(child_floor(Path(args.data_dir), over, args.floor_grouped)))
    else:
        result = child_parse(Path(args.pdf), int(over.get("ingest.pages_per_task", 16)))
    print(json.dumps(result))
    return 0


def spawn(job: str, **kwargs: Any) -> dict[str, Any]:
    """Run a child job in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", job]
    for key, value in kwargs.items():
        if isinstance(value, bool):
            if value:
                cmd.append(f"--{key.replace('_', '-')}")
        else:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {job} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ------------------------------------------------------------------------------ the run


@dataclass
class Row:
    """One manual x variant: load, floor and (optionally) parse-only results."""

    load: dict[str, Any]
    floor: dict[str, Any]
    parse: dict[str, Any] | None = None

    @property
    def pages_per_s(self) -> float:
        return float(self.load["pages"]) / float(self.load["load_s"])

    @property
    def ratio(self) -> float:
        return float(self.load["load_s"]) / float(self.floor["floor_s"])

    @property
    def peak_gb(self) -> float:
        return max(float(self.load["rss_main_mb"]), float(self.floor["rss_mb"])) / 1024

    def meets(self) -> dict[str, bool]:
        """Which targets this row meets."""
        return {
            "speed": self.pages_per_s >= TARGET_SPEEDUP * MEMGPT_PAGES_PER_S,
            "rss": self.load["rss_main_mb"] / 1024 <= TARGET_RSS_GB
            and self.load["parser_hwm_mb"] / 1024 <= TARGET_RSS_GB,
            "floor": self.ratio <= TARGET_FLOOR_RATIO,
        }


def measure(
    manual: str, variant: str, over: dict[str, Any], *, parse_only: bool, grouped: bool
) -> Row:
    """Load, floor (and parse) for one manual and variant, each in a fresh process."""
    pdf = _manuals.fetch_manual(manual)
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-ingest-{manual}-"))
    try:
        overrides = json.dumps(over)
        print(f"[{manual} / {variant}] loading ...", file=sys.stderr, flush=True)
        load = spawn(
            "load",
            pdf=pdf,
            manual=manual,
            variant_name=variant,
            data_dir=data_dir,
            overrides=overrides,
        )
        print(
            f"[{manual} / {variant}] {load['pages']} pages, {load['passages']} passages in"
            f" {load['load_s']:.1f} s; embedding floor ...",
            file=sys.stderr,
            flush=True,
        )
        floor = spawn("floor", data_dir=data_dir, overrides=overrides, floor_grouped=grouped)
        parse = spawn("parse", pdf=pdf, overrides=overrides) if parse_only else None
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    row = Row(load, floor, parse)
    print(
        f"[{manual} / {variant}] floor {floor['floor_s']:.1f} s, ratio {row.ratio:.2f}",
        file=sys.stderr,
        flush=True,
    )
    return row


TABLE_NOTES = (
    "Wall s: the `Library.load` call (start-up of `open_library` excluded, see below);",
    "stage seconds are *waited* per stage (`LoadReport.times`: parse is what embedding did",
    "not hide). Peak RSS main: `ru_maxrss` of the loading process. Parser: its `VmHWM`",
    "sampled every 0.25 s while it runs; in brackets `ru_maxrss` of `RUSAGE_CHILDREN`, which",
    "is inflated: a spawned child is forked from the main process before it execs Python, and",
    "Linux keeps that pre-exec high-water mark (the main process's RSS at the time) as the",
    "child's `ru_maxrss`. Embed floor: a fresh process embeds the same passage texts",
    "(`SELECT text FROM passages ORDER BY id`) with the same embedder in one call, after a",
    "warm-up.",
)
DETAIL_NOTES = (
    "Cores busy: CPU seconds of the load process and its parser over the wall time (start-up",
    "included), on 2 cores. Other procs' CPU: CPU seconds the rest of the machine used",
    "meanwhile (`/proc/stat` busy time minus ours); other work slows a run. Pieces/s: the",
    "WordPiece tokens of all passages per second, a model-independent throughput. Not",
    "embedding: main CPU minus the CPU the floor process spent embedding. Floor in",
    "64s: the same texts embedded 64 at a time, as the loader calls the embedder.",
)


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def main_table(rows: Sequence[Row]) -> str:
    """The headline table, with MemGPT's reference row and the targets."""
    head = [
        "manual",
        "variant",
        "pages",
        "passages",
        "wall s",
        "pages/s",
        "passages/s",
        "x MemGPT",
        "parse / chunk / embed / insert s",
        "peak RSS main MB",
        "peak RSS parser MB (RUSAGE_CHILDREN)",
        "embed floor s",
        "total / floor",
        "other procs' CPU s (load / floor)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for r in rows:
        ld, fl = r.load, r.floor
        st = ld["stages"]
        lines.append(
            "| "
            + " | ".join(
                [
                    ld["manual"],
                    ld["variant"],
                    str(ld["pages"]),
                    str(ld["passages"]),
                    f"{ld['load_s']:.1f}",
                    f"{r.pages_per_s:.1f}",
                    f"{ld['passages'] / ld['load_s']:.1f}",
                    f"{r.pages_per_s / MEMGPT_PAGES_PER_S:.2f}",
                    f"{st['parse']:.1f} / {st['chunk']:.1f} / {st['embed']:.1f} /"
                    f" {st['insert']:.1f}",
                    f"{ld['rss_main_mb']:.0f}",
                    f"{ld['parser_hwm_mb']:.0f} ({ld['rss_children_mb']:.0f})",
                    f"{fl['floor_s']:.1f}",
                    f"{r.ratio:.2f}",
                    f"{ld['other_cpu_s']:.0f} / {fl['other_cpu_s']:.0f}",
                ]
            )
            + " |"
        )
    lines.append(
        f"| MemGPT 0.3.25 (reference) | - | {MEMGPT_PAGES} | {MEMGPT_PASSAGES} |"
        f" {MEMGPT_SECONDS:.1f} | {MEMGPT_PAGES_PER_S:.2f} |"
        f" {MEMGPT_PASSAGES / MEMGPT_SECONDS:.1f} | 1.00 | - | {MEMGPT_RSS_GB * 1024:.0f} |"
        " - | - | - | - |"
    )
    return "\n".join(lines)


def detail_table(rows: Sequence[Row]) -> str:
    """CPU accounting and token throughput: where the two cores went."""
    head = [
        "manual",
        "variant",
        "word pieces",
        "pieces/s (load)",
        "pieces/s (floor)",
        "CPU main s",
        "of which not embedding",
        "CPU parser s",
        "cores busy",
        "floor RSS MB",
        "floor in 64s s",
        "parse alone s (CPU)",
        "startup s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for r in rows:
        ld, fl, pa = r.load, r.floor, r.parse
        cpu = ld["cpu_main_s"] + ld["cpu_children_s"]
        grouped = f"{fl['grouped_s']:.1f}" if fl.get("grouped_s") else "-"
        parse = f"{pa['wall_s']:.1f} ({pa['cpu_s']:.1f})" if pa else "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    ld["manual"],
                    ld["variant"],
                    str(fl["word_pieces"]),
                    f"{fl['word_pieces'] / ld['load_s']:.0f}",
                    f"{fl['word_pieces'] / fl['floor_s']:.0f}",
                    f"{ld['cpu_main_s']:.1f}",
                    f"{ld['cpu_main_s'] - fl.get('floor_cpu_s', 0.0):.1f}",
                    f"{ld['cpu_children_s']:.1f}",
                    f"{cpu / (ld['load_s'] + ld['startup_s']):.2f}",
                    f"{fl['rss_mb']:.0f}",
                    grouped,
                    parse,
                    f"{ld['startup_s']:.1f}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def verdict(rows: Sequence[Row]) -> str:
    """One line per row saying which targets are met."""
    out = []
    for r in rows:
        m = r.meets()
        out.append(
            f"- {r.load['manual']} / {r.load['variant']}:"
            f" speed >= {TARGET_SPEEDUP:.0f}x MemGPT"
            f" ({TARGET_SPEEDUP * MEMGPT_PAGES_PER_S:.1f} pages/s): {_ok(m['speed'])};"
            f" peak RSS <= {TARGET_RSS_GB} GB: {_ok(m['rss'])};"
            f" total <= {TARGET_FLOOR_RATIO}x floor: {_ok(m['floor'])}"
        )
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (the ``--child`` ones are internal)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--manuals", default=",".join(DEFAULT_MANUALS), help="comma-separated keys")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VAL,...",
        help="a settings variant, e.g. t1:embeddings.threads=1 (default: the defaults only)",
    )
    p.add_argument("--sweep", action="store_true", help="also run the fixed diagnostic variants")
    p.add_argument("--sweep-manual", default="r-exts", help="manual the sweep runs on")
    p.add_argument("--parse-only", action="store_true", help="also time the parser alone")
    p.add_argument(
        "--floor-grouped", action="store_true", help="also time the floor in groups of 64"
    )
    p.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    p.add_argument("--notes", type=Path, help="Markdown file appended to the section")
    p.add_argument("--json", type=Path, help="write the raw results here")
    p.add_argument(
        "--from-json",
        type=Path,
        action="append",
        default=[],
        help="render the report from results saved with --json (repeatable), running nothing",
    )
    p.add_argument(
        "--vs-memgpt",
        action="store_true",
        help="load each manual with MemGPT 0.3.25 and Archivist alternately (bench/memgpt.py)",
    )
    p.add_argument("--rounds", type=int, default=2, help="--vs-memgpt rounds (best kept)")
    p.add_argument("--child", choices=("load", "floor", "parse"), help=argparse.SUPPRESS)
    p.add_argument("--pdf", help=argparse.SUPPRESS)
    p.add_argument("--manual", help=argparse.SUPPRESS)
    p.add_argument("--variant-name", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    p.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; print the tables and write the ``## Ingest`` section."""
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    if args.vs_memgpt:  # its own section, "Ingest against MemGPT 0.3.25"
        from bench import memgpt

        return memgpt.run_and_report(
            args.manuals.split(","),
            memgpt.ARCHIVIST_MODELS,
            args.rounds,
            write=not args.no_write,
            json_path=args.json,
            command="python -m bench.ingest " + " ".join(sys.argv[1:]),
        )
    variants: list[tuple[str, dict[str, Any]]] = [("default", {})]
    for spec in args.variant:
        name, _, rest = spec.partition(":")
        variants.append((name, parse_overrides(rest)))
    jobs = [(m, name, over) for m in args.manuals.split(",") for name, over in variants]
    if args.sweep:
        jobs += [(args.sweep_manual, name, over) for name, over in SWEEP.items()]
    if args.from_json:
        saved = [item for f in args.from_json for item in json.loads(f.read_text("utf-8"))]
        rows = [Row(item["load"], item["floor"], item.get("parse")) for item in saved]
        jobs = [(r.load["manual"], r.load["variant"], r.load.get("overrides", {})) for r in rows]
    else:
        rows = [
            measure(m, name, over, parse_only=args.parse_only, grouped=args.floor_grouped)
            for m, name, over in jobs
        ]
        for row, (_, _, over) in zip(rows, jobs, strict=True):
            row.load["overrides"] = over
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1), encoding="utf-8")
    described: dict[str, dict[str, Any]] = {}
    for _, name, over in jobs:
        described.setdefault(name, over)
    variant_notes = "\n".join(
        f"- `{name}`: {', '.join(f'{k}={v}' for k, v in over.items()) or 'project defaults'}"
        for name, over in described.items()
    )
    body = "\n\n".join(
        [
            _report.machine_line(),
            main_table(rows),
            " ".join(TABLE_NOTES),
            "Targets:\n\n" + verdict(rows),
            detail_table(rows),
            " ".join(DETAIL_NOTES),
            "Variants:\n\n" + variant_notes,
        ]
    )
    if args.notes and args.notes.is_file():
        body += "\n\n" + args.notes.read_text(encoding="utf-8").strip()
    if args.from_json:
        body += (
            "\n\nReproduce: the runs named in the notes, each with `--json FILE`, then"
            " `python -m bench.ingest --from-json FILE ...` renders them together."
        )
    else:
        cmd = "python -m bench.ingest" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
        body += f"\n\nReproduce: `{cmd}`"
    print(body)
    if not args.no_write:
        print(f"\nwrote {_report.write_section(SECTION, body)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
