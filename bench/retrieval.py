"""Retrieval quality over real manuals: recall@k, page accuracy and MRR per manual, kind and mode.

Every question set in ``bench/questions/`` names a manual of ``bench._manuals`` (fetched from
its Debian package into ``bench/data``). By default the bench runs the *development set* of
issue 12: the sets marked ``"split": "dev"``, six manuals of different kinds (API reference,
user guide, tutorial, specification, man-page collection, long book). ``--manual NAME`` runs
one set instead (repeat it for several), e.g. ``--manual cpp-annotations``, the old tuning set.

Each manual is loaded through the project's own code path (settings -> ``open_library`` ->
``Library.load``) into a fresh data directory of its own, then every question is asked in
every mode with ``Library.search_sources`` for the top ``2k`` passages (k = ``--top-k``,
default 5). A question counts as

* **recalled@k** when its answer string occurs (case-insensitive, whitespace collapsed, curly
  quotes folded) in the text of one of the top-k passages (recall@2k likewise);
* **page-accurate@k** when one of the top-k passages' page ranges ``[page, last_page]``
  intersects the question's pages;
* and contributes ``1/rank`` of the first passage holding the answer (within the top 2k) to
  the **MRR**.

*hit page*: of the questions recalled@k, the share whose first passage holding the answer
covers one of the question's pages (the page a citation of that passage names is right).
*union@k* is the bound a fusion of the dense and keyword rankings could reach: the share of
questions whose answer is in the dense top k or the keyword top k.

Figures are given per manual, per question kind (pooled over manuals), as the **mean over
manuals** (each manual weighs the same, whatever its number of questions) and for the **worst
manual** (lowest recall@k in that mode): choose defaults by the mean and watch the worst.

``--fusions`` compares ways of fusing the two rankings without reloading anything: each
question's dense and keyword rankings are searched once per depth (20, 50, 100), then every
candidate of :func:`fusion_variants` (reciprocal rank with several k and weights, min-max and
z-score weighted sums of the scores) and the library's own ``fuse`` rank them in-process. Its
report is a section of its own ("Retrieval quality: fusion, ..."): the fusions by mean
recall@k over manuals, with the worst manual, MRR and page accuracy, and the library's fusion
before (k = 60) and after, per manual.

``--rerank`` reorders the library's fused candidates with a reranker
(:class:`WindowReranker`: the embedding model over windows of a few sentences of each
candidate, for want of a cross-encoder shipped in a package; ``--cross-encoder DIR`` tries an
ONNX one instead) at several depths, alone or blended with the fusion's score, and times it.
Its report is the section "Retrieval quality: reranking, ...".

Before anything is loaded every question set is checked against its PDF: every answer must
occur on every page it lists (as ``agent.documents.pdf.extract_pages`` extracts and cleans it,
as the library does); otherwise the script refuses to run.
``--check-only`` stops there, also noting answers that occur on pages the question does not list.

Usage::

    python -m bench.retrieval                                 # the development set, temporary dirs
    python -m bench.retrieval --reuse bench/data/retrieval    # load once per manual, reuse later
    python -m bench.retrieval --manual glpk --manual gmpl     # some manuals only
    python -m bench.retrieval --manual cpp-annotations        # the old tuning set
    python -m bench.retrieval --limit-pages 120               # quick run on the first 120 pages
    python -m bench.retrieval --check-only                    # just validate the question sets
    python -m bench.retrieval --reuse bench/data/retrieval --fusions  # compare fusions
    python -m bench.retrieval --reuse bench/data/retrieval --rerank   # compare reranking
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from pypdf import PdfReader, PdfWriter

from agent import values
from agent.documents.pdf import PdfLimits, extract_pages, inspect_pdf
from bench import _manuals, _report

BENCH_DIR = Path(__file__).resolve().parent
QUESTIONS_DIR = BENCH_DIR / "questions"
DEV_SPLIT = "dev"
SCOPE = "global"
SOURCE = "manual"
META_FILE = "bench-retrieval.json"
KNOWN_MODES = ("dense", "hybrid", "keyword")
UNION_OF = ("dense", "keyword")
UNION_LABEL = " or ".join(UNION_OF)
SECTION_PREFIX = "Retrieval quality"
DEV_SECTION = f"{SECTION_PREFIX}: development set"

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


# ------------------------------------------------------------------------ question set


@dataclass(frozen=True)
class Question:
    """One question, the exact string that answers it, and the pages holding that string."""

    id: str
    kind: str
    question: str
    answer: str
    pages: tuple[int, ...]


@dataclass(frozen=True)
class QuestionSet:
    """A question set file: which manual it is about, which split, and its questions."""

    path: Path
    manual: str
    title: str
    split: str
    package_version: str | None
    pdf_sha256: str | None
    questions: tuple[Question, ...]


def normalise(text: str) -> str:
    """Casefold, fold curly quotes to straight ones and collapse all whitespace to one space."""
    return " ".join(text.translate(_QUOTES).split()).casefold()


def load_question_set(path: Path) -> QuestionSet:
    """Read a question set: a JSON object with ``manual`` and ``questions`` (or a bare list)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    doc: dict[str, Any] = {"questions": raw} if isinstance(raw, list) else raw
    questions: list[Question] = []
    for index, item in enumerate(doc["questions"], 1):
        pages = tuple(int(p) for p in item["pages"])
        if not pages or not str(item["answer"]).strip():
            raise ValueError(f"{path}: question {index} needs an answer and at least one page")
        questions.append(
            Question(
                id=str(item.get("id", f"q{index:02d}")),
                kind=str(item.get("kind", "-")),
                question=str(item["question"]),
                answer=str(item["answer"]),
                pages=pages,
            )
        )
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: question ids are not unique")
    return QuestionSet(
        path=path,
        manual=str(doc.get("manual", "cpp-annotations")),
        title=str(doc.get("title", doc.get("manual", path.stem))),
        split=str(doc.get("split", "tuning")),
        package_version=doc.get("package_version"),
        pdf_sha256=doc.get("pdf_sha256"),
        questions=tuple(questions),
    )


def is_question_set(path: Path) -> bool:
    """Whether ``path`` is a retrieval question set (other benches keep files there too)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and "manual" in raw and isinstance(raw.get("questions"), list)


def find_question_sets(manuals: Sequence[str], directory: Path = QUESTIONS_DIR) -> list[Path]:
    """The question sets of ``manuals`` (by key), or every dev-split set when none is named."""
    if manuals:
        missing = [m for m in manuals if not (directory / f"{m}.json").is_file()]
        if missing:
            raise ValueError(f"no question set {', '.join(missing)} in {directory}")
        return [directory / f"{m}.json" for m in manuals]
    found = [
        path
        for path in sorted(directory.glob("*.json"))
        if is_question_set(path) and load_question_set(path).split == DEV_SPLIT
    ]
    if not found:
        raise ValueError(f"no question set with split {DEV_SPLIT!r} in {directory}")
    return found


# The loader's defaults (bot.config's [ingest]), with room for any manual's size and pages.
_CHECK_LIMITS = PdfLimits(max_bytes=1 << 30, max_pages=100_000, max_stream_bytes=64 << 20)


class PageTexts:
    """A PDF's pages as the library indexes them (``extract_pages``), read on first use."""

    def __init__(self, pdf: Path) -> None:
        self._pdf = pdf
        self._texts: list[str] = []
        self.total = inspect_pdf(pdf, pdf.name, _CHECK_LIMITS).pages

    def __getitem__(self, page: int) -> str:
        """Normalised text of 1-based ``page``."""
        if not self._texts:
            pages = extract_pages(self._pdf, self._pdf.name, 1, self.total, _CHECK_LIMITS)
            self._texts = [normalise(p.text) for p in pages]
        return self._texts[page - 1]


def check_question_set(qset: QuestionSet, pdf: Path) -> list[str]:
    """Problems with ``qset`` against ``pdf``: answers missing from a listed page, bad pages.

    Page text is what ``agent.documents.pdf.extract_pages`` returns, i.e. what the library
    indexes (PDFium's text, ligatures expanded, words hyphenated across lines joined).
    """
    pages = PageTexts(pdf)
    problems: list[str] = []
    for q in qset.questions:
        answer = normalise(q.answer)
        for page in q.pages:
            if not 1 <= page <= pages.total:
                problems.append(f"{q.id}: page {page} is outside the PDF's {pages.total} pages")
            elif answer not in pages[page]:
                problems.append(f"{q.id}: answer {q.answer!r} not found on page {page}")
    return problems


