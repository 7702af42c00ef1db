"""Slash commands, autocomplete, confirmations and permissions, through the fake Discord."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.core import FileInput
from tests import pdfs
from tests.adapters.discord.conftest import Server, answered, written
from tests.fake_discord import EPHEMERAL

JSON = dict[str, Any]
REFUSAL = "Managing sources needs the Manage Channels permission in this channel."


async def loaded_elsewhere(server: Server, tmp_path: Path, name: str = "manual") -> None:
    """A source of this guild, loaded from another channel (so not attached to #docs)."""
    path = pdfs.make_manual_pdf(tmp_path / f"{name}.pdf", 4)
    other = f"discord:{server.guild}:1"
    report = await server.core.load(other, server.scope, name, [FileInput(path)], by="test")
    assert report.loaded


def buttons(message: JSON) -> list[JSON]:
    return [c for row in message["components"] for c in row["components"] if c["type"] == 2]


def button(message: JSON, label: str) -> str:
    for component in buttons(message):
        if component.get("label") == label:
            return str(component["custom_id"])
    raise AssertionError(f"no {label} button in {message}")


async def test_commands_are_synced_to_the_dev_guild(server: Server) -> None:
    names = {c["name"] for c in server.fake.commands(server.guild)}
    assert names == {
        "load",
        "attach",
        "detach",
        "sources",
        "forget-source",
        "memory",
        "search",
        "reset",
    }


async def test_attach_completes_names_attaches_and_detach_undoes_it(
    server: Server, tmp_path: Path
) -> None:
    await loaded_elsewhere(server, tmp_path)
    await loaded_elsewhere(server, tmp_path, "faq")
    fake = server.fake
    choices = await fake.autocomplete(
        server.guild, server.docs, server.admin, "attach", {"source": "man"}, "source"
    )
    assert [c["value"] for c in choices] == ["manual"]

    shown = await answered(
        await fake.slash(server.guild, server.docs, server.admin, "attach", {"source": "manual"})
    )
    assert shown["content"] == f"Attached manual to <#{server.docs}>."
    assert [s.name for s in await server.core.attached(server.conversation)] == ["manual"]

    listing = await answered(await fake.slash(server.guild, server.docs, server.reader, "sources"))
    assert listing["flags"] & EPHEMERAL
    assert "📎 **manual**: ready, 4 pages" in listing["content"]
    assert "▫️ **faq**: ready, 4 pages" in listing["content"]

    choices = await fake.autocomplete(
        server.guild, server.docs, server.admin, "detach", {"source": ""}, "source"
    )
    assert [c["value"] for c in choices] == ["manual"]
    shown = await answered(
        await fake.slash(server.guild, server.docs, server.admin, "detach", {"source": "manual"})
    )
    assert shown["content"] == "Detached manual."
    assert await server.core.attached(server.conversation) == []


async def test_an_unknown_source_gets_a_sentence(server: Server) -> None:
    shown = await answered(
        await server.fake.slash(
            server.guild, server.docs, server.admin, "attach", {"source": "nothing"}
        )
    )
    assert "nothing" in shown["content"] and shown["flags"] & EPHEMERAL


async def test_another_guilds_sources_are_invisible(server: Server, tmp_path: Path) -> None:
    other_guild = server.fake.add_guild("Elsewhere")
    path = pdfs.make_manual_pdf(tmp_path / "secret.pdf", 2)
    await server.core.load(
        f"discord:{other_guild}:1", f"discord:{other_guild}", "secret", [FileInput(path)], by="t"
    )
    choices = await server.fake.autocomplete(
        server.guild, server.docs, server.admin, "attach", {"source": ""}, "source"
    )
    assert choices == []
    shown = await answered(
        await server.fake.slash(
            server.guild, server.docs, server.admin, "attach", {"source": "secret"}
        )
    )
    assert "secret" in shown["content"] and "Attached" not in shown["content"]
    assert await server.core.attached(server.conversation) == []


async def test_load_defers_shows_progress_and_attaches(server: Server, tmp_path: Path) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "guide.pdf", 5)
    attachment = server.attachment(path)
    interaction = await server.fake.slash(
        server.guild, server.docs, server.admin, "load", {"file": attachment}
    )
    assert (await interaction.response())["type"] == 5  # deferred within the deadline

    def final() -> JSON | None:
        shown = interaction.original
        return shown if shown and shown["content"].startswith("Loaded") else None

    shown = await server.fake.wait_for(final, what="the load's final message")
    sources = await server.core.sources(server.scope)
    assert [(s.name, s.pages) for s in sources] == [("guide", 5)]
    assert shown["content"] == (
        f"Loaded {sources[0].passages} passages from 5 pages of guide.pdf into source guide"
        f" — attached to <#{server.docs}>"
    )


