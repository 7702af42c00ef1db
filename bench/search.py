"""Scoped top-5 search latency and recall on Milvus Lite and a Milvus server, per collection design.

The question: how fast is ``search(vector, Scope(source_ids), limit=5)`` when the attached
sources hold ~15% of the passages, at 10k, 100k (and optionally 1M) passages, and which
collection design keeps it within p50 <= 10 ms, p99 <= 30 ms and recall@5 >= 0.95 on both
backends?

**Data.** Vectors are derived from *real* all-MiniLM-L6-v2 embeddings: the passages of the two
bench manuals (``bench._manuals``: C++ Annotations and Writing R Extensions, ~3,800 passages)
are cut with the project's chunker and embedded once with the project's embedder (cached in
``bench/data/search-base-*.npz``). 500 of them are held out as queries; every stored row is
``normalise(a + lam * b + noise)`` for two random real passage vectors ``a`` and ``b``,
``lam ~ U(0, 0.5)`` and Gaussian noise (``sigma`` per dimension, default 0.03), and carries
the text of ``a`` (so rows have realistic sizes). Rows belong to 100 sources of log-normal
sizes and are inserted source after source, as loads would. Each query searches one of four
scopes, each a random set of whole sources holding ~15% of the rows.

**Measured**, per backend x size x variant, in a fresh process: insert rate through
``archive.insert`` (upserts of 512 rows, as the app does), time until flushed and indexed,
then after 20 warm-up queries the latency of ``archive.search(...)`` (query vector in, hits
with text out, i.e. what the library awaits) over ``--queries`` queries; and recall@5 against
a numpy brute force (exact cosine top-5 over the same in-scope vectors), whose own latency is
reported too.

**Variants** (collection designs):

* ``app``: ``agent.documents.archive.MilvusArchive`` exactly as it is (at the time of writing: one
  partition per source on Lite, one partition and a filter on a server; Bounded reads).
* ``plain``: one partition, filter ``source_id in [...]`` (the original design).
* ``index``: as plain, plus a scalar index on ``source_id`` (INVERTED on Lite, STL_SORT on the
  2.3 server).
* ``partition_key``: ``source_id`` is the partition key (``is_partition_key=True``); same
  filter.
* ``partitions``: one partition per source (``s<source_id>``), search with
  ``partition_names`` of the attached sources and no filter.
* ``buckets``: 64 partitions by ``source_id % 64``; search the attached sources' buckets
  *and* filter ``source_id in [...]`` (a bounded number of partitions).

The server is a Milvus 2.3.5 standalone (``tests.milvus_server``) on 127.0.0.1 that this script
starts and stops, unless ``--server-uri`` names one.

Usage::

    python -m bench.search                                   # 10k,100k; Lite + server; all variants
    python -m bench.search --sizes 1M --backends server --variants plain,partitions
    python -m bench.search --sizes 10k --queries 100 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

import numpy as np
import numpy.typing as npt
from pymilvus import MilvusClient

from agent.documents.archive import MAX_WINDOW, MilvusArchive
from agent.documents.collection import (
    OUTPUT_FIELDS,
    collection_schema,
    excluded_filter,
    hit_of,
    index_params,
    passage_row,
    scope_filter,
)
from agent.values import Hit, Passage, Scope
from bench import _manuals, _report

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SECTION = "Search"
VARIANTS = ("app", "plain", "index", "partition_key", "partitions", "buckets")
BACKENDS = ("lite", "server")
SOURCES = 100
SCOPES = 4
SCOPE_SHARE = 0.15
HELD_OUT = 500
WARMUP = 20
BUCKETS = 64
TOP_K = 5
INSERT_CHUNK = 5000
DIM = 384

TARGET_P50_MS = 10.0
TARGET_P99_MS = 30.0
TARGET_RECALL = 0.95

# Measured earlier on this machine, HNSW and a plain `source_id in [...]` filter, 100k rows.
REFERENCE = {
    "server": {"p50": 2.2, "p99": 6.5, "insert_s": 9.6},
    "lite": {"p50": 36.0, "p99": 60.0, "insert_s": 23.0},
}

Vectors = npt.NDArray[np.float32]


# --------------------------------------------------------------------------- base data


def base_path() -> Path:
    """Cache file of the real embeddings, named after the manuals' PDFs."""
    digest = hashlib.sha256()
    for key in sorted(_manuals.MANUALS):
        digest.update(_manuals.sha256(_manuals.fetch_manual(key)).encode())
    return _manuals.DATA_DIR / f"search-base-{digest.hexdigest()[:12]}.npz"


