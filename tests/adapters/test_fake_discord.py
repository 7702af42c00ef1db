"""The fake Discord works with the real discord.py client, over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from discord import app_commands

from tests.fake_discord import EPHEMERAL, HAS_THREAD, LOADING, MESSAGE_CONTENT, FakeDiscord

TOPICS = ["astronomy", "astrology", "botany", "history"]


def _intents(*, message_content: bool = True) -> discord.Intents:
    intents = discord.Intents.default()
    intents.members = True
    intents.message_content = message_content
    return intents


class ConfirmView(discord.ui.View):
    """A persistent view: its button is routed by custom_id, whatever the message."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Delete", custom_id="archivist:confirm")
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.edit_message(content="Deleted.", view=None)


class StubBot(discord.Client):
    """A small bot using the discord.py features the Archivist adapter relies on."""

    def __init__(self, guild_id: int, *, intents: discord.Intents | None = None) -> None:
        super().__init__(intents=intents or _intents(), guild_ready_timeout=0.05)
        self.seen: list[discord.Message] = []
        self._seen_changed = asyncio.Condition()
        self.tree = app_commands.CommandTree(self)
        guild = discord.Object(guild_id)

        @self.tree.command(guild=guild)
        async def ask(interaction: discord.Interaction, question: str) -> None:
            """Ask a question privately."""
            can_manage = interaction.permissions.manage_messages
            await interaction.response.send_message(
                f"{question}? (manage: {can_manage})", ephemeral=True
            )

        @self.tree.command(guild=guild)
        async def slow(interaction: discord.Interaction, topic: str) -> None:
            """Think, then answer."""
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(f"done: {topic}")

        @self.tree.command(guild=guild)
        async def search(interaction: discord.Interaction, topic: str) -> None:
            """Search a topic."""
            await interaction.response.send_message(topic)

        @search.autocomplete("topic")
        async def complete_topic(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=t, value=t) for t in TOPICS if t.startswith(current)]

        @self.tree.command(guild=guild)
        async def ingest(interaction: discord.Interaction, file: discord.Attachment) -> None:
            """Read an uploaded document."""
            await interaction.response.defer(ephemeral=True, thinking=True)
            data = await file.read()
            digest = hashlib.sha256(data).hexdigest()[:12]
            await interaction.followup.send(f"{file.filename}: {len(data)} bytes, {digest}")

        @self.tree.command(guild=guild)
        async def forget(interaction: discord.Interaction) -> None:
            """Ask for a confirmation with a button."""
            await interaction.response.send_message("Delete everything?", view=ConfirmView())

    async def setup_hook(self) -> None:
        self.add_view(ConfirmView())

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every IDENTIFY but the first, to respect
        # Discord's identify rate limit; the fake has none.
        pass

    async def on_message(self, message: discord.Message) -> None:
        async with self._seen_changed:
            self.seen.append(message)
            self._seen_changed.notify_all()
        if message.author != self.user and self.user in message.mentions:
            async with message.channel.typing():
                await message.reply(f"pong: {message.clean_content}")

    async def wait_until_seen(self, message_id: int | str) -> discord.Message:
        """The message with this id, once ``on_message`` has received it."""

        def found() -> discord.Message | None:
            return next((m for m in self.seen if str(m.id) == str(message_id)), None)

        async with self._seen_changed:
            message: discord.Message = await asyncio.wait_for(
                self._seen_changed.wait_for(found), timeout=10
            )
            return message

    def times_seen(self, message_id: int | str) -> int:
        """How many times ``on_message`` received the message."""
        return sum(1 for m in self.seen if str(m.id) == str(message_id))


@dataclass
class World:
    fake: FakeDiscord
    bot: StubBot
    guild: int
    channel: int
    alice: int


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Library")
        channel = fake.add_channel(guild, "general")
        librarian = fake.add_role(
            guild, "Librarian", discord.Permissions(manage_messages=True).value
        )
        alice = fake.add_member(guild, "alice", roles=[librarian])
        bot = StubBot(guild)
        async with fake.connected(bot):
            await bot.tree.sync(guild=discord.Object(guild))
            yield World(fake, bot, guild, channel, alice)
        assert bot.is_closed()
        assert fake.unknown_routes == []
        assert fake.errors == []


