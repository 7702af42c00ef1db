"""``archivist configure``: write ``config.toml`` interactively or from flags.

Like ``memgpt configure``: storage, Milvus URI, embedding backend and LLM endpoint. Answers
left empty are not written, so those keys keep their defaults. The answers are checked before
anything is written (against the settings' own rules, not the environment, which the file does
not hold), so a bad answer never costs a working config; a failure names the flag or question
to blame and exits 2, as a usage error. Without a terminal, questions that get no answer point
to ``--non-interactive``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import click
import tomli_w

# Exit code of a usage or configuration error (bot.commands.running.EXIT_USAGE).
_EXIT_USAGE = 2
# Where each written key comes from: its flag, and its question in the wizard.
_ORIGINS = {
    "storage.data_dir": ("--data-dir", "Data folder"),
    "milvus.uri": ("--milvus-uri", "Milvus URI"),
    "embeddings.backend": ("--embedding-backend", "Embedding backend"),
    "embeddings.model": ("--embedding-model", "Embedding model"),
    "llm.base_url": ("--llm-base-url", "LLM endpoint"),
    "llm.model": ("--llm-model", "LLM model"),
}


class ConfigureError(click.ClickException):
    """A bad answer or flag, or a file not to overwrite: one line, exit code 2."""

    exit_code = _EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        """``error: ...`` on stderr, as every other command writes its failures."""
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


def _check(data: dict[str, dict[str, str]], flags: set[str]) -> None:
    """Validate each section as written; the first bad key is blamed on its flag or question."""
    # The settings' own rules; imported here so that other commands do not load pydantic.
    from pydantic import BaseModel, ValidationError

    from bot.sections import EmbeddingSettings, LlmSettings, MilvusSettings, StorageSettings

    sections: dict[str, type[BaseModel]] = {
        "storage": StorageSettings,
        "milvus": MilvusSettings,
        "embeddings": EmbeddingSettings,
        "llm": LlmSettings,
    }
    for section, values in data.items():
        try:
            sections[section].model_validate(values)
        except ValidationError as exc:
            error = exc.errors(include_input=False, include_url=False)[0]
            key = ".".join([section, *(str(part) for part in error["loc"])])
            flag, question = _ORIGINS.get(key, (key, key))
            blamed = flag if flag in flags else f"the answer to '{question}'"
            message = str(error["msg"]).removeprefix("Value error, ")
            raise ConfigureError(f"{blamed} ({key}): {message}; nothing was written.") from None


def _write(path: Path, text: str) -> None:
    """Write via a temporary file and ``os.replace``, so a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".toml")
    except OSError as exc:
        raise ConfigureError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _ask(interactive: bool, prompt: str, value: str | None, default: str, **kw: Any) -> str:
    if value is not None:
        return value
    if not interactive:
        return default
    return str(click.prompt(prompt, default=default, show_default=bool(default), **kw))


def _no_answer() -> ConfigureError:
    return ConfigureError(
        "standard input ended before every question was answered (is it a terminal?): run"
        " `archivist configure --non-interactive` with flags (see --help) instead."
    )


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
@click.option(
    "--embedding-backend",
    type=click.Choice(["local", "openai"]),
    default=None,
    help="local: all-MiniLM-L6-v2 in this process (default); openai: an embeddings endpoint.",
)
@click.option(
    "--embedding-model",
    default=None,
    help="With --embedding-backend openai: the endpoint's model (default text-embedding-3-small).",
)
@click.option("--llm-base-url", default=None, help="OpenAI-compatible endpoint, empty for none.")
@click.option(
    "--llm-model", default=None, help="Model name sent to the endpoint (default: gpt-4o-mini)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing file without asking.")
@click.pass_context
def configure(
    ctx: click.Context,
    output: Path | None,
    non_interactive: bool,
    data_dir: str | None,
    milvus_uri: str | None,
    embedding_backend: str | None,
    embedding_model: str | None,
    llm_base_url: str | None,
    llm_model: str | None,
    force: bool,
) -> None:
    """Write a config file (interactive wizard unless --non-interactive)."""
    target = output or ctx.obj or Path("config.toml")
    try:
        data = _answers(target, not non_interactive, force, ctx.params)
    except click.Abort:
        if sys.stdin.isatty():
            raise  # Ctrl-C or Ctrl-D at a terminal: click's own "Aborted!"
        raise _no_answer() from None
    flags = {
        f"--{name.replace('_', '-')}" for name, value in ctx.params.items() if value is not None
    }
    pruned = {
        section: {k: v for k, v in values.items() if v not in ("",)}
        for section, values in data.items()
    }
    pruned = {section: values for section, values in pruned.items() if values}
    _check(pruned, flags)
    text = (
        "# Written by `archivist configure`; every key is in config.example.toml.\n"
        "# Secrets are best kept in the environment: OPENAI_API_KEY, ARCHIVIST_MILVUS_TOKEN.\n"
        + tomli_w.dumps(pruned)
    )
    _write(target, text)
    click.echo(f"Wrote {target}.")


def _answers(
    target: Path, interactive: bool, force: bool, params: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """What to write, from the flags, else the wizard's questions, else the defaults."""
    data_dir, milvus_uri = params["data_dir"], params["milvus_uri"]
    embedding_backend, llm_base_url = params["embedding_backend"], params["llm_base_url"]
    llm_model = params["llm_model"]
    if (
        target.exists()
        and not force
        and (not interactive or not click.confirm(f"{target} exists: overwrite it?"))
    ):
        raise ConfigureError(f"{target} exists: pass --force to overwrite it.")
    # The wizard asks in this order: storage, Milvus, embeddings, the language model.
    storage = {"data_dir": _ask(interactive, "Data folder", data_dir, "data")}
    milvus = {
        "uri": _ask(
            interactive,
            "Milvus URI (empty: Milvus Lite file in the data folder; or http://host:19530)",
            milvus_uri,
            "",
        )
    }
    backend = _ask(
        interactive,
        "Embedding backend",
        embedding_backend,
        "local",
        type=click.Choice(["local", "openai"]),
    )
    embeddings = {"backend": backend}
    if backend == "openai":
        # The local backend picks its own model; an endpoint's must be named.
        embeddings["model"] = _ask(
            interactive, "Embedding model", params["embedding_model"], "text-embedding-3-small"
        )
    return {
        "storage": storage,
        "milvus": milvus,
        "embeddings": embeddings,
        "llm": {
            "base_url": _ask(
                interactive, "LLM endpoint (OpenAI-compatible; empty for none)", llm_base_url, ""
            ),
            "model": _ask(interactive, "LLM model", llm_model, "gpt-4o-mini"),
        },
    }