async def _embed_manual_passages() -> tuple[Vectors, list[str]]:
    """Chunk both manuals like the loader does and embed every passage (a minute or two)."""
    from agent.documents.chunk import Chunker
    from agent.documents.page_text import strip_repeated_lines
    from agent.documents.pdf import PdfLimits, extract_pages, inspect_pdf
    from bot.app import make_embedder
    from bot.config import load_settings

    settings = load_settings(None)
    settings = settings.model_copy(
        update={
            "embeddings": settings.embeddings.model_copy(
                update={"cache_dir": _manuals.DATA_DIR / "models"}
            )
        }
    )
    embedder = await make_embedder(settings)
    limits = PdfLimits(max_bytes=100 << 20, max_pages=5000, max_stream_bytes=64 << 20)
    texts: list[str] = []
    try:
        for key in sorted(_manuals.MANUALS):
            pdf = _manuals.fetch_manual(key)
            info = inspect_pdf(pdf, pdf.name, limits)
            chunker = Chunker(
                embedder.token_spans,
                max_tokens=embedder.max_text_tokens,
                overlap_tokens=settings.ingest.overlap_tokens,
            )
            pages = extract_pages(pdf, pdf.name, 1, info.pages, limits)
            for page in strip_repeated_lines(pages):
                texts += [c.text for c in chunker.feed(page.number, page.text)]
            texts += [c.text for c in chunker.finish()]
        print(f"embedding {len(texts)} real passages once ...", file=sys.stderr, flush=True)
        vectors = await embedder.embed(texts)
    finally:
        await embedder.aclose()
    return vectors, texts


def load_base() -> tuple[Vectors, list[str]]:
    """The real passage embeddings and texts, computed once and cached in ``bench/data``."""
    path = base_path()
    if not path.is_file():
        vectors, texts = asyncio.run(_embed_manual_passages())
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, vectors=vectors, texts=np.array(texts, dtype=object))
        tmp.replace(path)
    with np.load(path, allow_pickle=True) as data:
        return data["vectors"].astype(np.float32), [str(t) for t in data["texts"]]


@dataclass
class Dataset:
    """Synthetic rows around real embeddings, their sources, scopes and queries."""

    vectors: Vectors  # (n, dim), unit norm
    source_ids: npt.NDArray[np.int64]  # (n,)
    text_index: npt.NDArray[np.int64]  # (n,) index into texts
    texts: list[str]
    scopes: list[tuple[int, ...]]
    queries: Vectors  # (q, dim), unit norm


def _normalise(x: npt.NDArray[np.floating[Any]]) -> Vectors:
    """Rows scaled to unit length, as float32."""
    out: Vectors = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def make_dataset(n: int, queries: int, sigma: float, seed: int = 7) -> Dataset:
    """Deterministic synthetic data of ``n`` rows (see the module docstring)."""
    base, texts = load_base()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(base))
    held, pool = order[:HELD_OUT], order[HELD_OUT:]
    sizes = rng.lognormal(0.0, 1.0, SOURCES)
    counts = np.maximum(1, np.floor(sizes / sizes.sum() * n)).astype(np.int64)
    counts[np.argmax(counts)] += n - counts.sum()
    source_ids = np.repeat(np.arange(1, SOURCES + 1, dtype=np.int64), counts)
    a = pool[rng.integers(0, len(pool), n)]
    b = pool[rng.integers(0, len(pool), n)]
    vectors = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        lam = rng.uniform(0.0, 0.5, stop - start).astype(np.float32)[:, None]
        noise = rng.normal(0.0, sigma, (stop - start, base.shape[1])).astype(np.float32)
        vectors[start:stop] = _normalise(base[a[start:stop]] + lam * base[b[start:stop]] + noise)
    scopes: list[tuple[int, ...]] = []
    for _ in range(SCOPES):
        chosen: list[int] = []
        total = 0
        for sid in rng.permutation(SOURCES) + 1:
            if total >= SCOPE_SHARE * n:
                break
            size = int(counts[sid - 1])
            # Skip a source that would overshoot by more than it brings us closer.
            if total + size > SCOPE_SHARE * n * 1.1 and total > 0:
                continue
            chosen.append(int(sid))
            total += size
        scopes.append(tuple(sorted(chosen)))
    q = base[held]
    if queries > len(q):
        extra = q[rng.integers(0, len(q), queries - len(q))]
        extra = extra + rng.normal(0.0, sigma, extra.shape).astype(np.float32)
        q = np.concatenate([q, extra])
    return Dataset(vectors, source_ids, a, texts, scopes, _normalise(q[:queries]))


