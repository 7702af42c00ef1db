"""``archivist agents`` and ``archivist chat``: the conversations' agents."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import TYPE_CHECKING

import click
from rich.table import Table

from agent.mind.profiles import Profiles, UnknownProfile
from bot.commands.running import (
    EXIT_FAILED,
    EXIT_USAGE,
    check_conversation_param,
    err,
    out,
    run_command,
    run_with_state,
    scope_option,
)

if TYPE_CHECKING:
    from bot.config import Settings


@click.group()
def agents() -> None:
    """List and inspect the conversations' agents."""


@agents.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def agents_list(ctx: click.Context, as_json: bool) -> None:
    """Every agent: conversation key, persona, human, messages, last activity."""
    rows = run_with_state(ctx, lambda state: state.agents.list())
    if as_json:
        out.print_json(json.dumps([asdict(a) for a in rows], default=str))
        return
    if not rows:
        out.print("No agents yet: start one with `archivist chat`.")
        return
    table = Table("conversation", "persona", "human", "messages", "last activity")
    for a in rows:
        last = a.last_activity.isoformat(timespec="seconds") if a.last_activity else "-"
        table.add_row(a.key, a.persona_name or "-", a.human_name or "-", str(a.messages), last)
    out.print(table)


@agents.command("show")
@click.argument("key")
@click.pass_context
def agents_show(ctx: click.Context, key: str) -> None:
    """One agent: its core memory, memory sizes and attached sources."""
    view = run_with_state(ctx, lambda state: state.memory(key))
    out.print(f"{key}: {view.messages} messages, {view.passages} passages", markup=False)
    out.print(f"attached: {', '.join(view.sources) if view.sources else 'nothing'}", markup=False)
    out.print(view.core, markup=False)


@click.command()
@click.option("--persona", default=None, help="Persona of a new agent (default: [agent] persona).")
@click.option(
    "--human", default=None, help="Human profile of a new agent (default: [agent] human)."
)
@click.option(
    "--conversation",
    default="console:local:default",
    show_default=True,
    callback=check_conversation_param,
    help="Conversation key: each key has its own agent and memory.",
)
@scope_option
@click.pass_context
def chat(
    ctx: click.Context, persona: str | None, human: str | None, conversation: str, scope: str
) -> None:
    """Talk to a conversation's agent in the terminal (or from a pipe); /help lists commands.

    Exits 1 when a message went unanswered (the model unreachable, say), so a script notices.
    """
    settings: Settings = ctx.obj
    agent = settings.agent.model_copy(
        update={
            "persona": persona or settings.agent.persona,
            "human": human or settings.agent.human,
        }
    )
    settings = settings.model_copy(update={"agent": agent})
    profiles = Profiles(settings.agent.personas_dir)
    try:
        profiles.persona(agent.persona)
        profiles.human(agent.human)
    except UnknownProfile as exc:
        err.print(f"error: {exc}", markup=False)
        ctx.exit(EXIT_USAGE)

    from adapters.console import ConsoleAdapter
    from bot.app import open_runtime

    async def work() -> int:
        async with open_runtime(settings) as runtime:
            console = ConsoleAdapter(
                runtime.core,
                sys.stdout,
                conversation=conversation,
                scope=scope,
                show_thoughts=settings.agent.show_thoughts,
                interactive=sys.stdin.isatty(),
            )
            await console.run(_stdin_lines())
            return runtime.metrics.failed_turns

    failed = run_command(ctx, work())
    if failed:
        messages = "1 message was" if failed == 1 else f"{failed} messages were"
        err.print(
            f"error: {messages} not answered in full (the reason is in the reply above).",
            markup=False,
        )
        ctx.exit(EXIT_FAILED)


async def _stdin_lines() -> AsyncIterator[str]:
    """Lines of standard input, read in a thread so the event loop keeps running."""
    while True:
        if sys.stdin.isatty():
            sys.stdout.write("> ")
            sys.stdout.flush()
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line