def answers_elsewhere(qset: QuestionSet, pdf: Path) -> list[str]:
    """Notes on answers that also occur on pages their question does not list.

    Not an error (a phrase may recur), but such a question is recalled by a passage from
    the wrong place, and its page accuracy is then measured against the listed pages only.
    """
    pages = PageTexts(pdf)
    texts = [pages[n] for n in range(1, pages.total + 1)]
    notes: list[str] = []
    for q in qset.questions:
        answer = normalise(q.answer)
        extra = [n for n, text in enumerate(texts, 1) if answer in text and n not in q.pages]
        if extra:
            shown = ", ".join(map(str, extra[:8])) + (" ..." if len(extra) > 8 else "")
            notes.append(f"{q.id}: answer {q.answer!r} also on page(s) {shown}")
    return notes


# ------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class Hit:
    """What the bench keeps of one search result."""

    page: int
    last_page: int
    score: float
    has_answer: bool


@dataclass(frozen=True)
class Outcome:
    """One question asked in one mode: its ranked hits (top 2k)."""

    question: Question
    mode: str
    hits: tuple[Hit, ...]
    seconds: float

    @property
    def answer_rank(self) -> int | None:
        """1-based rank of the first passage holding the answer, if any."""
        return next((i for i, h in enumerate(self.hits, 1) if h.has_answer), None)

    def covers(self, hit: Hit) -> bool:
        """Whether ``hit``'s pages intersect the question's pages."""
        return bool(set(self.question.pages).intersection(range(hit.page, hit.last_page + 1)))

    @property
    def page_rank(self) -> int | None:
        """1-based rank of the first passage whose pages intersect the question's pages."""
        return next((i for i, h in enumerate(self.hits, 1) if self.covers(h)), None)

    def recalled(self, k: int) -> bool:
        """The answer is in one of the top ``k`` passages."""
        rank = self.answer_rank
        return rank is not None and rank <= k

    def hit_page_right(self) -> bool:
        """The first passage holding the answer covers one of the question's pages."""
        rank = self.answer_rank
        return rank is not None and self.covers(self.hits[rank - 1])


class Found(Protocol):
    """A passage found, as the bench judges it: a library result or a hit of a ranking."""

    @property
    def page(self) -> int: ...
    @property
    def last_page(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def text(self) -> str: ...


def judged(q: Question, found: Sequence[Found]) -> tuple[Hit, ...]:
    """``found`` as the bench keeps it: pages, score and whether it holds ``q``'s answer."""
    answer = normalise(q.answer)
    return tuple(
        Hit(f.page, f.last_page, float(f.score), answer in normalise(f.text)) for f in found
    )


RankingsByDepth = dict[int, dict[str, tuple[list[values.Hit], list[values.Hit]]]]
"""depth -> question id -> its dense and keyword rankings, that deep."""


@dataclass(frozen=True)
class Summary:
    """Aggregate metrics of one mode over some outcomes (one manual, one kind, ...)."""

    mode: str
    n: int
    recall: float  # @k
    recall_2k: float
    page_accuracy: float  # @k
    hit_page: float | None  # share of the questions recalled@k whose answer passage's page is right
    mrr: float  # over the top 2k
    median_ms: float


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarise(mode: str, outcomes: Sequence[Outcome], k: int) -> Summary:
    """Recall@k and @2k, page accuracy@k, hit page, MRR and median latency of ``outcomes``."""
    recalled = [o for o in outcomes if o.recalled(k)]
    return Summary(
        mode=mode,
        n=len(outcomes),
        recall=_mean([o.recalled(k) for o in outcomes]),
        recall_2k=_mean([o.recalled(2 * k) for o in outcomes]),
        page_accuracy=_mean([any(o.covers(h) for h in o.hits[:k]) for o in outcomes]),
        hit_page=_mean([o.hit_page_right() for o in recalled]) if recalled else None,
        mrr=_mean([1 / o.answer_rank if o.answer_rank else 0.0 for o in outcomes]),
        median_ms=statistics.median(o.seconds for o in outcomes) * 1000 if outcomes else 0.0,
    )


def mean_summary(mode: str, summaries: Sequence[Summary]) -> Summary:
    """The unweighted mean of per-manual summaries: every manual counts the same."""
    hit_pages = [s.hit_page for s in summaries if s.hit_page is not None]
    return Summary(
        mode=mode,
        n=sum(s.n for s in summaries),
        recall=_mean([s.recall for s in summaries]),
        recall_2k=_mean([s.recall_2k for s in summaries]),
        page_accuracy=_mean([s.page_accuracy for s in summaries]),
        hit_page=_mean(hit_pages) if hit_pages else None,
        mrr=_mean([s.mrr for s in summaries]),
        median_ms=statistics.median(s.median_ms for s in summaries) if summaries else 0.0,
    )


def union_recall(
    by_mode: dict[str, dict[str, Outcome]], ids: Sequence[str], k: int
) -> float | None:
    """Share of questions ``ids`` whose answer is in the top k of one of :data:`UNION_OF`."""
    if not ids or any(m not in by_mode for m in UNION_OF):
        return None
    return _mean([any(by_mode[m][qid].recalled(k) for m in UNION_OF) for qid in ids])


# ------------------------------------------------------------------------------- fusion

Ranking = Sequence[values.Hit]
Fuser = Callable[[Ranking, Ranking], list[values.Hit]]
"""Fuses a dense and a keyword ranking (each best first) into one, best first."""

FUSION_DEPTHS = (20, 50, 100)
DENSE_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
RRF_KS = (1, 3, 5, 6, 8, 10, 20, 60)
BASELINE_FUSION = ("rrf k=60", 50)
"""The fusion of commit 29be429 (reciprocal rank, k = 60, 50 deep), the 'before'."""
SHIPPED_FUSION = "library"


@dataclass(frozen=True)
class Fusion:
    """A candidate fusion: its name, how deep it reads each ranking, and the function."""

    name: str
    depth: int
    fuse: Fuser


def _summed(parts: Sequence[tuple[Ranking, Sequence[float], float]]) -> list[values.Hit]:
    """Per passage, the sum of each ranking's score for it, or that ranking's ``missing``."""
    hits = {h.id: h for ranking, _, _ in parts for h in ranking}
    totals = dict.fromkeys(hits, 0.0)
    for ranking, scores, missing in parts:
        found = {h.id: s for h, s in zip(ranking, scores, strict=True)}
        for i in totals:
            totals[i] += found.get(i, missing)
    order = sorted(totals, key=lambda i: (-totals[i], i))
    return [replace(hits[i], score=totals[i]) for i in order]


def rrf(k: int, dense_weight: float = 0.5) -> Fuser:
    """Weighted reciprocal rank: ``w / (k + rank)`` from each ranking a passage is in."""

    def fuse(dense: Ranking, keyword: Ranking) -> list[values.Hit]:
        weighted = ((dense, dense_weight), (keyword, 1 - dense_weight))
        return _summed([(r, [w / (k + n) for n in range(1, len(r) + 1)], 0.0) for r, w in weighted])

    return fuse


def min_max(scores: Sequence[float]) -> list[float]:
    """Scores scaled to [0, 1] within their ranking (all 1 when they are equal)."""
    low, high = min(scores, default=0.0), max(scores, default=0.0)
    return [(s - low) / (high - low) if high > low else 1.0 for s in scores]


def z_score(scores: Sequence[float]) -> list[float]:
    """Scores as standard deviations from their ranking's mean (all 0 when they are equal)."""
    if not scores:
        return []
    mean, spread = statistics.fmean(scores), statistics.pstdev(scores)
    return [(s - mean) / spread if spread else 0.0 for s in scores]


def normalised_sum(
    normalise: Callable[[Sequence[float]], list[float]], dense_weight: float
) -> Fuser:
    """A weighted sum of the normalised cosine and BM25 scores; a passage missing from one
    ranking gets that ranking's lowest normalised score (as if ranked just below its last)."""

    def fuse(dense: Ranking, keyword: Ranking) -> list[values.Hit]:
        parts: list[tuple[Ranking, Sequence[float], float]] = []
        for ranking, weight in ((dense, dense_weight), (keyword, 1 - dense_weight)):
            normal = [weight * s for s in normalise([h.score for h in ranking])]
            parts.append((ranking, normal, min(normal, default=0.0)))
        return _summed(parts)

    return fuse


def fusion_variants() -> list[Fusion]:
    """Every candidate: reciprocal rank (k, weights) and min-max / z-score sums, per depth."""
    variants: list[Fusion] = []
    for depth in FUSION_DEPTHS:
        for k in RRF_KS:
            variants += [
                Fusion(f"rrf k={k}" + ("" if w == 0.5 else f" dense {w}"), depth, rrf(k, w))
                for w in DENSE_WEIGHTS
            ]
        for label, normalise in (("min-max", min_max), ("z-score", z_score)):
            variants += [
                Fusion(f"{label} dense {w}", depth, normalised_sum(normalise, w))
                for w in DENSE_WEIGHTS
            ]
    return variants


def shipped_fusion() -> Fusion:
    """The library's own fusion at its own depth (for the bench's ``2k`` results)."""
    from agent.documents import library

    return Fusion(SHIPPED_FUSION, library.HYBRID_DEPTH, lambda d, kw: library.fuse([d, kw]))


def fused_outcomes(
    fusion: Fusion, questions: Sequence[Question], rankings: RankingsByDepth, depth: int
) -> dict[str, Outcome]:
    """Each question's top ``depth`` of ``fusion`` over its stored rankings, judged."""
    outcomes: dict[str, Outcome] = {}
    for q in questions:
        dense, keyword = rankings[fusion.depth][q.id]
        start = time.perf_counter()
        fused = fusion.fuse(dense, keyword)[:depth]
        seconds = time.perf_counter() - start
        outcomes[q.id] = Outcome(q, fusion.name, judged(q, fused), seconds)
    return outcomes


# ------------------------------------------------------------------------- the library


class ModeUnsupported(Exception):
    """The library cannot search in the requested mode (yet)."""


def mode_parameter(library: Any) -> tuple[bool, tuple[str, ...] | None]:
    """Whether ``search_sources`` takes ``mode``, and its allowed values if annotated."""
    params = inspect.signature(library.search_sources).parameters
    if "mode" not in params:
        return False, None
    try:
        hint = typing.get_type_hints(type(library).search_sources).get("mode")
    except Exception:  # unresolvable annotations: just try the call
        return True, None
    args = typing.get_args(hint)
    values = tuple(a for a in args if isinstance(a, str))
    return True, values or None


async def search(library: Any, mode: str, question: str, top_k: int) -> Any:
    """Ask ``library`` in ``mode``; raises :class:`ModeUnsupported` if it cannot."""
    takes_mode, allowed = mode_parameter(library)
    if not takes_mode:
        if mode != "dense":
            raise ModeUnsupported(
                f"Library.search_sources has no `mode` parameter yet: only its default (dense)"
                f" search exists, so mode {mode!r} was skipped"
            )
        return await library.search_sources(SCOPE, [SOURCE], question, top_k=top_k)
    if allowed is not None and mode not in allowed:
        raise ModeUnsupported(
            f"Library.search_sources accepts mode in {allowed}, not {mode!r}: skipped"
        )
    return await library.search_sources(SCOPE, [SOURCE], question, top_k=top_k, mode=mode)


@dataclass
class LoadInfo:
    """What the bench records about the loaded manual (kept in the data dir for --reuse)."""

    pdf: str
    pdf_sha256: str
    limit_pages: int | None
    pages: int
    passages: int
    load_seconds: float
    stage_seconds: dict[str, float]
    embedding_model: str
    loaded_at: str


def bench_settings(data_dir: Path, config: Path | None) -> Any:
    """Project settings with storage in ``data_dir`` and a local Milvus Lite file there.

    The converted-model cache is kept in ``bench/data/models`` (unless the config sets one),
    so a fresh data dir does not convert the embedding model again.
    """
    from bot.config import load_settings

    settings = load_settings(config)
    embeddings = settings.embeddings
    if embeddings.cache_dir is None:
        embeddings = embeddings.model_copy(update={"cache_dir": _manuals.DATA_DIR / "models"})
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(update={"data_dir": data_dir}),
            "milvus": settings.milvus.model_copy(update={"uri": ""}),
            "embeddings": embeddings,
        }
    )