async def test_the_client_connects_and_sees_the_guild(world: World) -> None:
    fake, bot = world.fake, world.bot
    guild = bot.get_guild(world.guild)
    assert guild is not None and guild.name == "Library"
    assert bot.get_channel(world.channel) is not None
    alice = guild.get_member(world.alice)
    assert alice is not None and alice.name == "alice"
    assert bot.user is not None and bot.user.id == fake.bot_id
    assert len(fake.identifies) == 1
    assert fake.identifies[0]["intents"] == _intents().value
    assert fake.gateway_queries[0]["compress"] == "zlib-stream"
    ready = fake.gateway_events("READY")[0]["d"]
    assert ready["resume_gateway_url"] == fake.gateway_url


async def test_a_mention_gets_a_reply_after_typing(world: World) -> None:
    fake = world.fake
    asked = await fake.send_message(world.channel, world.alice, f"<@{fake.bot_id}> ping")

    replies = await fake.wait_for(lambda: fake.replies_to(asked["id"]))

    (reply,) = replies
    assert reply["content"] == "pong: @Archivist ping"
    assert reply["type"] == 19
    assert reply["message_reference"]["message_id"] == asked["id"]
    assert reply["referenced_message"]["content"] == asked["content"]
    # No allowed_mentions sent: Discord pings the replied-to author by default.
    assert fake.allowed_mentions(reply["id"]) is None
    assert [m["id"] for m in reply["mentions"]] == [str(world.alice)]
    assert fake.typing(world.channel) == 1
    # Like Discord, the fake shows the bot its own message.
    await world.bot.wait_until_seen(reply["id"])


async def test_a_slash_command_answers_ephemerally(world: World) -> None:
    fake = world.fake
    interaction = await fake.slash(
        world.guild, world.channel, world.alice, "ask", {"question": "why"}
    )

    callback = await interaction.response()

    assert callback["type"] == 4
    assert callback["data"]["flags"] == EPHEMERAL
    original = interaction.original
    assert original is not None
    # The permissions come from alice's Librarian role.
    assert original["content"] == "why? (manage: True)"
    assert original["flags"] & EPHEMERAL
    assert original in fake.messages(world.channel)
    assert world.bot.times_seen(original["id"]) == 0


async def test_a_deferred_command_is_finished_by_a_followup(world: World) -> None:
    fake = world.fake
    interaction = await fake.slash(world.guild, world.channel, world.alice, "slow", {"topic": "x"})

    assert (await interaction.response())["type"] == 5
    followup = await interaction.followup()

    # The first follow-up replaces the "thinking…" message.
    assert followup["content"] == "done: x"
    assert followup["id"] == str(interaction.original_id)
    versions = fake.edits(followup["id"])
    assert [v["flags"] & LOADING for v in versions] == [LOADING, 0]
    assert [m["content"] for m in fake.bot_messages(world.channel)] == ["done: x"]


async def test_autocomplete_returns_the_bots_choices(world: World) -> None:
    fake = world.fake
    choices = await fake.autocomplete(
        world.guild, world.channel, world.alice, "search", {"topic": "astr"}, focused="topic"
    )
    assert [c["value"] for c in choices] == ["astronomy", "astrology"]


async def test_a_button_press_is_routed_by_custom_id(world: World) -> None:
    fake = world.fake
    command = await fake.slash(world.guild, world.channel, world.alice, "forget")
    await command.response()
    prompt = command.original
    assert prompt is not None

    press = await fake.click(
        world.guild, world.channel, world.alice, prompt["id"], "archivist:confirm"
    )

    assert (await press.response())["type"] == 7
    versions = fake.edits(prompt["id"])
    assert [v["content"] for v in versions] == ["Delete everything?", "Deleted."]
    assert versions[0]["components"] and not versions[1]["components"]


