"""Retrieval quality over a real manual: recall@k, page accuracy@k and MRR per search mode.

The manual (by default the 1,151-page C++ Annotations from Debian's ``c++-annotations-pdf``)
is loaded through the project's own code path (settings -> ``open_library`` ->
``Library.load``) into a fresh data directory, then every question of the question set is
asked with ``Library.search_sources``. A question counts as

* **recalled** when its answer string occurs (case-insensitive, whitespace collapsed, curly
  quotes folded) in the text of one of the top-k passages;
* **page-accurate** when one of the top-k passages' page ranges ``[page, last_page]``
  intersects the question's pages;
* and contributes ``1/rank`` of the first passage holding the answer to the **MRR**.

Before anything is loaded the question set is checked against the PDF itself: every answer
must occur on every page it lists (as pypdf extracts it and
``agent.documents.page_text.clean_page_text`` cleans it); otherwise the script refuses to run.

Search modes are pluggable: ``dense`` is the library's default search; any other mode is
passed as ``mode=...`` to ``search_sources`` once the library accepts that parameter, and is
skipped with a note until then.

Usage::

    python -m bench.retrieval                                # full manual, temporary data dir
    python -m bench.retrieval --limit-pages 120              # quick run on the first 120 pages
    python -m bench.retrieval --reuse /tmp/cpp-bench         # load once, reuse afterwards
    python -m bench.retrieval --modes dense,hybrid --reuse /tmp/cpp-bench
    python -m bench.retrieval --check-only                   # just validate the question set
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
import typing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from pypdf import PdfReader, PdfWriter

from agent.documents.page_text import clean_page_text
from bench import _manuals, _report

BENCH_DIR = Path(__file__).resolve().parent
QUESTIONS_DIR = BENCH_DIR / "questions"
DEFAULT_QUESTIONS = QUESTIONS_DIR / "cpp-annotations.json"
SCOPE = "global"
SOURCE = "cpp"
META_FILE = "bench-retrieval.json"
KNOWN_MODES = ("dense", "hybrid", "keyword")
SECTION_PREFIX = "Retrieval quality"

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
    """A question set file: which manual it is about and its questions."""

    path: Path
    manual: str
    title: str
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
        package_version=doc.get("package_version"),
        pdf_sha256=doc.get("pdf_sha256"),
        questions=tuple(questions),
    )


def check_question_set(qset: QuestionSet, pdf: Path) -> list[str]:
    """Problems with ``qset`` against ``pdf``: answers missing from a listed page, bad pages.

    Page text is pypdf's ``extract_text`` cleaned by
    ``agent.documents.page_text.clean_page_text``, i.e. what the library indexes (ligatures
    expanded, words hyphenated across lines joined).
    """
    reader = PdfReader(str(pdf))
    total = len(reader.pages)
    cache: dict[int, str] = {}
    problems: list[str] = []
    for q in qset.questions:
        answer = normalise(q.answer)
        for page in q.pages:
            if not 1 <= page <= total:
                problems.append(f"{q.id}: page {page} is outside the PDF's {total} pages")
                continue
            if page not in cache:
                cache[page] = normalise(clean_page_text(reader.pages[page - 1].extract_text()))
            if answer not in cache[page]:
                problems.append(f"{q.id}: answer {q.answer!r} not found on page {page}")
    return problems


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
    """One question asked in one mode."""

    question: Question
    mode: str
    hits: tuple[Hit, ...]
    seconds: float

    @property
    def answer_rank(self) -> int | None:
        """1-based rank of the first passage holding the answer, if any."""
        return next((i for i, h in enumerate(self.hits, 1) if h.has_answer), None)

    @property
    def page_rank(self) -> int | None:
        """1-based rank of the first passage whose pages intersect the question's pages."""
        wanted = set(self.question.pages)
        return next(
            (
                i
                for i, h in enumerate(self.hits, 1)
                if wanted.intersection(range(h.page, max(h.page, h.last_page) + 1))
            ),
            None,
        )


@dataclass(frozen=True)
class Summary:
    """Aggregate metrics of one mode over a set of outcomes."""

    mode: str
    n: int
    recall: float
    page_accuracy: float
    mrr: float
    page_mrr: float
    median_ms: float
    by_kind: dict[str, float] = field(default_factory=dict)  # recall@k per question kind


def summarise(mode: str, outcomes: Sequence[Outcome]) -> Summary:
    """Recall@k, page accuracy@k, MRR (answer-based and page-based) and median latency."""
    n = len(outcomes)
    if n == 0:
        return Summary(mode, 0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values)

    kinds = sorted({o.question.kind for o in outcomes})
    return Summary(
        mode=mode,
        n=n,
        recall=mean([o.answer_rank is not None for o in outcomes]),
        page_accuracy=mean([o.page_rank is not None for o in outcomes]),
        mrr=mean([1 / o.answer_rank if o.answer_rank else 0.0 for o in outcomes]),
        page_mrr=mean([1 / o.page_rank if o.page_rank else 0.0 for o in outcomes]),
        median_ms=statistics.median(o.seconds for o in outcomes) * 1000,
        by_kind={
            kind: mean([o.answer_rank is not None for o in outcomes if o.question.kind == kind])
            for kind in kinds
        },
    )


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


