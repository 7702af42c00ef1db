"""The retrieval bench: its question sets, its checks against the PDF, and its metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest
from onnx import TensorProto, helper

from agent import values
from agent.documents.embed import LOCAL_MODEL_ID
from agent.documents.library import HYBRID_DEPTH, fuse
from agent.documents.local_embed import LocalEmbedder
from agent.documents.onnx_model import int8_model_file
from bench import _manuals
from bench.retrieval import (
    BASELINE_FUSION,
    DEV_SPLIT,
    QUESTIONS_DIR,
    SHIPPED_FUSION,
    CrossEncoderReranker,
    Fusion,
    Hit,
    LoadInfo,
    ManualRun,
    Outcome,
    Question,
    QuestionSet,
    WindowReranker,
    answers_elsewhere,
    before_after_table,
    check_question_set,
    depth_grid_table,
    evaluate_fusions,
    evaluate_reranks,
    fetch_rankings,
    find_question_sets,
    fusion_markdown,
    fusion_variants,
    headline_table,
    load_question_set,
    mean_summary,
    min_max,
    normalised_sum,
    per_kind_table,
    per_manual_table,
    rerank_data,
    rerank_latency_table,
    rerank_markdown,
    reranked,
    rrf,
    sentence_windows,
    shipped_fusion,
    summarise,
    union_recall,
    z_score,
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


# ------------------------------------------------------------------------------- fusion


def passage(pid: int, score: float = 0.0, text: str = "") -> values.Hit:
    return values.Hit(pid, 1, 1, "m.pdf", pid, pid, pid, text or f"passage {pid}", score)


def ids(hits: list[values.Hit]) -> list[int]:
    return [h.id for h in hits]


def test_rrf_adds_weighted_reciprocal_ranks() -> None:
    dense = [passage(i) for i in (1, 2, 3, 4)]
    keyword = [passage(i) for i in (5, 3, 6, 1)]

    fused = rrf(60)(dense, keyword)

    assert ids(fused) == [1, 3, 5, 2, 6, 4]
    assert fused[0].score == pytest.approx(0.5 / 61 + 0.5 / 64)
    # Weighting the dense ranking up puts its second above the keyword first.
    assert ids(rrf(1)(dense, keyword)) == [1, 3, 5, 2, 6, 4]
    assert ids(rrf(1, dense_weight=0.7)(dense, keyword)) == [1, 3, 2, 5, 4, 6]


def test_normalised_sums_scale_each_ranking_and_fill_in_its_lowest_score() -> None:
    assert min_max([3.0, 2.0, 1.0]) == [1.0, 0.5, 0.0]
    assert min_max([2.0, 2.0]) == [1.0, 1.0]
    assert z_score([3.0, 1.0]) == [1.0, -1.0]
    assert z_score([]) == []
    dense = [passage(1, 0.9), passage(2, 0.8), passage(3, 0.1)]
    keyword = [passage(3, 30.0), passage(4, 12.0), passage(1, 10.0)]

    fused = normalised_sum(min_max, 0.5)(dense, keyword)

    # 1: (1 + 0) / 2; 3: (0 + 1) / 2; 2: (7/8 + 0) / 2, its missing keyword score the lowest (0).
    assert ids(fused) == [1, 3, 2, 4]
    assert [h.score for h in fused] == pytest.approx([0.5, 0.5, 7 / 16, 0.05])
    # The library's fusion is this one, at even weights.
    library = fuse([dense, keyword])
    assert ids(library) == ids(fused)
    assert [h.score for h in library] == pytest.approx([h.score for h in fused])


def test_fusion_variants_cover_every_family_and_depth_once() -> None:
    variants = fusion_variants()
    keys = [(v.name, v.depth) for v in variants]

    assert len(set(keys)) == len(keys)
    assert BASELINE_FUSION in keys and ("rrf k=8", 50) in keys
    assert {v.name.split(" ")[0] for v in variants} == {"rrf", "min-max", "z-score"}
    assert shipped_fusion().name == SHIPPED_FUSION


def run_with_rankings(name: str, depth: int = 50) -> ManualRun:
    """A manual of two questions: the answer is the dense first, absent from the keyword
    list, while 10 passages both rankings hold sit from 11th place down in each."""
    run = run_of(name, 0, 2)
    shared = [passage(100 + i) for i in range(10)]
    for q in run.questions:
        lone = passage(1, text="the answer is here")
        dense = [lone, *(passage(200 + i) for i in range(9)), *shared]
        keyword = [*(passage(300 + i) for i in range(10)), *shared]
        run.rankings.setdefault(depth, {})[q.id] = (dense, keyword)
    return run


def test_fusions_are_judged_per_manual_and_compared_before_and_after() -> None:
    runs = [run_with_rankings("alpha"), run_with_rankings("beta")]
    fusions = [Fusion("rrf k=60", 50, rrf(60)), Fusion(SHIPPED_FUSION, 50, rrf(8))]

    before, after = evaluate_fusions(runs, fusions, 5)

    assert before.mean.recall == 0.0
    assert before.outcomes["alpha"]["alpha0"].answer_rank is None  # 11th: not in the top 10
    assert after.mean.recall == 1.0 and after.worst[1].recall == 1.0
    table = before_after_table(before, after, 5)
    assert "| alpha | 2 | 0.00 → 1.00 | 0.00 → 1.00 |" in table
    assert "| **mean over manuals** | 4 | 0.00 → 1.00 |" in table
    assert "| **worst: alpha** | 2 |" in table and "worst before" not in table
    assert "| rrf k=60 | 0.000 (0.00) |" in depth_grid_table([before, after], 5)
    markdown = fusion_markdown(
        runs=runs, results=[before, after], k=5, command="python -m bench.retrieval", machine="m"
    )
    assert "best: `library` at depth 50" in markdown


class FakeLibrary:
    """Answers ``search_sources`` with passages numbered by mode, ``top_k`` of them."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    async def search_sources(
        self, scope: str, names: list[str], query: str, *, top_k: int, mode: str = "dense"
    ) -> object:
        self.asked.append((mode, top_k))
        first = 0 if mode == "dense" else 1000
        results = [
            SimpleNamespace(
                passage_id=first + i, source_id=1, document="m.pdf", page=i, last_page=i,
                chunk=i, text=query, score=1.0 / (i + 1),
            )
            for i in range(top_k)
        ]  # fmt: skip
        return SimpleNamespace(results=results)


