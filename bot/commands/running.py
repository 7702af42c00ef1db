"""What every command shares: exit codes, the consoles, and running a coroutine to an exit code.

Exit codes a script can rely on: 0 success; 1 the operation failed (a bad file, a failed
load); 2 usage or configuration error; 3 no such source; 4 storage unavailable (Milvus down,
or its Lite file in use by another process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from agent.documents.names import (
    GLOBAL_SCOPE,
    InvalidName,
    check_conversation,
    check_scope,
    check_source_name,
)
from agent.errors import ArchiveUnavailable, ArchivistError, SourceNotFound, StateUnavailable

# The stores, models and platforms are imported by the commands that use them, not by every
# command: `archivist --help` starts in a tenth of the time (issue 14).
if TYPE_CHECKING:
    from agent.core import Core
    from bot.config import Settings
    from bot.handoff import SourceWork
    from bot.state import StateFile

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4

T = TypeVar("T")

log = logging.getLogger("archivist")
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = Console(highlight=False, soft_wrap=True, emoji=False)


def _checked(check: Callable[[str], None]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback running one of the core's checks: a refusal is a usage error (2)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if isinstance(value, str):
            try:
                check(value)
            except InvalidName as exc:
                raise click.BadParameter(str(exc)) from None
        return value

    return callback


check_name_param = _checked(check_source_name)
check_scope_param = _checked(check_scope)
check_conversation_param = _checked(check_conversation)

scope_option = click.option(
    "--scope",
    default=GLOBAL_SCOPE,
    show_default=True,
    callback=check_scope_param,
    help="Workspace to resolve names in: global, discord:<server id> or slack:<team id>.",
)


def printable(text: str) -> str:
    """``text`` fit for a terminal: control and invisible characters shown as ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _exit_code(error: ArchivistError) -> int:
    if isinstance(error, SourceNotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, ArchiveUnavailable | StateUnavailable):
        return EXIT_UNAVAILABLE
    from bot.config import StartupError  # pydantic: not for --help

    if isinstance(error, StartupError):
        return EXIT_USAGE
    return EXIT_FAILED


def run_command(ctx: click.Context, main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; an ArchivistError becomes its sentence and exit code."""
    try:
        return asyncio.run(main)
    except ArchivistError as exc:
        err.print(f"error: {exc}", markup=False)
        code = _exit_code(exc)
    ctx.exit(code)


def run_with_sources(ctx: click.Context, work: Callable[[SourceWork], Awaitable[T]]) -> T:
    """Run ``work`` in the bot running on this data folder if one answers (it holds the Milvus
    Lite file), else with a library opened in this process."""
    from bot.handoff import running_bot

    settings: Settings = ctx.obj

    async def main() -> T:
        async with running_bot(settings.storage.data_dir) as bot:
            if bot is not None:
                err.print(f"The bot running here (pid {bot.address.pid}) does this.")
                return await work(bot)
        from bot.app import open_library

        async with open_library(settings) as library:
            return await work(library)

    return run_command(ctx, main())


def run_with_state(ctx: click.Context, work: Callable[[StateFile], Awaitable[T]]) -> T:
    """Open only the state file (SQLite) and run ``work`` with it: for commands that run
    beside a bot holding the Milvus Lite file."""
    from bot.state import open_state

    async def main() -> T:
        async with open_state(ctx.obj) as state:
            return await work(state)

    return run_command(ctx, main())


def run_with_core(ctx: click.Context, work: Callable[[Core], Awaitable[T]]) -> T:
    """Open the whole agent core from the context's settings and run ``work`` with it."""
    from bot.app import open_core

    async def main() -> T:
        async with open_core(ctx.obj) as core:
            return await work(core)

    return run_command(ctx, main())
