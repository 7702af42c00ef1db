"""``archivist load`` and ``archivist sources``: loading, listing, searching, linking sources."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.table import Table
from rich.text import Text

from agent.documents.loads import LoadReport, named_apart
from agent.documents.names import GLOBAL_SCOPE, workspace_of
from agent.values import SEARCH_MODES, SearchMode
from bot.commands.load_progress import load_progress
from bot.commands.running import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    check_conversation_param,
    check_name_param,
    check_scope_param,
    err,
    out,
    printable,
    run_with_sources,
    run_with_state,
    scope_option,
)

if TYPE_CHECKING:
    from agent.documents.library import SearchPage
    from agent.documents.registry import Source, SourceFile
    from bot.config import Settings
    from bot.handoff import SourceWork
    from bot.state import StateFile

conversation_option = click.option(
    "--conversation",
    required=True,
    callback=check_conversation_param,
    help="Conversation key: console:local:NAME, discord:SERVER:CHANNEL or slack:TEAM:CHANNEL.",
)
link_scope_option = click.option(
    "--scope",
    default=None,
    callback=check_scope_param,
    help="Workspace to resolve NAME in (default: the conversation's, else global).",
)


@click.group()
def load() -> None:
    """Load documents into a named source."""


def _collect_files(
    input_files: tuple[Path, ...], extra: tuple[Path, ...], input_dir: Path | None, recursive: bool
) -> list[Path]:
    files = list(input_files) + list(extra)
    if input_dir is not None:
        pattern = "**/*" if recursive else "*"
        files.extend(
            sorted(p for p in input_dir.glob(pattern) if p.is_file() and p.suffix.lower() == ".pdf")
        )
    return files


@load.command("directory")
@click.option(
    "--name",
    required=True,
    callback=check_name_param,
    help="Name of the source to load into (created if new).",
)
@click.option(
    "--input-files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PDF files to load (repeat the option, or list them after it).",
)
@click.option(
    "--input-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Load every PDF in this folder.",
)
@click.option("--recursive", is_flag=True, help="With --input-dir, include sub-folders.")
@click.option(
    "--scope",
    default=GLOBAL_SCOPE,
    show_default=True,
    callback=check_scope_param,
    help="Workspace the source is in: global, discord:<server id> or slack:<team id>.",
)
@click.argument(
    "extra_files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.pass_context
def load_directory(
    ctx: click.Context,
    name: str,
    input_files: tuple[Path, ...],
    input_dir: Path | None,
    recursive: bool,
    scope: str,
    extra_files: tuple[Path, ...],
) -> None:
    """Load PDF files into the source NAME, e.g.

    archivist load directory --name gri --input-files gri.pdf
    """
    files = _collect_files(input_files, extra_files, input_dir, recursive)
    if not files:
        raise click.UsageError("nothing to load: give --input-files or an --input-dir with PDFs")

    async def work(library: SourceWork) -> LoadReport:
        with load_progress(err) as on_progress:
            return await library.load(
                scope,
                name,
                named_apart(files),
                created_by="cli",
                progress=on_progress,
            )

    report = run_with_sources(ctx, work)
    for result in report.files:
        if result.status != "loaded" and result.error:
            err.print(
                f"{'error' if result.status == 'failed' else 'note'}: {result.error}", markup=False
            )
    out.print(report.summary(), markup=False)
    if report.unavailable:
        ctx.exit(EXIT_UNAVAILABLE)
    if report.failed:
        ctx.exit(EXIT_FAILED)


@click.group()
def sources() -> None:
    """List, inspect, search, attach and delete sources."""


@sources.command("list")
@click.option(
    "--scope",
    default=None,
    callback=check_scope_param,
    help="Only sources visible from this workspace.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def sources_list(ctx: click.Context, scope: str | None, as_json: bool) -> None:
    """List sources with their status, files, pages and passages."""
    rows = run_with_state(ctx, lambda state: state.registry.visible(scope))
    if as_json:
        out.print_json(json.dumps([asdict(s) for s in rows]))
        return
    if not rows:
        out.print("No sources yet. Load one with:")
        out.print("  archivist load directory --name NAME --input-files FILE.pdf")
        return
    headers = ("name", "scope", "status", "files", "pages", "passages")
    cells = [(s.name, s.scope, s.status, str(s.files), str(s.pages), str(s.passages)) for s in rows]
    out.print(_table(headers, cells, kept=3))
    _reasons([(s.name, s.error) for s in rows])


@sources.command("show")
@click.argument("name")
@scope_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def sources_show(ctx: click.Context, name: str, scope: str, as_json: bool) -> None:
    """Show one source and its files."""

    async def read(state: StateFile) -> tuple[Source, list[SourceFile]]:
        source = await state.registry.resolve(scope, name)
        return source, await state.registry.files(source.id)

    source, files = run_with_state(ctx, read)
    if as_json:
        out.print_json(json.dumps({**asdict(source), "file_list": [asdict(f) for f in files]}))
        return
    out.print(
        f"{printable(source.name)} ({source.scope}): {source.status}, {source.files} files,"
        f" {source.pages} pages, {source.passages} passages,"
        f" {source.embedding_model} ({source.embedding_dim} dimensions)",
        markup=False,
    )
    headers = ("file", "status", "pages", "passages", "size", "loaded")
    cells = [
        (f.name, f.status, str(f.pages), str(f.passages), str(f.size), f.loaded_at[:10])
        for f in files
    ]
    out.print(_table(headers, cells, kept=2))
    _reasons([(f.name, f.error) for f in files])


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, kept: int) -> Table:
    """A table whose first ``kept`` columns (what a user types next: a source, a file, a scope)
    are never cut or wrapped; the counts give way on a narrow terminal. No rules between
    columns, which would take the room; cells are plain text, never markup."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    for index, header in enumerate(headers):
        widest = max((len(row[index]) for row in rows), default=0)
        if index < kept:
            table.add_column(header, no_wrap=True, min_width=max(widest, len(header)))
        else:
            table.add_column(header)
    for row in rows:
        table.add_row(*(Text(printable(cell)) for cell in row))
    return table