async def test_rankings_are_searched_anew_at_each_depth() -> None:
    library = FakeLibrary()
    questions = [question("q1"), question("q2")]

    rankings = await fetch_rankings(library, questions, [20, 50])

    assert sorted(set(library.asked)) == [
        ("dense", 20),
        ("dense", 50),
        ("keyword", 20),
        ("keyword", 50),
    ]
    dense, keyword = rankings[50]["q2"]
    assert (len(dense), len(keyword)) == (50, 50)
    assert dense[0].id == 0 and keyword[0].id == 1000 and dense[0].text == "question q2?"


# ---------------------------------------------------------------------------- reranking


def test_sentence_windows_overlap_by_one_and_reach_the_end() -> None:
    text = "One. Two! Three? Four: Five; Six."

    assert sentence_windows(text, 3) == [
        "One. Two! Three?",
        "Three? Four: Five;",
        "Four: Five; Six.",
    ]
    assert sentence_windows("One. Two.", 3) == ["One. Two."]
    assert sentence_windows("Line one\nline two\nline three\nline four", 2)[-1] == (
        "line three line four"
    )


def test_reranking_reorders_the_head_blends_with_fusion_and_keeps_the_tail() -> None:
    candidates = [passage(i, score=s) for i, s in ((1, 1.0), (2, 0.6), (3, 0.5), (4, 0.0))]
    scores = [0.1, 0.9, 0.2]  # the reranker's, for the first three

    assert ids(reranked(candidates, scores, 3, 1.0)) == [2, 3, 1, 4]
    # Half the fusion's scaled score keeps its first above the reranker's runner-up.
    blended = reranked(candidates, scores, 3, 0.5)
    assert ids(blended) == [2, 1, 3, 4]
    assert [h.score for h in blended[:3]] == pytest.approx([0.6, 0.5, 0.0625])


class FirstWordReranker:
    """Scores a passage 1 if it holds the word ``answer``: a reranker that knows."""

    name = "knows"

    async def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        return [float("answer" in t) for t in texts]


