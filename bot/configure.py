"""``archivist configure``: write ``config.toml`` interactively or from flags.

Like ``memgpt configure``: storage, Milvus URI, embedding backend and LLM endpoint. Answers
left empty are not written, so those keys keep their defaults. The new file is checked before
it replaces an existing one, so a bad answer never costs a working config.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click
import tomli_w

from bot.config import ConfigError, load_settings


def _write_checked(path: Path, text: str) -> None:
    """Write via a temporary file that must load as valid settings before ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        load_settings(Path(tmp))
        os.replace(tmp, path)
    except ConfigError as exc:
        raise click.ClickException(str(exc).replace(tmp, str(path))) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _ask(interactive: bool, prompt: str, value: str | None, default: str, **kw: Any) -> str:
    if value is not None:
        return value
    if not interactive:
        return default
    return str(click.prompt(prompt, default=default, show_default=bool(default), **kw))


@click.command("configure")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: the --config file, else ./config.toml).",
)
@click.option("--non-interactive", is_flag=True, help="Ask nothing; use flags and defaults.")
@click.option("--data-dir", default=None, help="Folder for archivist.db and milvus.db.")
@click.option(
    "--milvus-uri",
    default=None,
    help="Empty for Milvus Lite in the data folder, or http://host:19530.",
)
@click.option("--embedding-backend", type=click.Choice(["local", "openai"]), default=None)
@click.option("--llm-base-url", default=None, help="OpenAI-compatible endpoint, empty for none.")
@click.option("--llm-model", default=None)
@click.option("--force", is_flag=True, help="Overwrite an existing file without asking.")
@click.pass_context
def configure(
    ctx: click.Context,
    output: Path | None,
    non_interactive: bool,
    data_dir: str | None,
    milvus_uri: str | None,
    embedding_backend: str | None,
    llm_base_url: str | None,
    llm_model: str | None,
    force: bool,
) -> None:
    """Write a config file (interactive wizard unless --non-interactive)."""
    target = output or ctx.obj or Path("config.toml")
    interactive = not non_interactive
    if (
        target.exists()
        and not force
        and (not interactive or not click.confirm(f"{target} exists: overwrite it?"))
    ):
        raise click.ClickException(f"{target} exists: pass --force to overwrite it")
    data = {
        "storage": {"data_dir": _ask(interactive, "Data folder", data_dir, "data")},
        "milvus": {
            "uri": _ask(
                interactive,
                "Milvus URI (empty: Milvus Lite file in the data folder; or http://host:19530)",
                milvus_uri,
                "",
            )
        },
        "embeddings": {
            "backend": _ask(
                interactive,
                "Embedding backend",
                embedding_backend,
                "local",
                type=click.Choice(["local", "openai"]),
            )
        },
        "llm": {
            "base_url": _ask(
                interactive, "LLM endpoint (OpenAI-compatible; empty for none)", llm_base_url, ""
            ),
            "model": _ask(interactive, "LLM model", llm_model, "gpt-4o-mini"),
        },
    }
    pruned = {
        section: {k: v for k, v in values.items() if v not in ("",)}
        for section, values in data.items()
    }
    pruned = {section: values for section, values in pruned.items() if values}
    text = (
        "# Written by `archivist configure`; every key is in config.example.toml.\n"
        "# Secrets are best kept in the environment: OPENAI_API_KEY, ARCHIVIST_MILVUS_TOKEN.\n"
        + tomli_w.dumps(pruned)
    )
    _write_checked(target, text)
    click.echo(f"Wrote {target}.")
