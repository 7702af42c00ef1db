"""How fast the Slack adapter acknowledges signed HTTP requests, idle and while a big PDF loads.

The bot runs as in production, ``archivist run`` in its own process (HTTP Events API mode),
against the test suite's fake Slack running here, which signs every request as Slack does.
Acknowledgement latency is the time from the fake sending a request to the bot's HTTP answer.
Requests alternate between ``/sources`` slash commands and plain channel messages (events the
bot acknowledges and ignores). First ``--requests`` on an idle bot, then as many while the
1,151-page C++ Annotations, shared in the channel, loads in the bot's process. Slack allows 3 s.

    python -m bench.slack_ack [--requests 500] [--interval 0.12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from bench._manuals import fetch_manual
from bench._report import latency_table, machine_line, write_section
from tests.fake_slack import FakeSlack

SERVING = re.compile(r"serving Slack events on port (\d+)")


async def port_from_log(stream: asyncio.StreamReader) -> int:
    """Read the bot's log until it says where it listens."""
    async for raw in stream:
        match = SERVING.search(raw.decode())
        if match:
            return int(match[1])
    raise RuntimeError("the bot exited before it was ready")


async def acks(
    fake: FakeSlack, channel: str, user: str, count: int, interval: float
) -> list[float]:
    """Acknowledgement latencies in ms for ``count`` requests, one every ``interval`` s."""
    latencies = []
    for i in range(count):
        if i % 2:
            delivery = await fake.post_message(channel, user, f"chatter {i}")
        else:
            delivery = await fake.command("/sources", "", user=user, channel=channel)
        await delivery.wait_ack(30)
        assert delivery.acked and delivery.ack_seconds is not None, delivery.status
        latencies.append(delivery.ack_seconds * 1000)
        await asyncio.sleep(interval)  # spread the requests over the load, by design
    return latencies


async def main(requests: int, interval: float) -> None:
    """Run the bot, measure idle and under load, and report."""
    manual = fetch_manual("cpp-annotations")
    async with FakeSlack(mode="http") as fake:
        channel = fake.add_channel("docs")
        admin = fake.add_user("admin", admin=True)
        fake.add_command("/sources")
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")},
                "ARCHIVIST_STORAGE_DATA_DIR": tmp,
                "ARCHIVIST_EMBEDDINGS_CACHE_DIR": str(Path(__file__).parent / "data" / "models"),
                "ARCHIVIST_SERVER_PORT": "0",
                "ARCHIVIST_SLACK_API_BASE_URL": fake.api_base,
                "ARCHIVIST_SLACK_HTTP_HOST": "127.0.0.1",
                "ARCHIVIST_SLACK_HTTP_PORT": "0",
                "ARCHIVIST_LOGGING_LEVEL": "INFO",
                "SLACK_BOT_TOKEN": fake.bot_token,
                "SLACK_SIGNING_SECRET": fake.signing_secret,
            }
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, stderr=asyncio.subprocess.PIPE
            )
            assert bot.stderr is not None
            drain: asyncio.Task[bytes] | None = None
            try:
                port = await asyncio.wait_for(port_from_log(bot.stderr), 300)
                fake.events_url = f"http://127.0.0.1:{port}/slack/events"
                drain = asyncio.create_task(bot.stderr.read())  # keep the pipe from filling
                idle = await acks(fake, channel, admin, requests, interval)

                file = fake.add_file(manual.read_bytes(), manual.name, user=admin)
                shared = await fake.post_message(channel, admin, "", files=[file])
                started = time.perf_counter()

                def outcome() -> str | None:
                    for message in fake.bot_messages(channel, thread_ts=shared.ts):
                        if not str(message.get("text", "")).startswith("Loading"):
                            return str(message["text"])
                    return None

                loading = await acks(fake, channel, admin, requests, interval)
                during = outcome() is None
                result = await fake.wait_for(outcome, timeout=3600, what="the load")
                load_s = time.perf_counter() - started
            finally:
                bot.terminate()
                await bot.wait()
                if drain is not None:
                    drain.cancel()

    table = latency_table(
        "requests",
        [("idle", idle), ("while the 1,151-page PDF loads", loading)],
        "p99 <= 100",
    )
    print(table)
    print(f"load: {load_s:.0f} s ({result}); all requests during the load: {during}")
    write_section(
        "Slack acknowledgements",
        f"*{machine_line()}*\n\n"
        "`archivist run` in its own process, HTTP Events API mode, against the fake Slack"
        " (Web API, file server; in the bench's process) which signs each request; latency ="
        " request sent to HTTP answer received. Requests alternate `/sources` commands and"
        f" channel messages, one every {interval:g} s. Under load: the C++ Annotations PDF"
        f" ({manual.stat().st_size // 2**20} MB) shared in the channel, loaded in {load_s:.0f} s"
        f" ({result}); every request was answered"
        f" {'before the load finished' if during else '(the load finished first)'}."
        "\n\n" + table + "\n",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.12)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.interval))