def truncated_pdf(pdf: Path, pages: int, into: Path) -> Path:
    """A copy of the first ``pages`` pages of ``pdf`` (page numbers stay the same)."""
    reader = PdfReader(str(pdf))
    writer = PdfWriter()
    for page in reader.pages[:pages]:
        writer.add_page(page)
    out = into / f"{pdf.stem}-first{pages}.pdf"
    with out.open("wb") as fh:
        writer.write(fh)
    return out


async def load_manual(library: Any, pdf: Path, display_name: str, quiet: bool) -> tuple[Any, float]:
    """Load ``pdf`` into the bench source, printing progress; returns (report, seconds)."""
    from agent.documents.loads import FileInput, Progress

    last = [0.0]

    def progress(p: Progress) -> None:
        now = time.monotonic()
        if quiet or (now - last[0] < 10 and p.pages_done < p.pages_total):
            return
        last[0] = now
        print(
            f"  loading: {p.pages_done}/{p.pages_total} pages, {p.passages_done} passages",
            file=sys.stderr,
            flush=True,
        )

    start = time.monotonic()
    report = await library.load(
        SCOPE,
        SOURCE,
        [FileInput(pdf, name=display_name)],
        created_by="bench",
        progress=progress,
    )
    seconds = time.monotonic() - start
    if report.failed:
        errors = "; ".join(f"{f.name}: {f.error}" for f in report.failed)
        raise RuntimeError(f"loading the manual failed: {errors}")
    return report, seconds


# ------------------------------------------------------------------------------ output


@dataclass
class ManualRun:
    """Everything measured on one manual."""

    qset: QuestionSet
    kind: str  # what sort of document (from ``bench._manuals``)
    info: LoadInfo
    questions: list[Question]  # those asked (all, unless --limit-pages left some out)
    outcomes: dict[str, dict[str, Outcome]]  # mode -> question id -> outcome
    skipped: dict[str, str]  # mode -> why it was not measured
    rankings: RankingsByDepth = field(default_factory=dict)  # for --fusions and --rerank
    rerank: RerankData | None = None  # for --rerank

    def summary(self, mode: str, k: int) -> Summary:
        """This manual's figures in ``mode``."""
        return summarise(mode, list(self.outcomes[mode].values()), k)

    def union(self, k: int) -> float | None:
        """Share of this manual's questions in the dense or the keyword top k."""
        return union_recall(self.outcomes, [q.id for q in self.questions], k)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _metric_head(k: int) -> list[str]:
    return [
        "questions",
        f"recall@{k}",
        f"recall@{2 * k}",
        f"page acc@{k}",
        "hit page",
        "MRR",
        "median latency",
    ]


def _metric_cells(s: Summary) -> list[str]:
    return [
        str(s.n),
        _num(s.recall),
        _num(s.recall_2k),
        _num(s.page_accuracy),
        _num(s.hit_page),
        _num(s.mrr, 3),
        f"{s.median_ms:.0f} ms",
    ]


def _union_cells(n: int, union: float | None) -> list[str]:
    return [str(n), _num(union), "-", "-", "-", "-", "-"]


def worst_manual(runs: Sequence[ManualRun], mode: str, k: int) -> ManualRun:
    """The manual with the lowest recall@k in ``mode`` (ties: the lower MRR)."""
    return min(runs, key=lambda r: (r.summary(mode, k).recall, r.summary(mode, k).mrr))


def headline_table(runs: Sequence[ManualRun], modes: Sequence[str], k: int) -> str:
    """Per mode: the mean over manuals and the worst manual, and the dense-or-keyword bound."""
    head = [
        "mode",
        f"mean recall@{k}",
        f"worst manual: recall@{k}",
        f"mean recall@{2 * k}",
        f"mean page acc@{k}",
        "mean hit page",
        "mean MRR",
        "median latency",
    ]
    rows: list[list[str]] = []
    for mode in modes:
        mean = mean_summary(mode, [r.summary(mode, k) for r in runs])
        worst = worst_manual(runs, mode, k)
        rows.append(
            [
                mode,
                _num(mean.recall),
                f"{_num(worst.summary(mode, k).recall)} ({worst.qset.manual})",
                _num(mean.recall_2k),
                _num(mean.page_accuracy),
                _num(mean.hit_page),
                _num(mean.mrr, 3),
                f"{mean.median_ms:.0f} ms",
            ]
        )
    unions = [(u, r) for r in runs if (u := r.union(k)) is not None]
    if unions:
        low, low_run = min(unions, key=lambda pair: pair[0])
        mean_union = _mean([u for u, _ in unions])
        rows.append(
            [f"{UNION_LABEL} (bound)", _num(mean_union), f"{_num(low)} ({low_run.qset.manual})"]
            + ["-"] * 5
        )
    return markdown_table(head, rows)


