"""What the real local model does with a question and its passages, without the agent.

A control for ``bench.real_model``: the same model on the same llama.cpp server, the same
three manuals, the same search (the top 3 passages, what the agent sees in a 4,096-token
window), but one plain request per document question: a short system prompt, the numbered
passages and the question; no tools, no memory, no conversation. Scored like the agent's
turns: the answer key in the reply, a handle of the right page cited, and whether the reply is
only a handle ("[2]"). If the model does no better here, the agent's prompt is not what
holds its answers back.

    python -m bench.real_model --prepare    # once
    python -m bench.plain_rag               # ~10 min on 2 cores; prints a table
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from agent.documents.library import SearchResult
from agent.documents.loads import FileInput
from agent.mind.pointing import only_handles
from bench.real_model import (
    MODEL,
    QUESTIONS,
    SCOPE,
    SERVER,
    Question,
    _fold,
    _settings,
    _source_pdfs,
    llama_server,
    load_questions,
)
from bot.app import open_library

SYSTEM = (
    "You are Archivist, a document assistant. Answer the question using only the numbered"
    " passages. Cite the passage you used by its number, like [2]. Keep it short. If the"
    " passages do not answer it, say so."
)
PASSAGES = 3
CTX = 4096


def _covers(question: Question, result: SearchResult) -> bool:
    pages = question.cites.get(result.source, [])
    return any(result.page <= p <= result.last_page for p in pages)


async def _ask(
    session: aiohttp.ClientSession, root: str, question: Question, results: list[SearchResult]
) -> dict[str, Any]:
    passages = "\n\n".join(
        f"[{n}] ({r.document} p.{r.page}) {r.text}" for n, r in enumerate(results, 1)
    )
    body = {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Passages:\n{passages}\n\nQuestion: {question.question}"},
        ],
        "max_tokens": 300,
        "temperature": 0.2,
    }
    started = time.perf_counter()
    async with session.post(f"{root}/v1/chat/completions", json=body) as response:
        data = await response.json()
    reply = str(data["choices"][0]["message"].get("content") or "")
    cited = [r for n, r in enumerate(results, 1) if f"[{n}]" in reply]
    return {
        "id": question.id,
        "correct": any(_fold(key) in _fold(reply) for key in question.answer),
        "page_right": any(_covers(question, r) for r in cited),
        "only_handle": only_handles(reply) is not None,
        "in_view": any(_covers(question, r) for r in results),
        "seconds": round(time.perf_counter() - started, 1),
        "reply": reply,
    }


async def run() -> list[dict[str, Any]]:
    """Load the manuals, ask each document question once, return the scored rows."""
    header, questions = load_questions(QUESTIONS)
    pdfs = _source_pdfs(header)
    rows = []
    with tempfile.TemporaryDirectory(prefix="plain-rag-") as tmp:
        log = Path(tmp) / "server.log"
        async with llama_server(SERVER, MODEL, CTX, 2, log) as root:
            settings = _settings(f"{root}/v1", Path(tmp) / "data", CTX, 600)
            async with open_library(settings) as library, aiohttp.ClientSession() as session:
                for name, pdf in pdfs.items():
                    await library.load(SCOPE, name, [FileInput(pdf)], created_by="bench")
                for question in (q for q in questions if q.kind == "document"):
                    found = await library.search_sources(
                        SCOPE, list(pdfs), question.question, top_k=PASSAGES
                    )
                    row = await _ask(session, root, question, found.results)
                    rows.append(row)
                    print(json.dumps(row)[:240], flush=True)
    return rows


def main() -> None:
    rows = asyncio.run(run())
    n = len(rows)
    print("| measure | value |\n|---|---|")
    for label, key in (
        ("correct (answer key in the reply)", "correct"),
        ("cited page right", "page_right"),
        ("reply only a handle", "only_handle"),
        ("an expected page among the passages", "in_view"),
    ):
        print(f"| {label} | {sum(bool(r[key]) for r in rows)}/{n} |")


if __name__ == "__main__":
    main()