async def test_reranks_are_scored_once_and_judged_at_every_depth_and_blend() -> None:
    runs = [run_with_rankings("alpha", HYBRID_DEPTH), run_with_rankings("beta", HYBRID_DEPTH)]
    for run in runs:
        run.rerank = await rerank_data(FirstWordReranker(), run.questions, run.rankings)

    results = {r.fusion.name: r for r in evaluate_reranks(runs, 5)}

    # Fusion puts the ten passages both rankings hold above the answer, the dense first only.
    assert results["library"].mean.recall == 0.0
    assert results["rerank 10"].mean.recall == 0.0  # 11th: too deep for a depth of 10
    assert results["rerank 20"].mean.recall == 1.0
    assert results["rerank 20"].outcomes["beta"]["beta1"].answer_rank == 1
    assert results["rerank 20 blend 0.7"].mean.recall == 1.0
    assert all(len(r.rerank.seconds[40]) == 2 for r in runs if r.rerank)
    assert all(len(r.rerank.seconds[10]) == 2 for r in runs if r.rerank)
    assert "| 40 | 4 |" in rerank_latency_table(runs)
    markdown = rerank_markdown(
        runs=runs,
        results=list(results.values()),
        k=5,
        command="python -m bench.retrieval --rerank",
        machine="m",
    )
    assert "by the reranker, knows," in markdown and "| rerank depth |" in markdown


async def test_the_window_reranker_finds_the_sentence_a_long_passage_answers_with(
    tmp_path: Path,
) -> None:
    embedder = LocalEmbedder(int8_model_file(), cache_dir=tmp_path)
    filler = " ".join(
        f"The {w} module stores its settings in a table that the loader reads at start-up."
        for w in ("font", "colour", "layout", "image", "canvas", "story")
    )
    long_answer = filler + " To encrypt the PDF with a password, pass an encrypt object to the"
    long_answer += " document template. " + filler
    off_topic = "Paragraph styles set the leading, the font size and the space before a heading."
    try:
        reranker = WindowReranker(embedder)
        scores = await reranker.scores(
            "how do I password protect the pdf", [off_topic, long_answer]
        )
        passage_vectors = await embedder.embed(
            ["how do I password protect the pdf", off_topic, long_answer]
        )
    finally:
        await embedder.aclose()

    assert scores[1] > scores[0]
    assert "all-MiniLM-L6-v2" in reranker.name
    # As whole passages the filler drowns the answer: the window is what finds it.
    whole = passage_vectors[1:] @ passage_vectors[0]
    assert scores[1] > float(whole[1])


def counting_cross_encoder(directory: Path, token: str) -> Path:
    """An ONNX "cross-encoder" whose logit counts ``token`` in the pair's second segment, with
    the MiniLM tokenizer: a model whose scores a test can predict."""
    directory.mkdir()
    tokenizer = resources.files("agent.documents") / "models" / LOCAL_MODEL_ID / "tokenizer.json"
    (directory / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    token_id = 20786  # "password" in the bert-base-uncased vocabulary
    assert token == "password"
    ints = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["n", "l"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    nodes = [
        helper.make_node("Constant", [], ["id"], value=helper.make_tensor("", 7, [], [token_id])),
        helper.make_node("Equal", ["input_ids", "id"], ["hit"]),
        helper.make_node("Cast", ["hit"], ["hit64"], to=TensorProto.INT64),
        helper.make_node("Mul", ["hit64", "token_type_ids"], ["second"]),
        helper.make_node("Cast", ["second"], ["float"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("", 7, [1], [1])),
        helper.make_node("ReduceSum", ["float", "axes"], ["logits"], keepdims=1),
    ]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 1])
    graph = helper.make_graph(nodes, "count", ints, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(directory / "model.onnx"))
    return directory


async def test_the_cross_encoder_reads_each_pair_in_one_run_and_truncates_the_passage(
    tmp_path: Path,
) -> None:
    reranker = CrossEncoderReranker(counting_cross_encoder(tmp_path / "ce", "password"))
    texts = [
        "Set a password. The password protects the PDF.",
        "Paragraph styles.",
        "password " * 600,  # past 512 word pieces: cut, the query kept whole
    ]

    scores = await reranker.scores("password protect the pdf", texts)

    # The query's own "password" is in the first segment and does not count.
    # [CLS] 4 query pieces [SEP] passage [SEP]: 505 of the 600 passwords fit in 512.
    assert scores == [2.0, 0.0, 512.0 - 3 - 4]
    assert await reranker.scores("anything", []) == []
    assert reranker.name == "the cross-encoder `ce`"
