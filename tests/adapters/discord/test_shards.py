"""Discord sharded across processes: each runs its shards and is sent only their guilds, so
every guild is served (and every question answered) by exactly one of them."""

from __future__ import annotations

from contextlib import AsyncExitStack

from bot.app import open_runtime
from bot.config import Settings
from tests.adapters.discord.conftest import serving, written
from tests.conftest import with_llm
from tests.fake_discord import FakeDiscord
from tests.fake_openai import FakeOpenAI, chat_completion

SHARDS = 2


def shard_of(guild: int) -> int:
    return (guild >> 22) % SHARDS


async def test_each_guild_is_served_by_the_process_running_its_shard(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    async with FakeDiscord() as fake, open_runtime(with_llm(settings, fake_openai)) as runtime:
        # Ids are the fake's (time-based): add guilds until both shards have one.
        on_shard: dict[int, set[int]] = {}
        while len(on_shard) < SHARDS:
            guild = fake.add_guild("Library")
            on_shard.setdefault(shard_of(guild), set()).add(guild)
        guilds = {shard: min(ids) for shard, ids in on_shard.items()}
        channels = {shard: fake.add_channel(guild, "docs") for shard, guild in guilds.items()}
        members = {shard: fake.add_member(guild, "bob") for shard, guild in guilds.items()}
        async with AsyncExitStack() as stack:
            adapters = [
                await stack.enter_async_context(
                    serving(
                        fake,
                        runtime.core,
                        guilds[shard],
                        {"shard_count": SHARDS, "shard_ids": (shard,)},
                    )
                )
                for shard in range(SHARDS)
            ]
            assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
            for shard, adapter in enumerate(adapters):
                assert {g.id for g in adapter.bot.guilds} == on_shard[shard]

            fake_openai.respond_with(lambda body: chat_completion("Served here."))
            asked = {
                shard: await fake.send_message(
                    channels[shard], members[shard], f"<@{fake.bot_id}> who serves this guild?"
                )
                for shard in range(SHARDS)
            }
            for shard, message in asked.items():
                await fake.wait_for(
                    lambda m=message: written(fake.replies_to(m["id"])),
                    what=f"the answer on shard {shard}",
                )
                replies = written(fake.replies_to(message["id"]))
                assert [r["content"] for r in replies] == ["Served here."]
            assert len(fake_openai.requests) == SHARDS
