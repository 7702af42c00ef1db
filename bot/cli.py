"""The ``archivist`` command line: the top-level group, ``archivist run``, the entry point.

The other commands live in :mod:`bot.commands`, one module per group.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.commands.agents import agents, chat
from bot.commands.running import EXIT_USAGE, err, run_command
from bot.commands.sources import load, sources
from bot.configure import configure
from bot.logs import setup_logging

if TYPE_CHECKING:
    from bot.config import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $ARCHIVIST_CONFIG, else ./config.toml if present).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.version_option(
    package_name="archivist-bot", prog_name="archivist", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, verbose: bool) -> None:
    """Archivist: a Discord and Slack bot whose document knowledge lives in Milvus."""
    if ctx.invoked_subcommand == "configure":
        ctx.obj = config_file
        return
    from bot.config import ConfigError, load_settings  # pydantic: not for --help

    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        err.print(str(exc), markup=False)
        ctx.exit(EXIT_USAGE)
    # Failures reach the user as one sentence on stderr; the log lines behind them are
    # for -v (the bot logs at [logging] level instead).
    setup_logging("DEBUG" if verbose else "ERROR", settings.secrets())
    ctx.obj = settings


cli.add_command(configure)


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the bot: the configured Discord and Slack adapters, /healthz and /metrics.

    Stops cleanly on SIGTERM or Ctrl-C, letting answers under way finish.
    """
    from bot.run import serve  # the platforms, for this command only

    settings: Settings = ctx.obj
    verbose = bool(ctx.find_root().params.get("verbose"))
    setup_logging("DEBUG" if verbose else settings.logging.level, settings.secrets())
    run_command(ctx, serve(settings))


@click.command()
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Loads run at once (each uses the embedding model's threads).",
)
@click.pass_context
def worker(ctx: click.Context, concurrency: int) -> None:
    """Run the loads the bot queues ([ingest] queue, state in PostgreSQL) on this machine's
    cores, instead of the bot's.

    Stops cleanly on SIGTERM or Ctrl-C: loads under way get [server] shutdown_grace seconds,
    then are rolled back and queued again for another worker.
    """
    from bot.worker import work  # the model and Milvus, for this command only

    settings: Settings = ctx.obj
    verbose = bool(ctx.find_root().params.get("verbose"))
    setup_logging("DEBUG" if verbose else settings.logging.level, settings.secrets())
    run_command(ctx, work(settings, concurrency))


for command in (load, sources, agents, chat, run, worker):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="archivist")