def passages_of(data: Dataset, start: int, stop: int) -> list[Passage]:
    """Passage records for rows ``start:stop`` (ids are row numbers)."""
    rows = []
    for i in range(start, stop):
        sid = int(data.source_ids[i])
        rows.append(
            Passage(
                id=i,
                source_id=sid,
                file_id=sid * 100 + (i % 3),
                document=f"source-{sid}.pdf",
                page=1 + i % 400,
                last_page=1 + i % 400,
                chunk=i,
                text=data.texts[int(data.text_index[i])],
            )
        )
    return rows


# ------------------------------------------------------------------------- the variants


class VariantArchive(MilvusArchive):
    """``MilvusArchive`` with another collection design, prototyped here for the bench.

    The app's fields and vector index (``collection_schema``, ``index_params``) and search
    parameters; what changes is how rows are placed into partitions and how a scope becomes
    ``partition_names`` and/or a filter. Everything that decides the design is overridden
    here, so the variants stay what they say whatever ``agent/documents/archive.py`` does
    (that is measured as the ``app`` variant, with the class as is).
    """

    variant = "plain"
    server = False

    def __init__(self, client: MilvusClient, collection: str, dim: int, uri: str) -> None:
        super().__init__(client, collection, dim, uri)
        # MilvusArchive may route rows to partitions itself (it does on Lite); not here.
        self._per_source = False
        self.known_partitions: set[str] = set()

    def _ensure_collection(self) -> None:
        if self._client.has_collection(self._collection):
            self._client.load_collection(self._collection)
            return
        # The app's fields and vector index; a variant adds only what makes it one.
        schema = collection_schema(self._client, self._dim)
        index = index_params(self._client)
        if self.variant == "partition_key":
            source_id = next(f for f in schema.fields if f.name == "source_id")
            source_id.is_partition_key = True
            schema.verify()  # records the partition key
        if self.variant == "index":
            index.add_index(
                field_name="source_id", index_type="STL_SORT" if self.server else "INVERTED"
            )
        self._client.create_collection(
            self._collection, schema=schema, index_params=index, consistency_level="Bounded"
        )
        if self.variant == "buckets":
            for bucket in range(BUCKETS):
                self._client.create_partition(self._collection, f"b{bucket}")

    def partition_of(self, source_id: int) -> str:
        """The partition a source's rows go to in the partitioned designs."""
        if self.variant == "partitions":
            return f"s{int(source_id)}"
        return f"b{int(source_id) % BUCKETS}"

    async def insert(self, passages: Sequence[Passage], vectors: npt.NDArray[np.float32]) -> None:
        """Upsert in 512-row batches, grouped by partition for the partitioned designs."""
        if self.variant not in ("partitions", "buckets"):
            await super().insert(passages, vectors)
            return
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(passages):
            groups.setdefault(self.partition_of(p.source_id), []).append(i)
        for name, members in groups.items():
            if self.variant == "partitions" and name not in self.known_partitions:
                if not self._client.has_partition(self._collection, name):
                    await self._call(self._client.create_partition, self._collection, name)
                self.known_partitions.add(name)
            for start in range(0, len(members), 512):
                rows = [passage_row(passages[i], vectors[i]) for i in members[start : start + 512]]
                await self._call(self._client.upsert, self._collection, rows, partition_name=name)

    consistency = "Bounded"
    ef = 64  # HNSW search breadth floor, as in agent/documents/archive.py

    async def search(
        self, vector: npt.NDArray[np.float32], scope: Scope, *, limit: int, offset: int = 0
    ) -> list[Hit]:
        """Scoped search: partitions and/or filter according to the variant.

        The same call as ``MilvusArchive.search`` with this variant's partitions, filter and
        an explicit consistency level.
        """
        if not scope.source_ids or limit <= 0 or offset >= MAX_WINDOW:
            return []
        names: list[str] | None = None
        where = scope_filter(scope)
        if self.variant in ("partitions", "buckets"):
            names = sorted({self.partition_of(s) for s in scope.source_ids})
        if self.variant == "partitions":
            where = excluded_filter(scope)  # the partitions are the scope
        results = await self._call(
            self._client.search,
            self._collection,
            data=[vector.astype(np.float32).tolist()],
            filter=where,
            limit=limit,
            offset=offset,
            partition_names=names,
            output_fields=list(OUTPUT_FIELDS),
            search_params={
                "metric_type": "COSINE",
                "params": {"ef": max(self.ef, limit + offset)},
            },
            consistency_level=self.consistency,
        )
        return [hit_of(item) for item in results[0]]