def format_table(summaries: Sequence[Summary], top_k: int) -> str:
    """The per-mode summary as a Markdown table (also readable in a terminal)."""
    kinds = sorted({k for s in summaries for k in s.by_kind})
    head = [
        "mode",
        "questions",
        f"recall@{top_k}",
        *(f"recall@{top_k} {k}" for k in kinds),
        f"page acc@{top_k}",
        "MRR",
        "page MRR",
        "median latency",
    ]
    rows = [
        [
            s.mode,
            str(s.n),
            f"{s.recall:.2f}",
            *(f"{s.by_kind[k]:.2f}" if k in s.by_kind else "-" for k in kinds),
            f"{s.page_accuracy:.2f}",
            f"{s.mrr:.3f}",
            f"{s.page_mrr:.3f}",
            f"{s.median_ms:.0f} ms",
        ]
        for s in summaries
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def format_details(
    questions: Sequence[Question], outcomes: dict[str, dict[str, Outcome]], modes: Sequence[str]
) -> str:
    """Per-question ranks: ``answer rank / page rank`` per mode, ``-`` when not in the top k."""

    def cell(o: Outcome | None) -> str:
        if o is None:
            return "n/a"
        return f"{o.answer_rank or '-'} / {o.page_rank or '-'}"

    head = ["id", "kind", "pages", "question", *modes]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for q in questions:
        text = q.question.replace("|", "\\|")
        pages = ",".join(map(str, q.pages))
        cells = [cell(outcomes.get(m, {}).get(q.id)) for m in modes]
        lines.append("| " + " | ".join([q.id, q.kind, pages, text, *cells]) + " |")
    return "\n".join(lines)


def report_markdown(
    *,
    qset: QuestionSet,
    info: LoadInfo,
    summaries: Sequence[Summary],
    skipped: dict[str, str],
    details: str,
    top_k: int,
    asked: int,
    command: str,
    machine: str,
) -> str:
    """The docs/benchmarks.md section body."""
    kinds: dict[str, int] = {}
    for q in qset.questions:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    composition = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in info.stage_seconds.items())
    pages = f"first {info.pages} pages" if info.limit_pages else f"{info.pages} pages"
    parts = [
        machine,
        "",
        f"Manual: {qset.title} (Debian `{_manuals.MANUALS[qset.manual].package}`"
        f" {qset.package_version or '?'}), {pages} loaded as {info.passages} passages with"
        f" `{info.embedding_model}` in {info.load_seconds:.0f} s"
        f" (time waited per stage: {stages}).",
        f"Questions: `{qset.path.relative_to(BENCH_DIR.parent)}`, {asked} asked of"
        f" {len(qset.questions)} ({composition}); top_k = {top_k}. *concept* questions are"
        " paraphrased natural language, *keyword* questions hinge on an exact identifier, flag,"
        " header or error message.",
        "",
        format_table(summaries, top_k),
        "",
        f"recall@{top_k}: the answer string is in one of the top {top_k} passages;"
        f" page acc@{top_k}: one of them covers a page listed for the question; MRR: mean of"
        " 1/rank of the first passage holding the answer (page MRR: of the first on a listed"
        " page); latency: one search, embedding the query included.",
    ]
    for mode, why in skipped.items():
        parts += ["", f"Mode `{mode}` not measured: {why}."]
    parts += [
        "",
        "<details><summary>Per question: answer rank / page rank</summary>",
        "",
        details,
        "",
        "</details>",
        "",
        f"Reproduce: `{command}`",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------------- run


async def run(args: argparse.Namespace) -> int:
    """Check the question set, load (or reuse) the manual, ask every question per mode."""
    qset = load_question_set(args.questions)
    pdf = args.pdf or _manuals.fetch_manual(qset.manual)
    print(f"manual: {pdf}", file=sys.stderr)
    if qset.pdf_sha256 and _manuals.sha256(pdf) != qset.pdf_sha256:
        print(
            "note: the PDF differs from the one the question set was written against;"
            " checking every answer against it",
            file=sys.stderr,
        )
    problems = check_question_set(qset, pdf)
    if problems:
        print(f"question set {qset.path} does not match {pdf}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(
        f"question set OK: {len(qset.questions)} questions verified against the PDF",
        file=sys.stderr,
    )
    if args.check_only:
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    limit = args.limit_pages
    questions = [q for q in qset.questions if limit is None or max(q.pages) <= limit]
    if len(questions) < len(qset.questions):
        print(
            f"--limit-pages {limit}: asking {len(questions)} of {len(qset.questions)} questions"
            " (the others' pages are not loaded)",
            file=sys.stderr,
        )

    temporary = args.reuse is None
    data_dir = Path(tempfile.mkdtemp(prefix="archivist-bench-")) if temporary else args.reuse
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return await _run_in(args, qset, pdf, questions, modes, data_dir)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif temporary:
            print(f"data dir kept: {data_dir} (pass --reuse {data_dir} next time)", file=sys.stderr)


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
) -> int:
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
            return 2
        print(
            f"reusing {data_dir}: {info.passages} passages loaded earlier in"
            f" {info.load_seconds:.0f} s",
            file=sys.stderr,
        )
    elif not empty:
        print(
            f"{data_dir} is not empty and has no {META_FILE}: refusing to load into it",
            file=sys.stderr,
        )
        return 2

    settings = bench_settings(data_dir, args.config)
    async with open_library(settings) as library:
        if info is None:
            to_load = pdf
            if limit is not None:
                to_load = truncated_pdf(pdf, limit, data_dir)
            print(f"loading {to_load.name} into {data_dir} ...", file=sys.stderr)
            report, seconds = await load_manual(library, to_load, pdf.name, args.quiet)
            loaded = report.loaded[0]
            info = LoadInfo(
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
            meta_path.write_text(json.dumps(asdict(info), indent=2) + "\n")
            print(f"{report.summary()} in {seconds:.1f} s", file=sys.stderr)

        outcomes: dict[str, dict[str, Outcome]] = {}
        skipped: dict[str, str] = {}
        for mode in modes:
            per_question: dict[str, Outcome] = {}
            try:
                for index, q in enumerate(questions):
                    start = time.perf_counter()
                    try:
                        page = await search(library, mode, q.question, args.top_k)
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
                    answer = normalise(q.answer)
                    hits = tuple(
                        Hit(r.page, r.last_page, float(r.score), answer in normalise(r.text))
                        for r in page.results[: args.top_k]
                    )
                    per_question[q.id] = Outcome(q, mode, hits, seconds)
            except ModeUnsupported as exc:
                skipped[mode] = str(exc)
                print(f"mode {mode}: {exc}", file=sys.stderr)
                continue
            outcomes[mode] = per_question

    summaries = [summarise(m, list(outcomes[m].values())) for m in outcomes]
    measured = list(outcomes)
    print()
    print(
        f"{qset.title}: {info.pages} pages, {info.passages} passages, loaded in"
        f" {info.load_seconds:.0f} s; {len(questions)} questions, top_k={args.top_k}"
    )
    print(format_table(summaries, args.top_k))
    for mode, why in skipped.items():
        print(f"(mode {mode} skipped: {why})")
    if args.verbose:
        print()
        print(format_details(questions, outcomes, measured))

    if args.json:
        dump = {
            "load": asdict(info),
            "summaries": [asdict(s) for s in summaries],
            "skipped": skipped,
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
                for m, per in outcomes.items()
            },
        }
        args.json.write_text(json.dumps(dump, indent=2) + "\n")

    write = args.report if args.report is not None else args.limit_pages is None
    if write and summaries:
        title = f"{SECTION_PREFIX}: {qset.title}"
        if args.limit_pages is not None:
            title += f", first {args.limit_pages} pages"
        markdown = report_markdown(
            qset=qset,
            info=info,
            summaries=summaries,
            skipped=skipped,
            details=format_details(questions, outcomes, measured),
            top_k=args.top_k,
            asked=len(questions),
            command=args.command_line,
            machine=_report.machine_line(),
        )
        written = _report.write_section(title, markdown)
        print(f"\nwrote section {title!r} to {written}", file=sys.stderr)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=DEFAULT_QUESTIONS,
        help="question set JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--pdf",
        type=Path,
        default=None,
        help="the manual's PDF (default: fetched from Debian into bench/data)",
    )
    parser.add_argument(
        "--modes",
        default="dense",
        help=f"comma-separated search modes, e.g. {','.join(KNOWN_MODES[:2])};"
        " modes the library does not support yet are skipped with a note",
    )
    parser.add_argument("--top-k", type=int, default=5, help="passages per search (default 5)")
    parser.add_argument(
        "--limit-pages",
        type=int,
        default=None,
        metavar="N",
        help="load only the first N pages; questions beyond them are skipped",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        metavar="DIR",
        help="data dir to load into once and reuse on later runs",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data dir (without --reuse)"
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
        help="write the docs/benchmarks.md section (default: only for runs on the whole manual)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="validate the question set against the PDF and exit",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print per-question ranks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no load progress")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.limit_pages is not None and args.limit_pages < 1:
        parser.error("--limit-pages must be at least 1")
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