async def test_memory_and_search_answer_privately(server: Server, tmp_path: Path) -> None:
    await loaded_elsewhere(server, tmp_path)
    await server.core.attach(server.conversation, server.scope, "manual", by="test")
    memory = await answered(
        await server.fake.slash(server.guild, server.docs, server.reader, "memory")
    )
    assert memory["flags"] & EPHEMERAL
    assert "<persona" in memory["content"] and "(manual)" in memory["content"]

    query = pdfs.manual_marker(3)
    found = await answered(
        await server.fake.slash(
            server.guild, server.docs, server.reader, "search", {"query": query}
        )
    )
    assert found["flags"] & EPHEMERAL
    assert found["content"].startswith("**[1] manual.pdf p.3**")


async def test_reset_asks_its_author_only_then_forgets(server: Server) -> None:
    server.llm.reply(tool_calls=[("send_message", {"message": "Noted."})])
    asked = await server.fake.send_message(server.docs, server.reader, server.mention("Remember"))
    await server.fake.wait_for(lambda: written(server.fake.replies_to(asked["id"])))

    prompt = await answered(
        await server.fake.slash(server.guild, server.docs, server.admin, "reset")
    )
    assert prompt["content"].startswith("Forget this channel's conversation?")
    confirm = button(prompt, "Confirm")
    stranger = await server.fake.click(
        server.guild, server.docs, server.reader, prompt["id"], confirm
    )
    refused = await answered(stranger)
    assert refused["content"] == "Only the person who ran the command can answer this."
    assert (await server.core.memory(server.conversation)).messages >= 2

    await (
        await server.fake.click(server.guild, server.docs, server.admin, prompt["id"], confirm)
    ).response()
    await server.fake.wait_for(
        lambda: server.fake.message(prompt["id"])["content"].startswith("Forgot"),
        what="the reset's outcome",
    )
    assert server.fake.message(prompt["id"])["components"] == []
    assert (await server.core.memory(server.conversation)).messages == 0


@pytest.mark.parametrize("options", [{"confirm_timeout": 0.5}])
async def test_confirmation_buttons_are_disabled_when_they_time_out(server: Server) -> None:
    prompt = await answered(
        await server.fake.slash(server.guild, server.docs, server.admin, "reset")
    )
    assert not any(b.get("disabled") for b in buttons(prompt))

    def disabled() -> list[JSON] | None:
        now = buttons(server.fake.message(prompt["id"]))
        return now if now and all(b.get("disabled") for b in now) else None

    greyed = await server.fake.wait_for(disabled, what="the buttons disabled")
    assert [b["label"] for b in greyed] == ["Confirm", "Cancel"]
    assert server.fake.message(prompt["id"])["content"] == prompt["content"]
    with pytest.raises(ValueError, match="disabled"):
        await server.fake.click(
            server.guild, server.docs, server.admin, prompt["id"], button(prompt, "Confirm")
        )


async def test_forget_source_deletes_after_confirmation(server: Server, tmp_path: Path) -> None:
    await loaded_elsewhere(server, tmp_path)
    prompt = await answered(
        await server.fake.slash(
            server.guild, server.docs, server.admin, "forget-source", {"source": "manual"}
        )
    )
    cancel = await server.fake.click(
        server.guild, server.docs, server.admin, prompt["id"], button(prompt, "Cancel")
    )
    await cancel.response()
    assert server.fake.message(prompt["id"])["content"] == "Cancelled."
    assert [s.name for s in await server.core.sources(server.scope)] == ["manual"]

    prompt = await answered(
        await server.fake.slash(
            server.guild, server.docs, server.admin, "forget-source", {"source": "manual"}
        )
    )
    await (
        await server.fake.click(
            server.guild, server.docs, server.admin, prompt["id"], button(prompt, "Confirm")
        )
    ).response()
    await server.fake.wait_for(
        lambda: server.fake.message(prompt["id"])["content"].startswith("Deleted"),
        what="the deletion",
    )
    assert server.fake.message(prompt["id"])["content"] == "Deleted source manual and its passages."
    assert await server.core.sources(server.scope) == []