def _reasons(failures: list[tuple[str, str | None]]) -> None:
    """Why each failed row failed, below the table where the sentence fits whole."""
    for name, error in failures:
        if error:
            out.print(f"{printable(name)}: {printable(error)}", markup=False)


@sources.command("delete")
@click.argument("name")
@scope_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def sources_delete(ctx: click.Context, name: str, scope: str, yes: bool) -> None:
    """Delete a source, its passages and its attachments."""
    if not yes and not click.confirm(f"Delete source '{printable(name)}' and all its passages?"):
        ctx.exit(EXIT_FAILED)
    source = run_with_sources(ctx, lambda library: library.delete(scope, name))
    out.print(
        f"Deleted source '{printable(source.name)}' ({source.passages} passages).", markup=False
    )


@sources.command("attach")
@click.argument("name")
@conversation_option
@link_scope_option
@click.pass_context
def sources_attach(ctx: click.Context, name: str, conversation: str, scope: str | None) -> None:
    """Attach a source to a conversation's agent (idempotent).

    A Discord or Slack conversation sees global sources and its own workspace's only.
    """
    where = scope or workspace_of(conversation) or GLOBAL_SCOPE
    source, new = run_with_state(
        ctx, lambda state: state.links.attach(conversation, where, name, by="cli")
    )
    verb = "Attached" if new else "Already attached:"
    out.print(f"{verb} '{printable(source.name)}' to {conversation}.", markup=False)


@sources.command("detach")
@click.argument("name")
@conversation_option
@link_scope_option
@click.pass_context
def sources_detach(ctx: click.Context, name: str, conversation: str, scope: str | None) -> None:
    """Detach a source from a conversation's agent."""
    where = scope or workspace_of(conversation) or GLOBAL_SCOPE
    source, removed = run_with_state(
        ctx, lambda state: state.links.detach(conversation, where, name)
    )
    verb = "Detached" if removed else "Was not attached:"
    out.print(f"{verb} '{printable(source.name)}' from {conversation}.", markup=False)


# A query may start with "-" (--leak-check=full, -Wall): words click does not know as options
# are the query's, so they need no "--" in front.
@sources.command("search", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="QUERY...")
@click.option(
    "--source", "names", multiple=True, required=True, help="Source to search (repeatable)."
)
@click.option("--top-k", default=None, type=click.IntRange(1, 100), help="Results per page.")
@click.option(
    "--page", default=1, type=click.IntRange(1), show_default=True, help="Page of results."
)
@click.option(
    "--mode",
    type=click.Choice(SEARCH_MODES),
    default=None,
    help="hybrid (dense + keyword), dense or keyword; default: [search] mode.",
)
@scope_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of results.")
@click.pass_context
def sources_search(
    ctx: click.Context,
    words: tuple[str, ...],
    names: tuple[str, ...],
    top_k: int | None,
    page: int,
    mode: SearchMode | None,
    scope: str,
    as_json: bool,
) -> None:
    """Search sources for QUERY (its words; a flag such as --leak-check=full is searched
    too); results cite document and page."""
    query = " ".join(words)
    if not query.strip():
        raise click.UsageError("QUERY is empty: say what to search for.")
    settings: Settings = ctx.obj
    k = top_k or settings.search.top_k
    found: SearchPage = run_with_sources(
        ctx,
        lambda library: library.search_sources(
            scope, names, query, top_k=k, page=page - 1, mode=mode
        ),
    )
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in found.results]))
        return
    for r in found.results:
        text = " ".join(r.text.split())
        out.print(
            f"[{r.rank}] {r.citation} ({r.score:.2f}) [{printable(r.source)}] {text}",
            markup=False,
        )
    if found.results:
        first, last = found.results[0].rank, found.results[-1].rank
        out.print(
            f"Showing {first}-{last} of {found.total} passages (page {page} of {found.pages}).",
            markup=False,
        )
    elif page > found.pages > 0:
        pages = "is 1 page" if found.pages == 1 else f"are {found.pages} pages"
        out.print(f"No results on page {page}: there {pages}.", markup=False)
    else:
        out.print("No results.", markup=False)