async def test_a_disabled_button_cannot_be_pressed(world: World) -> None:
    channel = world.bot.get_channel(world.channel)
    assert isinstance(channel, discord.TextChannel)
    view = ConfirmView()
    for item in view.children:
        assert isinstance(item, discord.ui.Button)
        item.disabled = True
    sent = await channel.send("Too late to delete.", view=view)

    with pytest.raises(ValueError, match="disabled"):
        await world.fake.click(
            world.guild, world.channel, world.alice, sent.id, "archivist:confirm"
        )


async def test_a_guild_sync_is_recorded(world: World) -> None:
    fake = world.fake
    path = rf"/applications/{fake.application_id}/guilds/{world.guild}/commands"
    (sync,) = fake.find_requests("PUT", path)
    assert sync.status == 200
    names = {command["name"] for command in fake.commands(world.guild)}
    assert names == {"ask", "slow", "search", "ingest", "forget"}
    assert fake.commands() == []


async def test_an_attachment_is_read_from_the_cdn(world: World) -> None:
    fake = world.fake
    data = b"%PDF-1.4 fake document"
    attachment = fake.add_attachment(data, "notes.pdf")

    interaction = await fake.slash(
        world.guild, world.channel, world.alice, "ingest", {"file": attachment}
    )
    followup = await interaction.followup()

    digest = hashlib.sha256(data).hexdigest()[:12]
    assert followup["content"] == f"notes.pdf: {len(data)} bytes, {digest}"
    assert followup["flags"] & EPHEMERAL
    assert fake.cdn_requests == [f"/attachments/0/{attachment['id']}/notes.pdf"]


