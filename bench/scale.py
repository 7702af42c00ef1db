"""Replicas on one machine: answers per second and turn overhead with 1, 2 and 4 processes.

Real ``archivist run`` processes share one PostgreSQL (state) and one Milvus server, behind a
fake Slack that delivers HTTP events to them round-robin, as a load balancer would. A fake
OpenAI-compatible model answers every call after a fixed latency with ``send_message``. Each
round sends ``--messages`` mentions spread over ``--conversations`` channels, all at once or
``--rate`` a second, and times each from delivery to its answer in the channel. Turn overhead
is that time minus the model's latency (one call per turn), so it holds queueing, the bot's
work, the conversation lock and Slack's round trips; bot CPU per turn is the replicas' CPU
seconds over the answers.

    python -m bench.scale [--replicas 1,2,4] [--messages 200] [--conversations 50]
        [--latency 0.5] [--rate 0] [--json FILE] [--no-write]

On 2 cores the processes share the same CPUs, so this measures what sharing the state costs
and how turns spread, not how a cluster of machines scales (docs/scaling.md does that on paper
with these figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from adapters.live import WRITING_MARK
from bench._report import machine_line, percentile, write_section
from tests.fake_openai import FakeOpenAI, chat_completion
from tests.fake_slack import Delivery, FakeSlack
from tests.milvus_server import MilvusServerProcess, free_port
from tests.postgres_server import PostgresServerProcess

SECTION = "Scaling out: replicas on one machine"


@dataclass(frozen=True)
class Round:
    """One configuration's results."""

    replicas: int
    messages: int
    conversations: int
    latency: float
    wall: float
    answers_per_s: float
    p50_overhead: float
    p99_overhead: float
    max_overhead: float
    lost: int
    rate: float
    cpu_ms_per_turn: float


