"""The retrieval bench: its question sets, its checks against the PDF, and its metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import _manuals
from bench.retrieval import (
    DEV_SPLIT,
    QUESTIONS_DIR,
    Hit,
    LoadInfo,
    ManualRun,
    Outcome,
    Question,
    QuestionSet,
    answers_elsewhere,
    check_question_set,
    find_question_sets,
    headline_table,
    load_question_set,
    mean_summary,
    per_kind_table,
    per_manual_table,
    summarise,
    union_recall,
)
from tests.pdfs import make_pdf

KINDS = {"concept", "how-to", "option", "error", "definition", "comparison"}


def question(qid: str, pages: tuple[int, ...] = (3,), kind: str = "concept") -> Question:
    return Question(qid, kind, f"question {qid}?", "the answer", pages)


def outcome(q: Question, mode: str, ranks: dict[int, int]) -> Outcome:
    """Ten hits on page 1 except those in ``ranks`` (rank -> page), which hold the answer."""
    hits = tuple(
        Hit(ranks.get(rank, 1), ranks.get(rank, 1), 1.0 / rank, rank in ranks)
        for rank in range(1, 11)
    )
    return Outcome(q, mode, hits, 0.01)


def write_set(directory: Path, name: str, split: str | None, pdf_sha: str | None = None) -> Path:
    doc: dict[str, object] = {
        "manual": name,
        "title": name.title(),
        "pdf_sha256": pdf_sha,
        "questions": [
            {"id": "a1", "kind": "how-to", "question": "How?", "answer": "Zorblax", "pages": [1]},
            {"id": "a2", "kind": "concept", "question": "Why?", "answer": "Quux", "pages": [2]},
        ],
    }
    if split is not None:
        doc["split"] = split
    path = directory / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


# ------------------------------------------------------------------------ question sets


def test_the_dev_set_has_six_manuals_of_different_kinds_and_150_questions() -> None:
    sets = [load_question_set(p) for p in find_question_sets([])]
    assert {s.manual for s in sets} == set(_manuals.DEV_MANUALS)
    kinds = {_manuals.DEV_MANUALS[s.manual].kind for s in sets}
    assert len(kinds) == len(sets) >= 6
    assert sum(len(s.questions) for s in sets) >= 150
    for qset in sets:
        manual = _manuals.DEV_MANUALS[qset.manual]
        assert len(qset.questions) >= 20, qset.manual
        assert qset.pdf_sha256 == manual.sha256
        assert qset.package_version == manual.version
        assert {q.kind for q in qset.questions} <= KINDS
        assert all(1 <= p <= manual.pages for q in qset.questions for p in q.pages)


def test_the_old_tuning_set_is_kept_out_of_the_dev_set() -> None:
    dev = {load_question_set(p).manual for p in find_question_sets([])}
    assert "cpp-annotations" not in dev
    assert load_question_set(QUESTIONS_DIR / "cpp-annotations.json").split != DEV_SPLIT


def test_find_question_sets_takes_dev_sets_and_skips_other_benches_files(tmp_path: Path) -> None:
    write_set(tmp_path, "alpha", DEV_SPLIT)
    write_set(tmp_path, "beta", None)
    (tmp_path / "conversation.json").write_text(json.dumps({"title": "t", "sources": {}}))
    (tmp_path / "broken.json").write_text("{not json")

    assert find_question_sets([], tmp_path) == [tmp_path / "alpha.json"]
    assert find_question_sets(["beta"], tmp_path) == [tmp_path / "beta.json"]
    with pytest.raises(ValueError, match="gamma"):
        find_question_sets(["gamma"], tmp_path)


def test_check_flags_answers_missing_from_their_page_and_notes_repeats(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "m.pdf", ["The Zorblax lives here.", "Quux and Zorblax again."])
    qset = load_question_set(write_set(tmp_path, "m", DEV_SPLIT))

    assert check_question_set(qset, pdf) == []
    assert answers_elsewhere(qset, pdf) == ["a1: answer 'Zorblax' also on page(s) 2"]

    other = make_pdf(tmp_path / "other.pdf", ["The Zorblax lives here.", "Nothing to see."])
    assert check_question_set(qset, other) == ["a2: answer 'Quux' not found on page 2"]


def test_check_reports_pages_outside_the_pdf(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "m.pdf", ["Zorblax"])
    path = write_set(tmp_path, "m", DEV_SPLIT)

    problems = check_question_set(load_question_set(path), pdf)

    assert problems == ["a2: page 2 is outside the PDF's 1 pages"]


# ------------------------------------------------------------------------------ metrics


def test_summarise_counts_recall_at_k_and_2k_page_accuracy_hit_page_and_mrr() -> None:
    q1, q2, q3, q4 = (question(f"q{i}") for i in range(1, 5))
    outcomes = [
        outcome(q1, "dense", {1: 3}),  # rank 1, right page
        outcome(q2, "dense", {4: 2}),  # rank 4, wrong page (a passage cited p.2)
        outcome(q3, "dense", {7: 3}),  # rank 7: in the top 10 only
        outcome(q4, "dense", {}),  # missed
    ]

    s = summarise("dense", outcomes, 5)

    assert (s.n, s.recall, s.recall_2k) == (4, 0.5, 0.75)
    assert s.page_accuracy == 0.25  # only q1 has a top-5 passage on page 3
    assert s.hit_page == 0.5  # of q1 and q2, only q1's answer passage is on its page
    assert s.mrr == pytest.approx((1 + 1 / 4 + 1 / 7) / 4)


def test_a_passage_spanning_pages_covers_each_of_them() -> None:
    q = question("q", pages=(5,))
    hits = (Hit(4, 6, 1.0, True),)

    assert Outcome(q, "dense", hits, 0.0).hit_page_right()


def test_union_is_the_share_in_the_dense_or_the_keyword_top_k() -> None:
    q1, q2, q3 = question("q1"), question("q2"), question("q3")
    by_mode = {
        "dense": {"q1": outcome(q1, "dense", {1: 3}), "q2": outcome(q2, "dense", {8: 3}),
                  "q3": outcome(q3, "dense", {})},
        "keyword": {"q1": outcome(q1, "keyword", {}), "q2": outcome(q2, "keyword", {2: 3}),
                    "q3": outcome(q3, "keyword", {9: 3})},
    }  # fmt: skip

    assert union_recall(by_mode, ["q1", "q2", "q3"], 5) == pytest.approx(2 / 3)
    assert union_recall({"dense": by_mode["dense"]}, ["q1"], 5) is None


def run_of(name: str, found: int, total: int) -> ManualRun:
    """A manual whose first ``found`` of ``total`` questions are answered at rank 1."""
    questions = [question(f"{name}{i}", kind="how-to" if i % 2 else "error") for i in range(total)]
    outcomes = {
        mode: {q.id: outcome(q, mode, {1: 3} if i < found else {}) for i, q in enumerate(questions)}
        for mode in ("dense", "hybrid", "keyword")
    }
    info = LoadInfo("x.pdf", "0", None, 10, 20, 1.0, {}, "model", "now")
    return ManualRun(
        QuestionSet(Path(f"{name}.json"), name, name, DEV_SPLIT, None, None, tuple(questions)),
        "tutorial",
        info,
        questions,
        outcomes,
        {},
    )


def test_the_mean_weighs_manuals_equally_and_the_worst_is_named() -> None:
    runs = [run_of("big", 9, 10), run_of("small", 1, 2)]

    mean = mean_summary("dense", [r.summary("dense", 5) for r in runs])
    headline = headline_table(runs, ["dense", "hybrid", "keyword"], 5)
    per_manual = per_manual_table(runs, ["dense"], 5)
    per_kind = per_kind_table(runs, ["dense"], 5)

    assert mean.recall == pytest.approx((0.9 + 0.5) / 2)  # not 10/12
    assert "| dense | 0.70 | 0.50 (small) |" in headline
    assert "| dense or keyword (bound) | 0.70 | 0.50 (small) |" in headline
    assert "| **worst: small** | dense | 2 | 0.50 |" in per_manual
    assert "| error | dense |" in per_kind and "| how-to | dense or keyword |" in per_kind
