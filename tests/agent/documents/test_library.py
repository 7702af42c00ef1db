"""The library end to end on real SQLite, real Milvus (Lite and server) and the real model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.documents.embed import Vectors
from agent.documents.library import Library
from agent.documents.links import Links
from agent.documents.loads import FileInput
from agent.errors import EmbeddingMismatch, SourceNotFound
from tests import pdfs
from tests.agent.documents.helpers import SCOPE, _passages_in_archive
from tests.agent.documents.test_registry import INJECTIONS


async def test_load_list_search_with_the_right_page_then_delete(
    library: Library, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 12)
    report = await library.load(SCOPE, "manual", [FileInput(manual)], created_by="test")
    assert report.failed == []
    assert report.summary().startswith("Loaded ")
    assert "from 12 pages (1 file) into source 'manual'" in report.summary()

    [source] = await library.sources()
    assert (source.name, source.status, source.files, source.pages) == ("manual", "ready", 1, 12)
    assert source.passages == report.loaded[0].passages > 0
    assert await _passages_in_archive(library, source.id) == source.passages

    for page in (3, 7, 12):
        found = await library.search_sources(SCOPE, ["manual"], pdfs.manual_marker(page), top_k=5)
        best = found.results[0]
        assert best.page == page, best
        assert pdfs.manual_marker(page) in best.text
        assert (best.document, best.source) == ("manual.pdf", "manual")
        assert found.total == source.passages

    await library.delete(SCOPE, "manual")
    assert await library.sources() == []
    assert await _passages_in_archive(library, source.id) == 0
    with pytest.raises(SourceNotFound):
        await library.search_sources(SCOPE, ["manual"], "frequency")


async def test_paging_reports_the_true_total(library: Library, tmp_path: Path) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)
    await library.load(SCOPE, "manual", [FileInput(manual)], created_by="test")
    first = await library.search_sources(SCOPE, ["manual"], "calibration", top_k=2, page=0)
    second = await library.search_sources(SCOPE, ["manual"], "calibration", top_k=2, page=1)
    [source] = await library.sources()
    assert first.total == second.total == source.passages >= 6
    assert first.pages == math.ceil(first.total / 2)
    assert [r.rank for r in second.results] == [3, 4]
    assert not {r.chunk for r in first.results} & {r.chunk for r in second.results}


async def test_paging_embeds_the_query_once(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)
    await library.load(SCOPE, "manual", [FileInput(manual)], created_by="test")
    embedder = library._embedder
    embedded: list[str] = []
    embed = embedder.embed

    async def counted(texts: Sequence[str]) -> Vectors:
        embedded.extend(texts)
        return await embed(texts)

    monkeypatch.setattr(embedder, "embed", counted)
    pages = [
        await library.search_sources(SCOPE, ["manual"], "calibration", top_k=2, page=page)
        for page in (0, 1, 0)
    ]
    assert embedded == ["calibration"]
    assert pages[0] == pages[2] and pages[0].results != pages[1].results
    await library.search_sources(SCOPE, ["manual"], "frequency", top_k=2, mode="dense")
    assert embedded == ["calibration", "frequency"]


async def test_workspaces_are_isolated(library: Library, tmp_path: Path) -> None:
    one = pdfs.make_pdf(tmp_path / "one.pdf", ["The password of guild one is heliotrope."])
    two = pdfs.make_pdf(tmp_path / "two.pdf", ["The password of guild two is marmalade."])
    await library.load("discord:1", "guide", [FileInput(one)], created_by="test")
    await library.load("discord:2", "guide", [FileInput(two)], created_by="test")

    await library.links.attach("discord:1:10", "discord:1", "guide", by="test")
    found = await library.search_attached("discord:1:10", "what is the password?", top_k=10)
    assert [r.document for r in found.results] == ["one.pdf"]

    with pytest.raises(SourceNotFound):
        await library.links.attach("discord:3:30", "discord:3", "guide", by="test")
    nothing = await library.search_attached("discord:3:30", "what is the password?")
    assert nothing.results == [] and nothing.total == 0


async def test_an_agent_searches_only_what_is_attached(library: Library, tmp_path: Path) -> None:
    a = pdfs.make_pdf(tmp_path / "a.pdf", ["Apples grow on trees in the orchard."])
    b = pdfs.make_pdf(tmp_path / "b.pdf", ["Bananas grow on large herbaceous plants."])
    await library.load(SCOPE, "a", [FileInput(a)], created_by="test")
    await library.load(SCOPE, "b", [FileInput(b)], created_by="test")
    key = "console:local:default"
    source, new = await library.links.attach(key, SCOPE, "a", by="test")
    assert new and source.name == "a"
    assert (await library.links.attach(key, SCOPE, "a", by="test"))[1] is False
    found = await library.search_attached(key, "what grows on plants?", top_k=10)
    assert {r.source for r in found.results} == {"a"}
    await library.links.detach(key, SCOPE, "a")
    assert (await library.search_attached(key, "what grows?")).results == []


@pytest.mark.parametrize("name", INJECTIONS)
async def test_crafted_source_names_find_nothing(
    library: Library, tmp_path: Path, name: str
) -> None:
    secret = pdfs.make_pdf(tmp_path / "secret.pdf", ["Another workspace's secret plan."])
    await library.load("slack:T2", "secret", [FileInput(secret)], created_by="test")
    with pytest.raises(SourceNotFound, match="No such source"):
        await library.search_sources("slack:T1", [name], "secret plan")
    with pytest.raises(SourceNotFound, match="No such source"):
        await library.links.attach("slack:T1:C1", "slack:T1", name, by="test")


async def test_a_source_from_another_embedding_model_is_refused(library: Library) -> None:
    await library.registry.open_for_loading(
        SCOPE, "old", model="text-embedding-3-small", dim=1536, created_by="test"
    )
    with pytest.raises(EmbeddingMismatch, match="text-embedding-3-small"):
        await library.links.attach("console:local:default", SCOPE, "old", by="test")


async def test_links_without_the_models_dimension_judge_by_its_name(library: Library) -> None:
    # The command line links sources beside a running bot without loading the model: it knows
    # the configured model's name, not (for an OpenAI-compatible one) its dimension.
    await library.registry.open_for_loading(
        SCOPE, "old", model="text-embedding-3-small", dim=1536, created_by="test"
    )
    same_name = Links(library.registry, model_id="text-embedding-3-small", dim=None)
    other = Links(library.registry, model_id="all-MiniLM-L6-v2", dim=None)
    _, new = await same_name.attach("console:local:default", SCOPE, "old", by="test")
    assert new
    with pytest.raises(EmbeddingMismatch) as refused:
        await other.attach("console:local:here", SCOPE, "old", by="test")
    assert str(refused.value).startswith(
        "Source 'old' was embedded with text-embedding-3-small (1536 dimensions) but the"
        " configured model is all-MiniLM-L6-v2: load it into a new source"
    )