# --------------------------------------------------------------------------- the child


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_quiet(pid: int, limit: float = 600.0, threshold: float = 0.15) -> float:
    """Wait until process ``pid`` uses under ``threshold`` of a core for 2 s; returns seconds.

    After a flush, Milvus Lite compacts and re-indexes in a background thread and the server
    builds indexes in its own process: queries are timed once that work is done.
    """
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < limit:
        before = _cpu_seconds(pid)
        time.sleep(1.0)
        quiet = quiet + 1 if _cpu_seconds(pid) - before < threshold else 0
        if quiet >= 2:
            break
    return time.monotonic() - start


def consistency_levels(spec: str, backend: str, variant: str) -> list[str]:
    """Consistency levels to time for one variant.

    ``app`` is ``MilvusArchive.search`` exactly as it is (its own level) and the only level of
    the ``app`` variant. ``auto`` otherwise: Bounded (what the app uses) on Lite, where the
    level changes nothing; on a server also Session for every variant, and Strong for
    ``plain`` (Strong waits for the server's time tick: ~0.2-0.4 s a search).
    """
    if variant == "app":
        return ["app"]
    if spec != "auto":
        return [level.strip() for level in spec.split(",") if level.strip() != "app"]
    if backend == "lite":
        return ["Bounded"]
    return ["Bounded", "Session", "Strong"] if variant == "plain" else ["Bounded", "Session"]