def per_manual_table(runs: Sequence[ManualRun], modes: Sequence[str], k: int) -> str:
    """Rows per manual and mode, the union bound per manual, then the mean and worst manual."""
    head = ["manual", "mode", *_metric_head(k)]
    rows: list[list[str]] = []
    for run in runs:
        name = run.qset.manual
        rows += [[name, mode, *_metric_cells(run.summary(mode, k))] for mode in modes]
        if (union := run.union(k)) is not None:
            rows.append([name, UNION_LABEL, *_union_cells(len(run.questions), union)])
    if len(runs) < 2:
        return markdown_table(head, rows)
    for mode in modes:
        mean = mean_summary(mode, [r.summary(mode, k) for r in runs])
        rows.append(["**mean over manuals**", mode, *_metric_cells(mean)])
    for mode in modes:
        worst = worst_manual(runs, mode, k)
        rows.append(
            [f"**worst: {worst.qset.manual}**", mode, *_metric_cells(worst.summary(mode, k))]
        )
    return markdown_table(head, rows)


def per_kind_table(runs: Sequence[ManualRun], modes: Sequence[str], k: int) -> str:
    """Rows per question kind and mode, pooled over every manual's questions."""
    kinds = sorted({q.kind for r in runs for q in r.questions})
    head = ["kind", "mode", *_metric_head(k)]
    rows: list[list[str]] = []
    for kind in kinds:
        for mode in modes:
            pooled = [r.outcomes[mode][q.id] for r in runs for q in r.questions if q.kind == kind]
            rows.append([kind, mode, *_metric_cells(summarise(mode, pooled, k))])
        ids = [(r, q.id) for r in runs for q in r.questions if q.kind == kind]
        if all(m in r.outcomes for r, _ in ids for m in UNION_OF):
            union = _mean([any(r.outcomes[m][qid].recalled(k) for m in UNION_OF) for r, qid in ids])
            rows.append([kind, UNION_LABEL, *_union_cells(len(ids), union)])
    return markdown_table(head, rows)


def manuals_table(runs: Sequence[ManualRun]) -> str:
    """What was loaded: manual, kind, package, pages, passages, load time, questions."""
    head = ["manual", "kind", "title", "Debian package", "pages", "passages", "load", "questions"]
    rows = []
    for run in runs:
        manual = _manuals.find_manual(run.qset.manual)
        pages = f"first {run.info.pages}" if run.info.limit_pages else str(run.info.pages)
        rows.append(
            [
                run.qset.manual,
                run.kind,
                run.qset.title,
                f"`{manual.package}` {run.qset.package_version or manual.version or '?'}",
                pages,
                str(run.info.passages),
                f"{run.info.load_seconds:.0f} s",
                f"{len(run.questions)} of {len(run.qset.questions)}",
            ]
        )
    return markdown_table(head, rows)


def format_details(
    questions: Sequence[Question], outcomes: dict[str, dict[str, Outcome]], modes: Sequence[str]
) -> str:
    """Per-question ranks: ``answer rank / page rank`` per mode, ``-`` when not in the top 2k."""

    def cell(o: Outcome | None) -> str:
        if o is None:
            return "n/a"
        return f"{o.answer_rank or '-'} / {o.page_rank or '-'}"

    head = ["id", "kind", "pages", "question", *modes]
    rows = []
    for q in questions:
        text = q.question.replace("|", "\\|")
        pages = ",".join(map(str, q.pages))
        cells = [cell(outcomes.get(m, {}).get(q.id)) for m in modes]
        rows.append([q.id, q.kind, pages, text, *cells])
    return markdown_table(head, rows)


def code_version() -> str:
    """The commit measured, and whether the retrieval code had uncommitted changes."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=BENCH_DIR.parent, capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "agent/documents", "bot")
    return f"commit `{commit}`" + (" with uncommitted changes to the library" if dirty else "")


def report_markdown(
    *,
    runs: Sequence[ManualRun],
    modes: Sequence[str],
    k: int,
    command: str,
    machine: str,
) -> str:
    """The docs/benchmarks.md section body."""
    kinds: dict[str, int] = {}
    for run in runs:
        for q in run.questions:
            kinds[q.kind] = kinds.get(q.kind, 0) + 1
    composition = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    asked = sum(len(r.questions) for r in runs)
    model = runs[0].info.embedding_model if runs else "?"
    parts = [
        machine,
        "",
        f"Code: {code_version()}; `{model}`; top_k = {2 * k} per search (the figures @{k} are"
        f" its first {k}). {asked} questions over {len(runs)}"
        f" manual{'s' if len(runs) != 1 else ''} ({composition}; each set's `notes` define"
        " its kinds).",
        "",
        manuals_table(runs),
    ]
    if len(runs) > 1:
        parts += [
            "",
            f"**Mean over manuals and worst manual** (each manual weighs the same; the worst is"
            f" the one with the lowest recall@{k} in that mode):",
            "",
            headline_table(runs, modes, k),
        ]
    parts += [
        "",
        "**Per manual:**",
        "",
        per_manual_table(runs, modes, k),
        "",
        "**Per question kind** (pooled over the manuals' questions):",
        "",
        per_kind_table(runs, modes, k),
        "",
        f"recall@{k}: the answer string is in one of the top {k} passages (recall@{2 * k}"
        f" likewise); page acc@{k}: one of them covers a page listed for the question; hit"
        f" page: of the questions recalled@{k}, the share whose first passage holding the"
        f" answer covers a listed page (its citation names the right page); MRR: mean of 1/rank"
        f" of the first passage holding the answer in the top {2 * k}; {UNION_LABEL}: the"
        f" answer is in the dense top {k} or the keyword top {k}, the bound for a fusion of the"
        " two; latency: one search, embedding the query included, median per manual (mean"
        " rows: median of those); load: wall-clock time of `Library.load` for the manual, slower"
        " when other work shares the cores.",
    ]
    for run in runs:
        for mode, why in run.skipped.items():
            parts += ["", f"{run.qset.manual}: mode `{mode}` not measured: {why}."]
    for run in runs:
        measured = [m for m in modes if m in run.outcomes]
        parts += [
            "",
            f"<details><summary>{run.qset.manual}: answer rank / page rank per question"
            f" (`{run.qset.path.relative_to(BENCH_DIR.parent)}`)</summary>",
            "",
            format_details(run.questions, run.outcomes, measured),
            "",
            "</details>",
        ]
    parts += ["", f"Reproduce: `{command}`"]
    return "\n".join(parts)


@dataclass(frozen=True)
class FusionResult:
    """One fusion's figures on each manual."""

    fusion: Fusion
    per_manual: dict[str, Summary]  # manual -> its figures
    outcomes: dict[str, dict[str, Outcome]]  # manual -> question id -> outcome

    @property
    def mean(self) -> Summary:
        """The mean over manuals."""
        return mean_summary(self.fusion.name, list(self.per_manual.values()))

    @property
    def worst(self) -> tuple[str, Summary]:
        """The manual with the lowest recall (ties: the lower MRR) and its figures."""
        return min(self.per_manual.items(), key=lambda item: (item[1].recall, item[1].mrr))

    def rank_key(self) -> tuple[float, float, float]:
        """Best first by mean recall, then the worst manual's recall, then mean MRR."""
        return (-self.mean.recall, -self.worst[1].recall, -self.mean.mrr)


def evaluate_fusions(
    runs: Sequence[ManualRun], fusions: Sequence[Fusion], k: int
) -> list[FusionResult]:
    """Every fusion over every manual's stored rankings, judged at ``k`` (and ``2k``)."""
    results: list[FusionResult] = []
    for fusion in fusions:
        outcomes = {
            run.qset.manual: fused_outcomes(fusion, run.questions, run.rankings, 2 * k)
            for run in runs
        }
        per_manual = {m: summarise(fusion.name, list(o.values()), k) for m, o in outcomes.items()}
        results.append(FusionResult(fusion, per_manual, outcomes))
    return results