async def test_an_upload_is_stored_and_served(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_channel(world.channel)
    assert isinstance(channel, discord.TextChannel)

    sent = await channel.send("report", file=discord.File(io.BytesIO(b"hello"), "report.txt"))

    (request,) = fake.find_requests("POST", rf"/channels/{world.channel}/messages")
    assert request.files == ("report.txt",)
    assert request.json["content"] == "report"
    assert sent.attachments[0].content_type == "text/plain; charset=utf-8"
    assert await sent.attachments[0].read() == b"hello"


async def test_a_reconnect_resumes_and_replays_missed_events_once(world: World) -> None:
    fake, bot = world.fake, world.bot
    async with fake.gateway_held():
        await fake.reconnect()
        missed = await fake.send_message(world.channel, world.alice, "while you were away")

    await fake.wait_for(lambda: fake.resumes == 1)
    await bot.wait_until_seen(missed["id"])

    assert len(fake.identifies) == 1
    resumes = [p for p in fake.gateway_payloads if p["op"] == 6]
    assert len(resumes) == 1
    assert resumes[0]["d"]["session_id"] == fake.gateway_events("READY")[0]["d"]["session_id"]
    # Still connected: a new message arrives, and the missed one was seen exactly once.
    after = await fake.send_message(world.channel, world.alice, "welcome back")
    await bot.wait_until_seen(after["id"])
    assert bot.times_seen(missed["id"]) == 1
    assert (
        len([e for e in fake.gateway_events("MESSAGE_CREATE") if e["d"]["id"] == missed["id"]]) == 1
    )


async def test_a_reply_to_a_deleted_message_is_refused_unless_it_may_be_plain(
    world: World,
) -> None:
    fake = world.fake
    asked = await fake.send_message(world.channel, world.alice, "soon gone")
    message = await world.bot.wait_until_seen(asked["id"])
    await fake.delete_message(asked["id"])

    with pytest.raises(discord.HTTPException) as refused:
        await message.reply("too late")
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "In message_reference: Unknown message" in refused.value.text

    plain = await message.channel.send(
        "still said", reference=message.to_reference(fail_if_not_exists=False)
    )
    assert plain.reference is None and plain.type is discord.MessageType.default
    [posted] = fake.bot_messages(world.channel)
    assert "message_reference" not in posted and posted["mentions"] == []
    [deleted] = fake.gateway_events("MESSAGE_DELETE")
    assert deleted["d"]["id"] == asked["id"]


async def test_a_message_can_be_delivered_again(world: World) -> None:
    fake, bot = world.fake, world.bot
    posted = await fake.send_message(world.channel, world.alice, "once or twice")
    await bot.wait_until_seen(posted["id"])

    await fake.redeliver(posted["id"])
    after = await fake.send_message(world.channel, world.alice, "next")
    await bot.wait_until_seen(after["id"])

    assert bot.times_seen(posted["id"]) == 2
    assert [m["content"] for m in fake.messages(world.channel)] == ["once or twice", "next"]


async def test_a_rate_limited_send_is_retried_and_lands_once(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_channel(world.channel)
    assert isinstance(channel, discord.TextChannel)
    path = rf"/channels/{world.channel}/messages"
    fake.fail_next("POST", path, status=429, retry_after=0.05)

    sent = await channel.send("hello")
    await sent.edit(content="hello, edited")

    assert [r.status for r in fake.find_requests("POST", path)] == [429, 200]
    assert [m["content"] for m in fake.bot_messages(world.channel)] == ["hello, edited"]
    assert [v["content"] for v in fake.edits(sent.id)] == ["hello", "hello, edited"]


async def test_message_content_is_hidden_without_the_intent() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Quiet")
        channel = fake.add_channel(guild, "general")
        bob = fake.add_member(guild, "bob")
        bot = StubBot(guild, intents=_intents(message_content=False))
        async with fake.connected(bot):
            plain = await fake.send_message(channel, bob, "just chatting")
            assert (await bot.wait_until_seen(plain["id"])).content == ""
            mention = await fake.send_message(channel, bob, f"<@{fake.bot_id}> hello")
            assert (await bot.wait_until_seen(mention["id"])).content == mention["content"]
            await fake.wait_for(lambda: fake.replies_to(mention["id"]))
        assert fake.errors == []


async def test_a_disallowed_privileged_intent_is_refused() -> None:
    async with FakeDiscord(message_content_allowed=False) as fake:
        guild = fake.add_guild("Strict")
        bot = StubBot(guild)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with fake.connected(bot):
                pass
        assert bot.is_closed()
        assert fake.identifies[0]["intents"] & MESSAGE_CONTENT
        assert fake.unknown_routes == []


async def test_a_thread_started_from_a_message(world: World) -> None:
    fake = world.fake
    asked = await fake.send_message(world.channel, world.alice, "let's discuss")
    channel = world.bot.get_channel(world.channel)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.fetch_message(int(asked["id"]))

    thread = await message.create_thread(name="discussion")
    await thread.send("in the thread")

    # As on Discord, the thread has the id of the message it starts from.
    assert thread.id == message.id and thread.parent_id == world.channel
    assert fake.channels[thread.id].type == 11
    assert fake.message(asked["id"])["flags"] & HAS_THREAD
    assert [m["content"] for m in fake.messages(thread.id)] == ["in the thread"]
    assert [m["content"] for m in fake.messages(world.channel)] == ["let's discuss"]


async def test_discords_limits_are_enforced(world: World) -> None:
    channel = world.bot.get_channel(world.channel)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "2000 or fewer" in too_long.value.text
    with pytest.raises(discord.HTTPException) as empty:
        await channel.send("")
    assert (empty.value.status, empty.value.code) == (400, 50006)
    assert world.fake.messages(world.channel) == []


async def test_an_invalidated_session_identifies_again(world: World) -> None:
    fake = world.fake
    await fake.invalidate_session()
    await fake.wait_for(lambda: len(fake.identifies) == 2)
    assert fake.live_connections == 1
    asked = await fake.send_message(world.channel, world.alice, f"<@{fake.bot_id}> still there?")
    await fake.wait_for(lambda: fake.replies_to(asked["id"]))
    assert fake.resumes == 0


async def test_an_auto_sharded_client_connects() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Sharded")
        intents = _intents()
        bot = discord.AutoShardedClient(intents=intents, guild_ready_timeout=0.05)
        async with fake.connected(bot):
            assert bot.get_guild(guild) is not None
        assert fake.find_requests("GET", "/gateway/bot")
        assert fake.identifies[0]["shard"] == [0, 1]
        assert fake.unknown_routes == [] and fake.errors == []