def wait_indexed(archive: MilvusArchive, collection: str, limit: float = 900.0) -> float:
    """Wait until the vector index reports ``Finished`` with nothing pending; returns seconds."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        info = archive._client.describe_index(collection, "vector") or {}
        if info.get("state") == "Finished" and not info.get("pending_index_rows"):
            break
        time.sleep(1.0)
    return time.monotonic() - start


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def child_run(
    backend: str, variant: str, n: int, args: argparse.Namespace, uri: str, server_pid: int
) -> dict[str, Any]:
    """Build one collection, time inserts and searches, compare with brute force."""
    levels = consistency_levels(args.consistency, backend, variant)
    data = make_dataset(n, max(args.queries, args.strong_queries) + WARMUP, args.sigma)
    VariantArchive.variant = variant
    VariantArchive.server = backend == "server"
    VariantArchive.ef = args.ef
    # Brute force first, before Milvus Lite's or FAISS's threads exist in this process.
    in_scope = [np.flatnonzero(np.isin(data.source_ids, s)) for s in data.scopes]
    matrices = [np.ascontiguousarray(data.vectors[rows]) for rows in in_scope]
    bf_ms: list[float] = []
    exact: list[set[int]] = []
    for j, q in enumerate(data.queries):
        s = j % SCOPES
        began = time.perf_counter()
        scores = matrices[s] @ q
        top = np.argpartition(-scores, TOP_K)[:TOP_K]
        ids = in_scope[s][top[np.argsort(-scores[top])]]
        if j >= WARMUP:
            bf_ms.append((time.perf_counter() - began) * 1000)
            exact.append(set(ids.tolist()))
    tmp: Path | None = None
    if backend == "lite":
        tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
        uri = str(tmp / "milvus.db")
        work_pid = os.getpid()
    else:
        work_pid = server_pid

    def ours() -> float:
        """CPU seconds of this process and (on a server) the Milvus server process."""
        return _cpu_seconds(os.getpid()) + (_cpu_seconds(server_pid) if server_pid else 0.0)

    collection = f"bench_{variant}_{n}_{os.getpid()}"
    kind = MilvusArchive if variant == "app" else VariantArchive
    archive = await kind.connect(uri, collection=collection, dim=DIM, timeout=60.0)
    try:
        began = time.perf_counter()
        for start in range(0, n, INSERT_CHUNK):
            stop = min(n, start + INSERT_CHUNK)
            await archive.insert(passages_of(data, start, stop), data.vectors[start:stop])
        insert_s = time.perf_counter() - began
        began = time.perf_counter()
        await asyncio.to_thread(archive._client.flush, collection)
        flush_s = time.perf_counter() - began
        settle_s = await asyncio.to_thread(wait_indexed, archive, collection)
        settle_s += await asyncio.to_thread(wait_quiet, work_pid)
        index = await asyncio.to_thread(archive._client.describe_index, collection, "vector")

        timings: dict[str, dict[str, float]] = {}
        for level in levels:
            VariantArchive.consistency = level
            count = WARMUP + (
                args.strong_queries if level == "Strong" and backend == "server" else args.queries
            )
            latencies: list[float] = []
            recall: list[float] = []
            busy0, own0, started = busy_cpu_seconds(), ours(), time.perf_counter()
            for j, q in enumerate(data.queries[:count]):
                scope = Scope(data.scopes[j % SCOPES])
                began = time.perf_counter()
                hits = await archive.search(q, scope, limit=TOP_K)
                elapsed = time.perf_counter() - began
                if j >= WARMUP:
                    latencies.append(elapsed * 1000)
                    recall.append(len(exact[j - WARMUP] & {h.id for h in hits}) / TOP_K)
                    wrong = [h.source_id for h in hits if h.source_id not in scope.source_ids]
                    if wrong:
                        raise AssertionError(f"{variant}: hit outside the scope ({wrong})")
            other = (busy_cpu_seconds() - busy0) - (ours() - own0)
            timings[level] = {
                "other_cores": max(0.0, other) / (time.perf_counter() - started),
                "queries": len(latencies),
                "p50": _percentile(latencies, 50),
                "p99": _percentile(latencies, 99),
                "mean": float(np.mean(latencies)),
                "recall": float(np.mean(recall)),
                "loadavg": os.getloadavg()[0],
            }
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(archive._client.drop_collection, collection)
        await archive.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "backend": backend,
        "variant": variant,
        "rows": n,
        "ef": args.ef if variant != "app" else 64,
        "in_scope": float(np.mean([len(r) for r in in_scope])),
        "scope_sources": float(np.mean([len(s) for s in data.scopes])),
        "insert_s": insert_s,
        "flush_s": flush_s,
        "settle_s": settle_s,
        "indexed_rows": int(index.get("indexed_rows", -1)) if index else -1,
        "levels": timings,
        "bf_p50": _percentile(bf_ms, 50),
        "bf_p99": _percentile(bf_ms, 99),
    }


# --------------------------------------------------------------------------- the parent


def parse_size(text: str) -> int:
    """``10k`` -> 10000, ``1M`` -> 1000000."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def size_label(n: int) -> str:
    """10000 -> ``10k``."""
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def other_milvus_running() -> list[str]:
    """Command lines of Milvus server processes on this machine (not ours)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "milvus run standalone" in cmd:
                found.append(f"{proc.name}: {cmd.strip()}")
    return found


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Any:
    """Yield ``(uri, pid)`` of the Milvus server: the given one, or one started here."""
    if args.server_uri:
        yield args.server_uri, 0
        return
    from tests.milvus_server import MilvusServerProcess, free_port

    deadline = time.monotonic() + args.wait_server
    while other := other_milvus_running():
        if time.monotonic() > deadline:
            raise SystemExit(f"another Milvus server is running: {other}")
        print(f"waiting for another Milvus server to end: {other[0]}", file=sys.stderr)
        time.sleep(15)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-search-server-"))
    srv = MilvusServerProcess(data_dir, free_port())
    try:
        srv.start()
        assert srv.proc is not None
        print(f"Milvus server at {srv.uri} in {srv.startup_seconds:.1f} s", file=sys.stderr)
        yield srv.uri, srv.proc.pid
    finally:
        srv.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def spawn(backend: str, variant: str, n: int, args: argparse.Namespace, uri: str, pid: int) -> Any:
    """Run one configuration in a fresh interpreter; its JSON result (or None on failure)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        f"{backend}:{variant}:{n}",
        "--queries",
        str(args.queries),
        "--sigma",
        str(args.sigma),
        "--ef",
        str(args.ef),
        "--strong-queries",
        str(args.strong_queries),
        "--consistency",
        args.consistency,
        "--server-uri",
        uri,
        "--server-pid",
        str(pid),
    ]
    print(f"[{backend} {variant} {size_label(n)}] ...", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return {"backend": backend, "variant": variant, "rows": n, "error": done.stderr[-300:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for level, t in result["levels"].items():
        print(
            f"  {level}: p50 {t['p50']:.1f} ms, p99 {t['p99']:.1f} ms, recall {t['recall']:.3f};"
            f" insert {result['insert_s']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return result


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def results_table(results: Sequence[dict[str, Any]]) -> str:
    """Latency, recall and insert rate per backend x size x variant x consistency level."""
    head = [
        "backend",
        "rows",
        "variant",
        "consistency",
        "in scope",
        "p50 ms",
        "p99 ms",
        "recall@5",
        "meets targets",
        "insert rows/s",
        "flush + index s",
        "other procs' cores",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for r in results:
        if "error" in r:
            reason = r["error"].strip().splitlines()[-1][:160].replace("|", "/")
            lines.append(
                f"| {r['backend']} | {size_label(r['rows'])} | {r['variant']} | - |"
                f" failed: {reason} |" + " |" * 7
            )
            continue
        for level, t in r["levels"].items():
            meets = t["p50"] <= TARGET_P50_MS and t["p99"] <= TARGET_P99_MS
            meets = meets and t["recall"] >= TARGET_RECALL
            lines.append(
                "| "
                + " | ".join(
                    [
                        r["backend"],
                        size_label(r["rows"]),
                        r["variant"] + (f" ef={r['ef']}" if r.get("ef", 64) != 64 else ""),
                        f"{level} ({t['queries']} q)",
                        f"{r['in_scope']:.0f} ({r['scope_sources']:.0f} src)",
                        f"{t['p50']:.1f}",
                        f"{t['p99']:.1f}",
                        f"{t['recall']:.3f}",
                        _ok(meets),
                        f"{r['rows'] / r['insert_s']:.0f}",
                        f"{r['flush_s'] + r['settle_s']:.0f}",
                        f"{t.get('other_cores', float('nan')):.2f}",
                    ]
                )
                + " |"
            )
    return "\n".join(lines)


def brute_table(results: Sequence[dict[str, Any]]) -> str:
    """numpy brute force over the in-scope vectors, per size (same data for every variant)."""
    seen: dict[int, dict[str, Any]] = {}
    for r in results:
        if "error" not in r:
            seen.setdefault(r["rows"], r)
    lines = ["| rows | in scope | brute force p50 ms | p99 ms |", "|---:|---:|---:|---:|"]
    for n, r in sorted(seen.items()):
        lines.append(
            f"| {size_label(n)} | {r['in_scope']:.0f} | {r['bf_p50']:.2f} | {r['bf_p99']:.2f} |"
        )
    return "\n".join(lines)


def reference_table() -> str:
    """The numbers measured earlier, for comparison."""
    return "\n".join(
        [
            "| reference (earlier, 100k, plain filter) | p50 ms | p99 ms | insert 100k s |",
            "|---|---:|---:|---:|",
            *(f"| {b} | {v['p50']} | {v['p99']} | {v['insert_s']} |" for b, v in REFERENCE.items()),
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` and ``--server-pid`` are internal)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10k,100k", help="comma-separated row counts (10k,100k,1M)")
    p.add_argument("--backends", default=",".join(BACKENDS), help="lite,server")
    p.add_argument("--variants", default=",".join(VARIANTS), help=",".join(VARIANTS))
    p.add_argument("--queries", type=int, default=240, help="timed queries per configuration")
    p.add_argument(
        "--strong-queries",
        type=int,
        default=60,
        help="timed queries with Strong consistency on a server (each waits ~0.2-0.4 s)",
    )
    p.add_argument(
        "--consistency",
        default="auto",
        help="comma-separated levels (Strong,Session,Bounded) or auto (see consistency_levels)",
    )
    p.add_argument("--ef", type=int, default=64, help="HNSW ef of the bench's variants")
    p.add_argument("--sigma", type=float, default=0.03, help="per-dimension noise of rows")
    p.add_argument(
        "--server-uri", default="", help="use this Milvus server instead of starting one"
    )
    p.add_argument(
        "--wait-server", type=float, default=900, help="seconds to wait for another server to end"
    )
    p.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    p.add_argument("--json", type=Path, help="write the raw results here (appends to a list)")
    p.add_argument("--from-json", type=Path, help="only render the report from saved results")
    p.add_argument("--notes", type=Path, help="Markdown file appended to the section")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def render(results: Sequence[dict[str, Any]], args: argparse.Namespace) -> str:
    """The ``## Search`` section body."""
    first = next((r for r in results if "error" not in r), {})
    parts = [
        _report.machine_line(),
        " ".join(
            [
                f"Scoped top-{TOP_K} search through `MilvusArchive.search` (or the bench's",
                "`VariantArchive` prototype), HNSW M=16 efConstruction=200, ef=64, COSINE;",
                f"{SOURCES} sources, {SCOPES} scopes of ~{SCOPE_SHARE:.0%} of the rows",
                f"(~{first.get('scope_sources', 0):.0f} sources each), {args.queries} timed",
                f"queries ({args.strong_queries} with Strong consistency on the server) after",
                f"{WARMUP} warm-up ones. Consistency `app`: `MilvusArchive.search` exactly as",
                "`agent/documents/archive.py` has it (Bounded: loads wait for visibility);",
                "`Session`: read-your-writes for the same client; `Strong`: waits for the",
                "server's time tick. Rows: real all-MiniLM-L6-v2 passage embeddings of the",
                "bench manuals, mixed and perturbed",
                f"(`normalise(a + U(0,0.5) b + N(0, {args.sigma}))`), with real passage text;",
                "queries: held-out real passage embeddings. Recall@5 is against an exact numpy",
                "top-5 over the same in-scope vectors. Rows are flushed and the backend's",
                "background compaction/indexing waited for before queries. Other procs' cores:",
                "CPU the rest of the machine used while the queries ran (`/proc/stat` busy",
                "time minus this process and the Milvus server), in cores of 2.",
            ]
        ),
        results_table(results),
        f"Targets (both backends, 100k): p50 <= {TARGET_P50_MS:.0f} ms, p99 <="
        f" {TARGET_P99_MS:.0f} ms, recall@5 >= {TARGET_RECALL}. Insert rows/s: `archive.insert`"
        " in 5,000-row calls (upserts of 512). Flush + index: `flush` then waiting until the"
        " backend's CPU is idle (Lite compacts and re-indexes in the background).",
        brute_table(results),
        reference_table(),
    ]
    if args.notes and args.notes.is_file():
        parts.append(args.notes.read_text(encoding="utf-8").strip())
    if args.from_json:
        parts.append(
            "Reproduce: `python -m bench.search` (10k and 100k, every variant, both backends);"
            " `--sizes 100k --backends server --variants plain,index --ef 128` (and 256);"
            " `--sizes 1M --backends server --variants app`; each with `--json FILE`, then"
            " `--from-json FILE` renders them together."
        )
    else:
        cmd = "python -m bench.search" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
        parts.append(f"Reproduce: `{cmd}`")
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the configurations, print the tables and write the ``## Search`` section."""
    args = parse_args(argv)
    if args.child:
        backend, variant, n = args.child.split(":")
        result = asyncio.run(
            child_run(backend, variant, int(n), args, args.server_uri, args.server_pid)
        )
        print(json.dumps(result))
        return 0
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        load_base()  # embed the real passages once, before any timing
        sizes = [parse_size(s) for s in args.sizes.split(",")]
        variants = [v.strip() for v in args.variants.split(",")]
        unknown = set(variants) - set(VARIANTS)
        if unknown:
            raise SystemExit(f"unknown variants {sorted(unknown)}; known: {VARIANTS}")
        results = []
        for backend in args.backends.split(","):
            if backend == "server":
                with server(args) as (uri, pid):
                    results += [
                        spawn(backend, v, n, args, uri, pid) for n in sizes for v in variants
                    ]
            else:
                results += [spawn(backend, v, n, args, "", 0) for n in sizes for v in variants]
        if args.json:
            old = json.loads(args.json.read_text()) if args.json.is_file() else []
            args.json.write_text(json.dumps(old + results, indent=1), encoding="utf-8")
    body = render(results, args)
    print(body)
    if not args.no_write:
        print(f"\nwrote {_report.write_section(SECTION, body)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