def fusion_table(results: Sequence[FusionResult], manuals: Sequence[str], k: int) -> str:
    """Per fusion: depth, mean and worst recall@k, mean recall@2k, page acc, MRR, per manual."""
    head = [
        "fusion",
        "depth",
        f"mean recall@{k}",
        f"worst manual: recall@{k}",
        f"mean recall@{2 * k}",
        f"mean page acc@{k}",
        "mean MRR",
        *manuals,
    ]
    rows: list[list[str]] = []
    for result in results:
        mean, (worst, low) = result.mean, result.worst
        rows.append(
            [
                result.fusion.name,
                str(result.fusion.depth),
                _num(mean.recall),
                f"{_num(low.recall)} ({worst})",
                _num(mean.recall_2k),
                _num(mean.page_accuracy),
                _num(mean.mrr, 3),
                *(_num(result.per_manual[m].recall) for m in manuals),
            ]
        )
    return markdown_table(head, rows)


def before_after_table(before: FusionResult, after: FusionResult, k: int) -> str:
    """Per manual, then mean and worst: recall@k and @2k, page acc@k and MRR, before -> after."""

    def cells(old: Summary, new: Summary) -> list[str]:
        pairs = [
            (old.recall, new.recall, 2),
            (old.recall_2k, new.recall_2k, 2),
            (old.page_accuracy, new.page_accuracy, 2),
            (old.mrr, new.mrr, 3),
        ]
        return [f"{_num(a, d)} → {_num(b, d)}" for a, b, d in pairs]

    head = ["manual", "questions", f"recall@{k}", f"recall@{2 * k}", f"page acc@{k}", "MRR"]
    rows = [[m, str(s.n), *cells(s, after.per_manual[m])] for m, s in before.per_manual.items()]
    if len(rows) > 1:
        rows.append(["**mean over manuals**", str(before.mean.n), *cells(before.mean, after.mean)])
        worst = {"before": before.worst[0], "after": after.worst[0]}
        labels = {"": worst["before"]} if len(set(worst.values())) == 1 else worst
        for label, name in labels.items():
            rows.append(
                [
                    f"**worst{' ' + label if label else ''}: {name}**",
                    str(before.per_manual[name].n),
                    *cells(before.per_manual[name], after.per_manual[name]),
                ]
            )
    return markdown_table(head, rows)


def depth_grid_table(results: Sequence[FusionResult], k: int) -> str:
    """Mean recall@k (and the worst manual's) per fusion and depth: where the plateaus are."""
    depths = sorted({r.fusion.depth for r in results})
    cells: dict[str, dict[int, str]] = {}
    for result in results:
        row = cells.setdefault(result.fusion.name, {})
        row[result.fusion.depth] = f"{result.mean.recall:.3f} ({_num(result.worst[1].recall)})"
    head = ["fusion", *(f"depth {d}" for d in depths)]
    rows = [[name, *(row.get(d, "") for d in depths)] for name, row in cells.items()]
    return markdown_table(head, rows)


def headline_fusions(results: Sequence[FusionResult], top: int = 8) -> list[FusionResult]:
    """The baseline, the library's fusion, the best of each family and the ``top`` best."""
    ordered = sorted(results, key=FusionResult.rank_key)
    families: dict[str, FusionResult] = {}
    for result in ordered:
        family = result.fusion.name.split(" ")[0]
        families.setdefault(family, result)
    pinned = [
        r
        for r in results
        if (r.fusion.name, r.fusion.depth) == BASELINE_FUSION or r.fusion.name == SHIPPED_FUSION
    ]
    chosen = [*pinned, *families.values(), *ordered[:top]]
    unique = list({id(r): r for r in chosen}.values())
    return sorted(unique, key=FusionResult.rank_key)


def agreement(result: FusionResult, runs: Sequence[ManualRun], mode: str) -> tuple[int, int]:
    """How many questions ``result`` ranks the answer where the library's ``mode`` did."""
    same = total = 0
    for run in runs:
        for qid, measured in run.outcomes.get(mode, {}).items():
            total += 1
            same += result.outcomes[run.qset.manual][qid].answer_rank == measured.answer_rank
    return same, total


def fusion_markdown(
    *,
    runs: Sequence[ManualRun],
    results: Sequence[FusionResult],
    k: int,
    command: str,
    machine: str,
) -> str:
    """The docs/benchmarks.md section of a ``--fusions`` run."""
    manuals = [r.qset.manual for r in runs]
    by_key = {(r.fusion.name, r.fusion.depth): r for r in results}
    before = by_key[BASELINE_FUSION]
    after = next(r for r in results if r.fusion.name == SHIPPED_FUSION)
    same, total = agreement(after, runs, "hybrid")
    asked = sum(len(r.questions) for r in runs)
    best = sorted(results, key=FusionResult.rank_key)[0]
    return "\n".join(
        [
            machine,
            "",
            f"Code: {code_version()}; `{runs[0].info.embedding_model}`. {asked} questions over"
            f" {len(runs)} manual{'s' if len(runs) != 1 else ''}. Each question's dense and"
            f" keyword rankings are read once per depth ({', '.join(map(str, FUSION_DEPTHS))};"
            " each its own search, as the library asks at that depth) and every fusion below"
            " fuses them in-process: `rrf k=K` is reciprocal rank, each ranking adding"
            " `w / (K + rank)` (w = 0.5 each unless `dense W`, then the keyword ranking weighs"
            " 1 - W); `min-max` and `z-score` add the rankings' scores (cosine, and BM25 as"
            " `-bm25()`) normalised per query, weighted the same way, a passage missing from one"
            f" ranking taking that ranking's lowest normalised score. `{SHIPPED_FUSION}` is"
            " `agent.documents.library.fuse` as shipped, at `HYBRID_DEPTH`; the library's own"
            f" hybrid search ranks the answer where it does for {same} of {total} questions."
            f" Ordered by mean recall@{k}, then the worst manual's, then mean MRR; best:"
            f" `{best.fusion.name}` at depth {best.fusion.depth}.",
            "",
            f"**Before (`{BASELINE_FUSION[0]}`, {BASELINE_FUSION[1]} deep) and after"
            f" (`{SHIPPED_FUSION}`), per manual:**",
            "",
            before_after_table(before, after, k),
            "",
            "**The baseline, the library's fusion, the best of each family and the best overall:**",
            "",
            fusion_table(headline_fusions(results), manuals, k),
            "",
            f"<details><summary>Mean recall@{k} (worst manual's) per fusion and depth (one"
            f" question more on one manual adds"
            f" {1 / (len(runs) * max(len(r.questions) for r in runs)):.3f} or more to a"
            " mean)</summary>",
            "",
            depth_grid_table(results, k),
            "",
            "</details>",
            "",
            f"<details><summary>All {len(results)} fusions, best first</summary>",
            "",
            fusion_table(sorted(results, key=FusionResult.rank_key), manuals, k),
            "",
            "</details>",
            "",
            f"Reproduce: `{command}`",
        ]
    )


# ------------------------------------------------------------------------------ reranking

RERANK_DEPTHS = (10, 20, 30, 40)
"""How many of the library's fused candidates a reranker reorders (the rest stay below)."""
RERANK_BLENDS = (1.0, 0.7, 0.5, 0.3)
"""Weights of the reranker's score, scaled to [0, 1] over the candidates; the fusion's scaled
score weighs the rest, so a passage that fusion put first (an exact identifier) keeps a pull."""
RERANK_TIMED = 5
"""Questions per manual whose reranking is timed again at each shallower depth."""
WINDOW_SENTENCES = 3
_SENTENCE_BREAK = re.compile(r"(?<=[.!?:;])\s+|\n+")


class Reranker(Protocol):
    """Scores candidate passages for a query, higher is better, in one call per query."""

    @property
    def name(self) -> str: ...

    async def scores(self, query: str, texts: Sequence[str]) -> list[float]: ...


def sentence_windows(text: str, size: int = WINDOW_SENTENCES) -> list[str]:
    """``text`` as windows of ``size`` consecutive sentences overlapping by one, the last one
    ending with the text (the whole text when it has no more than ``size`` sentences)."""
    sentences = [s for s in _SENTENCE_BREAK.split(text) if s.strip()]
    if len(sentences) <= size:
        return [text]
    starts = [*range(0, len(sentences) - size, max(1, size - 1)), len(sentences) - size]
    return [" ".join(sentences[i : i + size]) for i in starts]


