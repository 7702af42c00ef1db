"""Bot overhead per turn, excluding the language model, and many conversations at once.

A fake OpenAI-compatible server (the test suite's) answers every request after a fixed
latency; each turn is one ``archival_memory_search`` with a heartbeat, then ``send_message``.
The overhead of a turn is its wall time minus the time spent inside the model's calls (the
HTTP round trips included), measured around the LLM seam.

    python -m bench.turns [--turns 200] [--latency 0.2] [--concurrent 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from pydantic import SecretStr

from agent.documents.loads import FileInput
from agent.mind.llm import LLM, Completion, DeltaSink
from agent.mind.loop import Incoming
from bench._report import machine_line, percentile, write_section
from bot.app import open_core
from bot.config import load_settings
from tests import pdfs
from tests.fake_openai import FakeOpenAI, chat_completion


class TimedLLM:
    """The configured LLM, with the time spent inside it added up."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.spent = 0.0

    @property
    def model(self) -> str:
        """The wrapped model's name."""
        return self.inner.model

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int | None = None,
        on_delta: DeltaSink | None = None,
    ) -> Completion:
        """Time one completion."""
        started = time.perf_counter()
        try:
            return await self.inner.complete(
                messages, tools, max_tokens=max_tokens, on_delta=on_delta
            )
        finally:
            self.spent += time.perf_counter() - started

    async def context_window(self) -> int | None:
        """The wrapped model's server window."""
        return await self.inner.context_window()

    async def ping(self) -> None:
        """Ping the wrapped model."""
        await self.inner.ping()

    async def aclose(self) -> None:
        """Close the wrapped client."""
        await self.inner.aclose()


async def main(turns: int, latency: float, concurrent: int) -> None:
    """Run the measurements and report them."""
    async with FakeOpenAI() as fake:

        async def respond(body: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(latency)  # the model's fixed latency, by design of the bench
            if body["messages"][-1]["role"] == "tool":
                return chat_completion(tool_calls=[("send_message", {"message": "It is [1]."})])
            return chat_completion(
                tool_calls=[
                    ("archival_memory_search", {"query": "frequency", "request_heartbeat": True})
                ]
            )

        fake.respond_with(respond)
        with tempfile.TemporaryDirectory() as tmp:
            base = load_settings()
            settings = base.model_copy(
                update={
                    "storage": base.storage.model_copy(update={"data_dir": Path(tmp)}),
                    "llm": base.llm.model_copy(
                        update={"base_url": fake.base_url, "api_key": SecretStr("sk-bench")}
                    ),
                    "embeddings": base.embeddings.model_copy(
                        update={"cache_dir": Path(__file__).parent / "data" / "models"}
                    ),
                }
            )
            timed: list[TimedLLM] = []

            def wrap(llm: LLM) -> LLM:
                timed.append(TimedLLM(llm))
                return timed[0]

            async with open_core(settings, wrap_llm=wrap) as core:
                manual = pdfs.make_manual_pdf(Path(tmp) / "manual.pdf", 30)
                await core.load("console:bench:c0", "global", "manual", [FileInput(manual)], by="b")
                llm = timed[0]
                overheads: list[float] = []
                for i in range(turns):
                    before, started = llm.spent, time.perf_counter()
                    await core.ask(Incoming("console:bench:c0", "global", f"question {i}"))
                    wall = time.perf_counter() - started
                    overheads.append((wall - (llm.spent - before)) * 1000)
                for i in range(concurrent):
                    await core.attach(f"console:bench:c{i}", "global", "manual", by="b")
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        core.ask(Incoming(f"console:bench:c{i}", "global", "question"))
                        for i in range(concurrent)
                    )
                )
                together = time.perf_counter() - started

    p50, p99 = percentile(overheads, 50), percentile(overheads, 99)
    rtt = 2 * latency
    rows = [
        ("turn overhead p50 (ms)", f"{p50:.1f}", "<= 5"),
        ("turn overhead p99 (ms)", f"{p99:.1f}", "<= 20"),
        ("turn overhead mean (ms)", f"{statistics.mean(overheads):.1f}", ""),
        (f"{concurrent} conversations at once (s)", f"{together:.2f}", f"about {rtt:.1f}"),
    ]
    table = "| measure | value | target |\n|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} |" for a, b, c in rows
    )
    print(table)
    write_section(
        "Agent turns",
        f"*{machine_line()}*\n\n"
        f"{turns} sequential turns, each one archival search (heartbeat) then send_message,"
        f" against a fake LLM answering after {latency * 1000:.0f} ms per call (two calls per"
        " turn, so one turn's model round trips take"
        f" {rtt:.1f} s); overhead = wall time minus time inside the model's calls. Then"
        f" {concurrent} conversations asked at once. Milvus Lite, the local embedder, a"
        " 30-page manual attached. Every search asks the same query, so after the first turn"
        " its vector comes from the library's cache of recent query vectors: a new query adds"
        " its embedding, ~3 ms.\n\n" + table + "\n",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrent", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.latency, args.concurrent))
