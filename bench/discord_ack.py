"""How fast the Discord adapter acknowledges slash commands, idle and while a big PDF loads.

The bot runs as it does in production, ``archivist run`` in its own process, pointed at the
test suite's fake Discord (REST, gateway and CDN on 127.0.0.1) running here. Acknowledgement
latency is the time from the fake sending INTERACTION_CREATE to the bot's interaction
callback arriving, both read on this process's clock. Commands alternate between
``/sources`` (answered at once, reading SQLite) and ``/search`` (deferred, then answered).
First ``--commands`` of them on an idle bot, then as many while the 1,151-page C++
Annotations, uploaded to the channel, loads in the bot's process. Discord allows 3 s.

    python -m bench.discord_ack [--commands 200] [--interval 0.3]
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

import discord

from bench._manuals import fetch_manual
from bench._report import latency_table, machine_line, write_section
from tests.fake_discord import FakeDiscord

READY = re.compile(r"connected to Discord as")


async def wait_for_line(stream: asyncio.StreamReader, pattern: re.Pattern[str]) -> None:
    """Read the bot's log until a line matches."""
    async for raw in stream:
        if pattern.search(raw.decode()):
            return
    raise RuntimeError("the bot exited before it was ready")


async def acks(
    fake: FakeDiscord, guild: int, channel: int, user: int, count: int, interval: float
) -> list[float]:
    """Acknowledgement latencies in ms for ``count`` commands, one every ``interval`` s."""
    latencies = []
    for i in range(count):
        if i % 2:
            handle = await fake.slash(guild, channel, user, "search", {"query": f"template {i}"})
        else:
            handle = await fake.slash(guild, channel, user, "sources")
        await handle.response(timeout=30)
        assert handle.answered_at is not None
        latencies.append((handle.answered_at - handle.dispatched_at) * 1000)
        await asyncio.sleep(interval)  # spread the commands over the load, by design
    return latencies


async def main(commands: int, interval: float) -> None:
    """Run the bot, measure idle and under load, and report."""
    manual = fetch_manual("cpp-annotations")
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Bench")
        channel = fake.add_channel(guild, "docs")
        admin_role = fake.add_role(guild, "Admin", discord.Permissions(manage_channels=True).value)
        admin = fake.add_member(guild, "admin", roles=[admin_role])
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")},
                "ARCHIVIST_STORAGE_DATA_DIR": tmp,
                "ARCHIVIST_EMBEDDINGS_CACHE_DIR": str(Path(__file__).parent / "data" / "models"),
                "ARCHIVIST_SERVER_PORT": "0",
                "ARCHIVIST_DISCORD_API_BASE_URL": fake.api_base,
                "ARCHIVIST_DISCORD_GATEWAY_URL": fake.gateway_url,
                "ARCHIVIST_DISCORD_DEV_GUILD_ID": str(guild),
                "ARCHIVIST_LOGGING_LEVEL": "INFO",
                "DISCORD_TOKEN": fake.token,
            }
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, stderr=asyncio.subprocess.PIPE
            )
            assert bot.stderr is not None
            drain: asyncio.Task[bytes] | None = None
            try:
                await asyncio.wait_for(wait_for_line(bot.stderr, READY), 300)
                drain = asyncio.create_task(bot.stderr.read())  # keep the pipe from filling
                idle = await acks(fake, guild, channel, admin, commands, interval)

                attachment = fake.add_attachment(manual.read_bytes(), manual.name)
                upload = await fake.send_message(channel, admin, attachments=[attachment])
                started = time.perf_counter()

                def finished() -> bool:
                    return any(
                        not r["content"].startswith("Loading")
                        for r in fake.replies_to(upload["id"])
                    )

                loading = await acks(fake, guild, channel, admin, commands, interval)
                during = not finished()
                await fake.wait_for(finished, timeout=3600, what="the load")
                load_s = time.perf_counter() - started
                outcome = next(
                    re.sub(r"<#\d+>", "#docs", r["content"])
                    for r in fake.replies_to(upload["id"])
                    if not r["content"].startswith("Loading")
                )
            finally:
                bot.terminate()
                await bot.wait()
                if drain is not None:
                    drain.cancel()

    table = latency_table(
        "commands",
        [("idle", idle), ("while the 1,151-page PDF loads", loading)],
        "p99 <= 100",
    )
    print(table)
    print(f"load: {load_s:.0f} s ({outcome}); all commands during the load: {during}")
    write_section(
        "Discord acknowledgements",
        f"*{machine_line()}*\n\n"
        "`archivist run` in its own process against the fake Discord (REST, gateway, CDN on"
        " 127.0.0.1, in the bench's process); latency = INTERACTION_CREATE sent to interaction"
        f" callback received. Commands alternate `/sources` and `/search`, one every"
        f" {interval:g} s. Under load: the C++ Annotations PDF ({manual.stat().st_size // 2**20}"
        f" MB) uploaded to the channel, loaded in {load_s:.0f} s ({outcome!s}); every command"
        f" was answered {'before the load finished' if during else '(the load finished first)'}."
        "\n\n" + table + "\n",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.3)
    args = parser.parse_args()
    asyncio.run(main(args.commands, args.interval))