class WindowReranker:
    """The embedding model standing in for a cross-encoder: a passage scores the best cosine
    between the query and any window of a few sentences in it.

    A passage vector averages everything the passage says, so the one sentence that answers
    a question is diluted by the rest; a window of it is not. Every window of every
    candidate is embedded in one call, as a cross-encoder would run its pairs.
    """

    def __init__(self, embedder: Any, size: int = WINDOW_SENTENCES) -> None:
        self._embedder = embedder
        self._size = size

    @property
    def name(self) -> str:
        return f"`{self._embedder.model_id}` over windows of {self._size} sentences"

    async def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        windows = [sentence_windows(text, self._size) for text in texts]
        vectors = await self._embedder.embed([query, *(w for ws in windows for w in ws)])
        cosines = [float(c) for c in vectors[1:] @ vectors[0]]
        best: list[float] = []
        for ws in windows:
            best.append(max(cosines[: len(ws)]))
            cosines = cosines[len(ws) :]
        return best


class CrossEncoderReranker:
    """A cross-encoder exported to ONNX: ``model.onnx`` and its ``tokenizer.json`` in one
    directory. Each (query, passage) pair is read together, the passage cut so the pair fits
    ``max_length`` word pieces, every candidate in one onnxruntime run; the score is the
    last logit (the relevance logit of MS MARCO and BGE rerankers).

    For trying one that a package may ship some day (``--cross-encoder DIR``); none does now.
    """

    def __init__(self, directory: Path, *, max_length: int = 512, threads: int = 2) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        self._directory = directory
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_length, strategy="only_second")
        self._tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # As the embedder: idle threads spinning would take a core from the searches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}

    @property
    def name(self) -> str:
        return f"the cross-encoder `{self._directory.name}`"

    async def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        return await asyncio.to_thread(self._scores, query, list(texts))

    def _scores(self, query: str, texts: list[str]) -> list[float]:
        import numpy as np

        if not texts:
            return []
        encodings = self._tokenizer.encode_batch([(query, text) for text in texts])
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feeds = {k: np.array(v, dtype=np.int64) for k, v in columns.items() if k in self._inputs}
        logits = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        return [float(x) for x in logits.reshape(len(texts), -1)[:, -1]]


@dataclass
class RerankData:
    """One manual's candidates and their reranker scores, kept for every variant."""

    reranker: str
    candidates: dict[str, list[values.Hit]]  # question id -> the library's fusion
    scores: dict[str, list[float]]  # question id -> scores of its first max(RERANK_DEPTHS)
    seconds: dict[int, list[float]]  # rerank depth -> the calls timed at that depth


async def rerank_data(
    reranker: Reranker, questions: Sequence[Question], rankings: RankingsByDepth
) -> RerankData:
    """Fuse each question's rankings as the library does and score the candidates once."""
    from agent.documents import library

    deepest = max(RERANK_DEPTHS)
    data = RerankData(reranker.name, {}, {}, {d: [] for d in RERANK_DEPTHS})
    for index, q in enumerate(questions):
        dense, keyword = rankings[library.HYBRID_DEPTH][q.id]
        fused = library.fuse([dense, keyword])
        texts = [h.text for h in fused[:deepest]]
        for depth in sorted(RERANK_DEPTHS, reverse=True):
            if depth != deepest and index >= RERANK_TIMED:
                break
            start = time.perf_counter()
            scores = await reranker.scores(q.question, texts[:depth])
            data.seconds[depth].append(time.perf_counter() - start)
            if depth == deepest:
                data.candidates[q.id], data.scores[q.id] = fused, scores
    return data


def reranked(
    candidates: Sequence[values.Hit], scores: Sequence[float], depth: int, blend: float
) -> list[values.Hit]:
    """The first ``depth`` candidates reordered by ``blend`` x the reranker's score plus
    (1 - ``blend``) x the fusion's, each scaled to [0, 1] over them; the rest keep their
    order below."""
    head = list(candidates[:depth])
    rerank = min_max(scores[: len(head)])
    fusion = min_max([h.score for h in head])
    combined = [blend * r + (1 - blend) * f for r, f in zip(rerank, fusion, strict=True)]
    order = sorted(range(len(head)), key=lambda i: (-combined[i], i))
    return [replace(head[i], score=combined[i]) for i in order] + list(candidates[depth:])


def _library_first_stage(dense: Ranking, keyword: Ranking) -> list[values.Hit]:
    from agent.documents import library

    return library.fuse([dense, keyword])


def evaluate_reranks(runs: Sequence[ManualRun], k: int) -> list[FusionResult]:
    """The library's fusion alone, then reranked at every depth and blend, judged at ``k``."""
    from agent.documents import library

    variants = [(SHIPPED_FUSION, library.HYBRID_DEPTH, 0.0)] + [
        (f"rerank {d}" + ("" if b == 1.0 else f" blend {b}"), d, b)
        for d in RERANK_DEPTHS
        for b in RERANK_BLENDS
    ]
    results: list[FusionResult] = []
    for name, depth, blend in variants:
        outcomes: dict[str, dict[str, Outcome]] = {}
        for run in runs:
            assert run.rerank is not None
            data = run.rerank
            per_question: dict[str, Outcome] = {}
            for q in run.questions:
                found = data.candidates[q.id]
                if blend:
                    found = reranked(found, data.scores[q.id], depth, blend)
                # Reranking is timed per depth (rerank_latency_table), not per question.
                per_question[q.id] = Outcome(q, name, judged(q, found[: 2 * k]), 0.0)
            outcomes[run.qset.manual] = per_question
        per_manual = {m: summarise(name, list(o.values()), k) for m, o in outcomes.items()}
        fusion = Fusion(name, depth, _library_first_stage)
        results.append(FusionResult(fusion, per_manual, outcomes))
    return results


def rerank_latency_table(runs: Sequence[ManualRun]) -> str:
    """Reranking alone (every candidate scored), p50 and p95 per depth, pooled over manuals."""
    rows: list[list[str]] = []
    for depth in RERANK_DEPTHS:
        timed = [s * 1000 for r in runs if r.rerank for s in r.rerank.seconds[depth]]
        rows.append(
            [
                str(depth),
                str(len(timed)),
                f"{_report.percentile(timed, 50):.0f}",
                f"{_report.percentile(timed, 95):.0f}",
            ]
        )
    return markdown_table(["rerank depth", "calls timed", "p50 ms", "p95 ms"], rows)


def rerank_markdown(
    *,
    runs: Sequence[ManualRun],
    results: Sequence[FusionResult],
    k: int,
    command: str,
    machine: str,
) -> str:
    """The docs/benchmarks.md section of a ``--rerank`` run."""
    manuals = [r.qset.manual for r in runs]
    before = next(r for r in results if r.fusion.name == SHIPPED_FUSION)
    best = sorted(results, key=FusionResult.rank_key)[0]
    asked = sum(len(r.questions) for r in runs)
    hybrid_ms = [o.seconds * 1000 for r in runs for o in r.outcomes.get("hybrid", {}).values()]
    reranker = runs[0].rerank.reranker if runs[0].rerank else "?"
    search = (
        f" The library's hybrid search alone (query embedding, both rankings, fusion) took"
        f" {_report.percentile(hybrid_ms, 50):.0f} ms at p50 and"
        f" {_report.percentile(hybrid_ms, 95):.0f} ms at p95 in the same run."
        if hybrid_ms
        else ""
    )
    return "\n".join(
        [
            machine,
            "",
            f"Code: {code_version()}; `{runs[0].info.embedding_model}`. {asked} questions over"
            f" {len(runs)} manual{'s' if len(runs) != 1 else ''}. Each question's dense and"
            " keyword rankings are read at the library's depth and fused by"
            f" `agent.documents.library.fuse` (`{SHIPPED_FUSION}`); `rerank N` reorders the"
            f" first N fused passages by the reranker, {reranker}, and `blend W` by W x its"
            " score plus (1 - W) x the fusion's, both scaled to [0, 1] over the N; the passages"
            f" below the N keep their order. Ordered by mean recall@{k}, then the worst"
            f" manual's, then mean MRR; best: `{best.fusion.name}`.",
            "",
            f"**`{SHIPPED_FUSION}` alone and `{best.fusion.name}`, per manual:**",
            "",
            before_after_table(before, best, k),
            "",
            "**Every variant:**",
            "",
            fusion_table(sorted(results, key=FusionResult.rank_key), manuals, k),
            "",
            "**Cost of reranking** (on top of the search; all candidates scored in one call;"
            f" every question at depth {max(RERANK_DEPTHS)}, the first"
            f" {RERANK_TIMED} of each manual at the others):{search}",
            "",
            rerank_latency_table(runs),
            "",
            f"Reproduce: `{command}`",
        ]
    )