class Replica:
    """An ``archivist run`` process and its Slack events URL."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.url = ""

    async def ready(self) -> None:
        assert self.process.stderr is not None
        while True:
            line = (await self.process.stderr.readline()).decode()
            if not line:
                raise RuntimeError("a replica exited before serving")
            if "serving Slack events on port" in line:
                port = line.rsplit("port", 1)[1].split()[0]
                self.url = f"http://127.0.0.1:{port}/slack/events"
                break
        # Keep draining its log so that it never blocks on a full pipe.
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        assert self.process.stderr is not None
        while await self.process.stderr.readline():
            pass


def _env(base: dict[str, str], **extra: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ARCHIVIST_", "OPENAI_", "DISCORD_", "SLACK_"))
    }
    return {**clean, **base, **extra}


async def _round(
    replicas: int,
    *,
    messages: int,
    conversations: int,
    latency: float,
    rate: float,
    pg: str,
    milvus: str,
    work: Path,
) -> Round:
    async with FakeOpenAI() as llm, FakeSlack(mode="http") as fake:

        async def answer(body: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(latency)  # the model's fixed latency, by design
            return chat_completion(tool_calls=[("send_message", {"message": "Answered."})])

        llm.respond_with(answer)
        base = {
            "ARCHIVIST_STORAGE_DATABASE_URL": pg,
            "ARCHIVIST_MILVUS_URI": milvus,
            "ARCHIVIST_EMBEDDINGS_CACHE_DIR": str(work / "models"),
            "ARCHIVIST_SERVER_PORT": "0",
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": fake.signing_secret,
            "ARCHIVIST_SLACK_API_BASE_URL": fake.api_base,
            "ARCHIVIST_SLACK_HTTP_HOST": "127.0.0.1",
            "ARCHIVIST_SLACK_HTTP_PORT": "0",
            "ARCHIVIST_LLM_BASE_URL": llm.base_url,
            "ARCHIVIST_LLM_MODEL": "fake-model",
            "OPENAI_API_KEY": "sk-bench-0123456789",
        }
        running: list[Replica] = []
        try:
            for n in range(replicas):
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    env=_env(
                        base,
                        ARCHIVIST_STORAGE_DATA_DIR=str(work / f"r{replicas}-{n}"),
                        ARCHIVIST_LOGGING_LEVEL="INFO",
                    ),
                    stderr=asyncio.subprocess.PIPE,
                )
                replica = Replica(process)
                running.append(replica)
                await replica.ready()
            channels = [fake.add_channel(f"c{n}") for n in range(conversations)]
            user = fake.add_user("bench")
            sent: list[tuple[Delivery, str, float]] = []
            done: dict[int, float] = {}

            def all_answered() -> bool:
                # Checked each time the fake records a call, so an answer is timed as it lands.
                now = time.perf_counter()
                for index, (delivery, channel, _) in enumerate(sent):
                    if index in done:
                        continue
                    replies = fake.bot_messages(channel, thread_ts=delivery.ts)
                    if any(not str(m.get("text", "")).endswith(WRITING_MARK) for m in replies):
                        done[index] = now
                return len(done) == messages

            watching = asyncio.create_task(
                fake.wait_for(all_answered, timeout=600, what="every answer")
            )
            cpu_before = sum(_cpu_seconds(r.process.pid) for r in running)
            started = time.perf_counter()
            for n in range(messages):
                if rate > 0:  # paced: message n is due at n / rate
                    await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                fake.events_url = running[n % replicas].url
                channel = channels[n % conversations]
                at = time.perf_counter()
                sent.append((await fake.mention(channel, user, f"question {n}"), channel, at))
            lost = 0
            try:
                await watching
            except TimeoutError:
                lost = len(sent) - len(done)
            wall = max(done.values(), default=started) - started
            overheads = sorted(done[i] - sent[i][2] - latency for i in done)
            cpu = sum(_cpu_seconds(r.process.pid) for r in running) - cpu_before
        finally:
            for replica in running:
                replica.process.terminate()
            await asyncio.gather(*(r.process.wait() for r in running))
    return Round(
        replicas,
        messages,
        conversations,
        latency,
        wall,
        len(done) / wall if wall else 0.0,
        statistics.median(overheads) if overheads else 0.0,
        percentile(overheads, 99) if overheads else 0.0,
        overheads[-1] if overheads else 0.0,
        lost,
        rate,
        cpu / max(1, len(done)) * 1000,
    )


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(rounds: Sequence[Round], command: str) -> str:
    rows = [
        "| replicas | messages | conversations | sent per s | model latency s | wall s |"
        " answers/s | p50 overhead ms | p99 overhead ms | max ms | bot CPU ms per turn |"
        " unanswered |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {r.replicas} | {r.messages} | {r.conversations} |"
        f" {'all at once' if r.rate <= 0 else f'{r.rate:g}'} | {r.latency:.2f} | {r.wall:.1f} |"
        f" {r.answers_per_s:.1f} | {r.p50_overhead * 1000:.0f} | {r.p99_overhead * 1000:.0f} |"
        f" {r.max_overhead * 1000:.0f} | {r.cpu_ms_per_turn:.1f} | {r.lost} |"
        for r in rounds
    ]
    return "\n\n".join(
        [
            machine_line(),
            "\n".join(rows),
            "Overhead: from the event's delivery to the answer in the channel, minus the model's"
            " latency (one call per turn). Each conversation's turns run one at a time across"
            " replicas (PostgreSQL advisory lock), so a conversation's later messages queue"
            " behind its earlier ones: with M messages over C conversations the last of a"
            " conversation waits about (M / C - 1) x latency, which is in the overhead.",
            f"Reproduce: `{command}`",
        ]
    )


async def main_async(args: argparse.Namespace) -> list[Round]:
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        work = Path(folder)
        with PostgresServerProcess() as pg, MilvusServerProcess(work / "milvus", free_port()) as mv:
            for replicas in args.replicas:
                db = f"scale{replicas}"
                await _create_database(pg.url(), db)
                result = await _round(
                    replicas,
                    messages=args.messages,
                    conversations=args.conversations,
                    latency=args.latency,
                    rate=args.rate,
                    pg=pg.url(db),
                    milvus=mv.uri,
                    work=work,
                )
                print(result, file=sys.stderr, flush=True)
                rounds.append(result)
    return rounds


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--replicas", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--conversations", type=int, default=50)
    p.add_argument("--latency", type=float, default=0.5)
    p.add_argument(
        "--rate", type=float, default=0.0, help="messages sent per second; 0: all at once"
    )
    p.add_argument("--json", type=Path, help="append the rounds here (to render several runs)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    rounds = asyncio.run(main_async(args))
    if args.json:
        saved = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(saved + [asdict(r) for r in rounds]))
        rounds = [Round(**r) for r in saved] + rounds
    body = report(rounds, "python -m bench.scale " + " ".join(sys.argv[1:]))
    print(body)
    if not args.no_write:
        print(f"\nwrote {write_section(SECTION, body)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