def section_title(args: argparse.Namespace, runs: Sequence[ManualRun]) -> str:
    """The docs/benchmarks.md section this run writes."""
    if not args.manual and not args.questions:
        title = DEV_SECTION
    elif len(runs) == 1:
        title = f"{SECTION_PREFIX}: {runs[0].qset.title}"
    else:
        title = f"{SECTION_PREFIX}: " + ", ".join(r.qset.manual for r in runs)
    if args.limit_pages is not None:
        title += f", first {args.limit_pages} pages"
    if args.fusions:
        title = title.replace(f"{SECTION_PREFIX}: ", f"{SECTION_PREFIX}: fusion, ", 1)
    if args.rerank:
        title = title.replace(f"{SECTION_PREFIX}: ", f"{SECTION_PREFIX}: reranking, ", 1)
    return title


def json_dump(runs: Sequence[ManualRun], modes: Sequence[str], k: int) -> dict[str, Any]:
    """Raw results: per manual its load, summaries, union bound and every ranking."""
    return {
        run.qset.manual: {
            "load": asdict(run.info),
            "summaries": {m: asdict(run.summary(m, k)) for m in modes if m in run.outcomes},
            "union": run.union(k),
            "skipped": run.skipped,
            "outcomes": {
                m: {
                    qid: {
                        "answer_rank": o.answer_rank,
                        "page_rank": o.page_rank,
                        "seconds": o.seconds,
                        "hits": [asdict(h) for h in o.hits],
                    }
                    for qid, o in per.items()
                }
                for m, per in run.outcomes.items()
            },
        }
        for run in runs
    }


# --------------------------------------------------------------------------------- run


def check_sets(args: argparse.Namespace) -> list[tuple[QuestionSet, Path]] | None:
    """Load and check every selected question set against its PDF; None if one fails."""
    paths = list(args.questions) or find_question_sets(args.manual)
    if args.pdf is not None and len(paths) != 1:
        print("--pdf needs exactly one question set (--manual or --questions)", file=sys.stderr)
        return None
    checked: list[tuple[QuestionSet, Path]] = []
    failed = False
    for path in paths:
        qset = load_question_set(path)
        pdf = args.pdf or _manuals.fetch_manual(qset.manual)
        print(f"{qset.manual}: {pdf}", file=sys.stderr)
        if qset.pdf_sha256 and _manuals.sha256(pdf) != qset.pdf_sha256:
            print(
                f"note: {pdf.name} differs from the PDF {path.name} was written against;"
                " checking every answer against it",
                file=sys.stderr,
            )
        problems = check_question_set(qset, pdf)
        if problems:
            failed = True
            print(f"question set {path} does not match {pdf}:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            continue
        print(
            f"question set {path.name} OK: {len(qset.questions)} questions verified",
            file=sys.stderr,
        )
        if args.check_only:
            for note in answers_elsewhere(qset, pdf):
                print(f"  note: {note}", file=sys.stderr)
        checked.append((qset, pdf))
    return None if failed else checked


async def run(args: argparse.Namespace) -> int:
    """Check the question sets, load (or reuse) each manual, ask every question per mode."""
    try:
        checked = check_sets(args)
    except (ValueError, _manuals.FetchError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if checked is None:
        return 2
    if args.check_only:
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    runs: list[ManualRun] = []
    for qset, pdf in checked:
        limit = args.limit_pages
        questions = [q for q in qset.questions if limit is None or max(q.pages) <= limit]
        if len(questions) < len(qset.questions):
            print(
                f"--limit-pages {limit}: asking {len(questions)} of {len(qset.questions)}"
                f" {qset.manual} questions (the others' pages are not loaded)",
                file=sys.stderr,
            )
        temporary = args.reuse is None
        data_dir = (
            Path(tempfile.mkdtemp(prefix=f"archivist-bench-{qset.manual}-"))
            if temporary
            else args.reuse / qset.manual
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            result = await _run_in(args, qset, pdf, questions, modes, data_dir)
        finally:
            if temporary and not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
            elif temporary:
                print(f"data dir kept: {data_dir}", file=sys.stderr)
        if result is None:
            return 2
        runs.append(result)
    if args.load_only:
        return 0
    _output(args, runs, modes)
    return 0


def _output(args: argparse.Namespace, runs: Sequence[ManualRun], modes: Sequence[str]) -> None:
    """Print the tables, write the JSON and the docs/benchmarks.md section."""
    k = args.top_k
    measured = [m for m in modes if all(m in r.outcomes for r in runs)]
    print()
    for run in runs:
        print(
            f"{run.qset.manual}: {run.info.pages} pages, {run.info.passages} passages, loaded in"
            f" {run.info.load_seconds:.0f} s; {len(run.questions)} questions"
        )
        for mode, why in run.skipped.items():
            print(f"  (mode {mode} skipped: {why})")
    if not measured:
        print("no mode was measured on every manual: nothing to report", file=sys.stderr)
        return
    if len(runs) > 1:
        print()
        print(headline_table(runs, measured, k))
    print()
    print(per_manual_table(runs, measured, k))
    print()
    print(per_kind_table(runs, measured, k))
    if args.verbose:
        for run in runs:
            print(f"\n{run.qset.manual}:")
            print(format_details(run.questions, run.outcomes, measured))
    if args.json:
        args.json.write_text(json.dumps(json_dump(runs, measured, k), indent=2) + "\n")
    title = section_title(args, runs)
    if args.rerank:
        results = evaluate_reranks(runs, k)
        print()
        print(
            fusion_table(
                sorted(results, key=FusionResult.rank_key), [r.qset.manual for r in runs], k
            )
        )
        print()
        print(rerank_latency_table(runs))
        markdown = rerank_markdown(
            runs=runs,
            results=results,
            k=k,
            command=args.command_line,
            machine=_report.machine_line(),
        )
    elif args.fusions:
        results = evaluate_fusions(runs, [*fusion_variants(), shipped_fusion()], k)
        print()
        print(
            fusion_table(
                sorted(results, key=FusionResult.rank_key), [r.qset.manual for r in runs], k
            )
        )
        markdown = fusion_markdown(
            runs=runs,
            results=results,
            k=k,
            command=args.command_line,
            machine=_report.machine_line(),
        )
    else:
        markdown = report_markdown(
            runs=runs,
            modes=measured,
            k=k,
            command=args.command_line,
            machine=_report.machine_line(),
        )
    write = args.report if args.report is not None else args.limit_pages is None
    if write:
        written = _report.write_section(title, markdown)
        print(f"\nwrote section {title!r} to {written}", file=sys.stderr)


def _existing_load(data_dir: Path) -> tuple[LoadInfo | None, bool]:
    """The bench's record of an earlier load into ``data_dir``, and whether the dir is empty."""
    meta_path = data_dir / META_FILE
    if meta_path.is_file():
        return LoadInfo(**json.loads(meta_path.read_text())), False
    return None, not any(data_dir.iterdir())


async def _run_in(
    args: argparse.Namespace,
    qset: QuestionSet,
    pdf: Path,
    questions: list[Question],
    modes: list[str],
    data_dir: Path,
) -> ManualRun | None:
    """Load ``qset``'s manual into ``data_dir`` (or reuse it) and ask its questions."""
    from bot.app import open_library

    limit = args.limit_pages
    meta_path = data_dir / META_FILE
    pdf_sha = _manuals.sha256(pdf)
    info, empty = _existing_load(data_dir)
    if info is not None:
        if info.pdf_sha256 != pdf_sha or info.limit_pages != limit:
            print(
                f"{data_dir} holds {info.pdf} with --limit-pages {info.limit_pages}, not this"
                f" PDF with --limit-pages {limit}: use another --reuse directory",
                file=sys.stderr,
            )
            return None
        print(
            f"{qset.manual}: reusing {data_dir}: {info.passages} passages loaded earlier in"
            f" {info.load_seconds:.0f} s",
            file=sys.stderr,
        )
    elif not empty:
        print(
            f"{data_dir} is not empty and has no {META_FILE}: refusing to load into it",
            file=sys.stderr,
        )
        return None

    settings = bench_settings(data_dir, args.config)
    async with open_library(settings) as library:
        if info is None:
            info = await _load(library, args, pdf, pdf_sha, data_dir)
            meta_path.write_text(json.dumps(asdict(info), indent=2) + "\n")
        outcomes: dict[str, dict[str, Outcome]] = {}
        skipped: dict[str, str] = {}
        if not args.load_only:
            for mode in modes:
                try:
                    outcomes[mode] = await _ask_all(library, mode, questions, 2 * args.top_k)
                except ModeUnsupported as exc:
                    skipped[mode] = str(exc)
                    print(f"mode {mode}: {exc}", file=sys.stderr)
        rankings: RankingsByDepth = {}
        if args.fusions and not args.load_only:
            depths = {f.depth for f in [*fusion_variants(), shipped_fusion()]}
            rankings = await fetch_rankings(library, questions, sorted(depths))
        rerank = None
        if args.rerank and not args.load_only:
            rerank = await _rerank_manual(args, settings, library, questions, rankings)
    kind = _manuals.find_manual(qset.manual).kind
    return ManualRun(qset, kind, info, questions, outcomes, skipped, rankings, rerank)


async def _rerank_manual(
    args: argparse.Namespace,
    settings: Any,
    library: Any,
    questions: Sequence[Question],
    rankings: RankingsByDepth,
) -> RerankData:
    """Score each question's fused candidates with the reranker (a cross-encoder from
    ``--cross-encoder``, else the window reranker on an embedder of its own)."""
    from agent.documents.library import HYBRID_DEPTH
    from bot.app import make_embedder

    if HYBRID_DEPTH not in rankings:
        rankings.update(await fetch_rankings(library, questions, [HYBRID_DEPTH]))
    if args.cross_encoder is not None:
        return await rerank_data(CrossEncoderReranker(args.cross_encoder), questions, rankings)
    embedder = await make_embedder(settings)
    try:
        return await rerank_data(WindowReranker(embedder), questions, rankings)
    finally:
        await embedder.aclose()


async def _load(
    library: Any, args: argparse.Namespace, pdf: Path, pdf_sha: str, data_dir: Path
) -> LoadInfo:
    """Load ``pdf`` (or its first ``--limit-pages`` pages) and describe the load."""
    limit = args.limit_pages
    to_load = truncated_pdf(pdf, limit, data_dir) if limit is not None else pdf
    print(f"loading {to_load.name} into {data_dir} ...", file=sys.stderr)
    report, seconds = await load_manual(library, to_load, pdf.name, args.quiet)
    loaded = report.loaded[0]
    print(f"{report.summary()} in {seconds:.1f} s", file=sys.stderr)
    return LoadInfo(
        pdf=str(pdf),
        pdf_sha256=pdf_sha,
        limit_pages=limit,
        pages=loaded.pages,
        passages=loaded.passages,
        load_seconds=round(seconds, 1),
        stage_seconds={k: round(v, 1) for k, v in asdict(report.times).items()},
        embedding_model=str(report.source.embedding_model) if report.source else "?",
        loaded_at=time.strftime("%Y-%m-%d %H:%M:%S"),
    )


async def _ask_all(
    library: Any, mode: str, questions: Sequence[Question], depth: int
) -> dict[str, Outcome]:
    """Every question in ``mode``, its top ``depth`` passages judged against its answer."""
    per_question: dict[str, Outcome] = {}
    for index, q in enumerate(questions):
        start = time.perf_counter()
        try:
            page = await search(library, mode, q.question, depth)
        except ModeUnsupported:
            raise
        except Exception as exc:
            if index:
                raise
            # The first search in a mode failing means the library rejects it.
            raise ModeUnsupported(
                f"the library rejected mode {mode!r}: {type(exc).__name__}: {exc}"
            ) from exc
        seconds = time.perf_counter() - start
        per_question[q.id] = Outcome(q, mode, judged(q, page.results[:depth]), seconds)
    return per_question


async def fetch_rankings(
    library: Any, questions: Sequence[Question], depths: Sequence[int]
) -> RankingsByDepth:
    """Each question's dense and keyword rankings, searched anew at each depth.

    Not one deep search cut short: the HNSW search widens with the number asked for, so a
    ranking 20 deep is the one the library would fuse at that depth.
    """
    rankings: RankingsByDepth = {}
    for depth in depths:
        per_question = rankings.setdefault(depth, {})
        for q in questions:
            dense, keyword = [
                [_as_hit(r) for r in (await search(library, mode, q.question, depth)).results]
                for mode in UNION_OF
            ]
            per_question[q.id] = (dense, keyword)
    return rankings


def _as_hit(result: Any) -> values.Hit:
    """A library search result as the hit of a ranking (its file id is not needed)."""
    return values.Hit(
        id=result.passage_id,
        source_id=result.source_id,
        file_id=0,
        document=result.document,
        page=result.page,
        last_page=result.last_page,
        chunk=result.chunk,
        text=result.text,
        score=float(result.score),
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--manual",
        action="append",
        default=[],
        metavar="NAME",
        help="ask bench/questions/NAME.json (repeatable; default: every set of the dev split)",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a question set JSON elsewhere (repeatable; instead of --manual)",
    )
    parser.add_argument(
        "--pdf",
        type=Path,
        default=None,
        help="the manual's PDF, for a single question set (default: fetched from Debian)",
    )
    parser.add_argument(
        "--modes",
        default=",".join(KNOWN_MODES),
        help="comma-separated search modes (default: %(default)s);"
        " modes the library does not support are skipped with a note",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=5,
        help="k of recall@k and page acc@k; searches return 2k passages (default 5)",
    )
    parser.add_argument(
        "--limit-pages",
        type=int,
        default=None,
        metavar="N",
        help="load only the first N pages of each manual; questions beyond them are skipped",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        metavar="DIR",
        help="load each manual once into DIR/<manual> and reuse it on later runs",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data dirs (without --reuse)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="project config file (default: as the bot resolves it)",
    )
    parser.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the docs/benchmarks.md section (default: only for runs on whole manuals)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="validate the question sets against the PDFs (noting answers found on unlisted"
        " pages too) and exit",
    )
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="load the manuals into --reuse DIR and exit without asking",
    )
    parser.add_argument(
        "--fusions",
        action="store_true",
        help="also read each question's dense and keyword rankings at several depths and"
        " compare fusions of them (bench.retrieval.fusion_variants); the report is then the"
        " fusion section",
    )
    parser.add_argument(
        "--rerank",
        action="store_true",
        help="also rerank the library's fused candidates (bench.retrieval.WindowReranker) at"
        " several depths and blends and time it; the report is then the reranking section",
    )
    parser.add_argument(
        "--cross-encoder",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --rerank: rerank with the ONNX cross-encoder in DIR (model.onnx and"
        " tokenizer.json) instead of the window reranker",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print per-question ranks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no load progress")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.limit_pages is not None and args.limit_pages < 1:
        parser.error("--limit-pages must be at least 1")
    if args.manual and args.questions:
        parser.error("use either --manual or --questions")
    if args.rerank and args.fusions:
        parser.error("use either --fusions or --rerank")
    if args.cross_encoder is not None and not args.rerank:
        parser.error("--cross-encoder goes with --rerank")
    if args.load_only and args.reuse is None:
        parser.error("--load-only needs --reuse DIR (a temporary load would be thrown away)")
    args.command_line = reproduce_command(list(sys.argv[1:] if argv is None else argv))
    return args


def reproduce_command(argv: list[str]) -> str:
    """The command line for the report, without options that only name local paths."""
    drop_with_value = {"--reuse", "--json", "--config"}
    drop_flags = {"--keep", "-v", "--verbose", "-q", "--quiet", "--report", "--no-report"}
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in drop_with_value:
            skip = True
        elif arg in drop_flags or arg.split("=", 1)[0] in drop_with_value:
            continue
        else:
            kept.append(arg)
    return " ".join(["python -m bench.retrieval", *kept])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
