"""The console adapter: ``archivist chat`` in a terminal or from a pipe.

Translation and rendering only: a line is a message for the agent, or a ``/command``; replies
are printed with their citations. It is the model the Discord and Slack adapters follow.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TextIO

from adapters.citations import sources_line
from agent.core import ArchivistError, Citation, Core, Incoming, Progress, Reply, named_apart

# Seconds between spinner frames while the agent works.
_SPIN_SECONDS = 0.25

HELP = """\
Type a message to talk to the agent, or a command:
  /attach SOURCE     attach a source to this conversation (without a name: list them)
  /detach SOURCE     detach it
  /sources           sources of this workspace, and which are attached here
  /load PATH...      load PDF files into a source named after the first file, and attach it
  /memory            the agent's core memory and memory sizes
  /search QUERY      search the attached sources without the language model
  /reset [--all]     forget the conversation (--all: core memory too); sources stay
  /help              this text
  /exit              leave"""


def _split_existing(args: list[str]) -> tuple[list[Path], list[str]]:
    """The paths that are files, and the arguments that are not."""
    paths = [Path(a).expanduser() for a in args]
    return [p for p in paths if p.is_file()], [str(p) for p in paths if not p.is_file()]


def _erase_spinner(out: TextIO) -> None:
    out.write("\r" + " " * 14 + "\r")
    out.flush()


class _LiveText:
    """Writes the reply as it grows, then completes it with the reply as delivered."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._written = ""
        self.started = asyncio.Event()

    def __call__(self, text: str) -> None:
        if not text.startswith(self._written):
            return
        if not self.started.is_set():
            self.started.set()
            _erase_spinner(self._out)
        self._out.write(text[len(self._written) :])
        self._out.flush()
        self._written = text

    def finish(self, messages: list[str]) -> int:
        """End the live line; how many of ``messages`` it showed (0 or 1)."""
        if not self._written:
            return 0
        first = messages[0] if messages else ""
        if first.startswith(self._written):
            self._out.write(first[len(self._written) :] + "\n")
            self._out.flush()
            return 1
        # The delivered reply differs from the preview (checked, citations resolved): it
        # follows on lines of its own.
        self._out.write(" …\n")
        self._out.flush()
        return 0


def render_citations(citations: list[Citation]) -> str | None:
    """``Sources: gri.pdf p.41, p.43; faq.pdf p.2`` (documents in order of first use)."""
    return sources_line(citations)


class ConsoleAdapter:
    """Reads lines, prints replies; one conversation, one speaker."""

    def __init__(
        self,
        core: Core,
        out: TextIO,
        *,
        conversation: str = "console:local:default",
        scope: str = "global",
        speaker: str = "you",
        show_thoughts: bool = False,
        interactive: bool = False,
    ) -> None:
        self._core = core
        self._out = out
        self._conversation = conversation
        self._scope = scope
        self._speaker = speaker
        self._show_thoughts = show_thoughts
        # On a terminal, /attach without a name offers a numbered list and takes the next
        # line as the choice; a script passes names instead.
        self._interactive = interactive
        self._pending: Callable[[str], Awaitable[None]] | None = None
        self._commands: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            "/attach": self._attach,
            "/detach": self._detach,
            "/sources": self._sources,
            "/load": self._load,
            "/memory": self._memory,
            "/search": self._search,
            "/reset": self._reset,
            "/help": self._help,
        }

    async def run(self, lines: AsyncIterator[str]) -> None:
        """Handle lines until ``/exit`` or the end of input."""
        if self._core.search_only:
            self._say("(No language model configured: answers are archive search results.)")
        async for raw in lines:
            line = raw.strip()
            if self._pending is not None:
                answer, self._pending = self._pending, None
                await self._guarded(answer, line)
                continue
            if not line:
                continue
            if line in ("/exit", "/quit"):
                break
            await self._guarded(self.handle, line)

    async def _guarded(self, handler: Callable[[str], Awaitable[None]], line: str) -> None:
        try:
            await handler(line)
        except ArchivistError as exc:
            self._say(f"error: {exc}")

    async def handle(self, line: str) -> None:
        """One line: a command, or a message for the agent."""
        if line.startswith("/"):
            try:
                words = shlex.split(line)
            except ValueError:
                words = line.split()
            command = self._commands.get(words[0])
            if command is None:
                self._say(f"Unknown command {words[0]}; /help lists them.")
                return
            await command(words[1:])
            return
        # On a terminal the reply appears as the model writes it; a pipe gets whole lines.
        live = _LiveText(self._out) if self._interactive else None
        incoming = Incoming(
            self._conversation, self._scope, line, self._speaker, self._speaker, on_partial=live
        )
        turn = asyncio.ensure_future(self._core.ask(incoming))
        if live is not None:
            await self._spin_until(turn, live.started)
        reply = await turn
        self._render(reply, live.finish(reply.messages) if live is not None else 0)

    async def _spin_until(self, turn: asyncio.Future[Reply], writing: asyncio.Event) -> None:
        """A spinner while the agent works (a model on CPU can take a minute), then erased;
        it stops early when the reply starts to appear."""
        for frame in itertools.cycle("|/-\\"):
            if writing.is_set():
                return
            self._out.write(f"\r{frame} thinking…")
            self._out.flush()
            done, _ = await asyncio.wait({turn}, timeout=_SPIN_SECONDS)
            if done:
                break
        if not writing.is_set():  # else the live text already replaced it
            _erase_spinner(self._out)

    def _render(self, reply: Reply, shown: int = 0) -> None:
        """Print the reply; its first ``shown`` messages are already on screen."""
        if self._show_thoughts:
            for thought in reply.thoughts:
                self._say(f"(thinking) {thought}")
        for message in reply.messages[shown:]:
            self._say(message)
        citations = render_citations(reply.citations)
        if citations:
            self._say(citations)
        if reply.notice:
            self._say(f"error: {reply.notice}" if not reply.messages else reply.notice)

    def _say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def _attach(self, args: list[str]) -> None:
        if not args and self._interactive:
            await self._pick_source()
            return
        if not args:
            await self._sources([])
            self._say("Attach one with /attach NAME.")
            return
        source, new = await self._core.attach(
            self._conversation, self._scope, " ".join(args), by=self._speaker
        )
        self._say(f"{'Attached' if new else 'Already attached:'} {source.name}.")

    async def _pick_source(self) -> None:
        sources = await self._core.sources(self._scope)
        if not sources:
            await self._sources([])
            return
        attached = {s.id for s in await self._core.attached(self._conversation)}
        for number, s in enumerate(sources, start=1):
            mark = " (attached)" if s.id in attached else ""
            self._say(f"  {number}. {s.name}: {s.passages} passages{mark}")
        self._say("Attach which? Its number or name; an empty line cancels.")

        async def choose(answer: str) -> None:
            if not answer:
                self._say("Nothing attached.")
                return
            if answer.isdigit() and 1 <= int(answer) <= len(sources):
                answer = sources[int(answer) - 1].name
            await self._attach([answer])

        self._pending = choose

    async def _detach(self, args: list[str]) -> None:
        if not args:
            self._say("Usage: /detach SOURCE")
            return
        source, removed = await self._core.detach(self._conversation, self._scope, " ".join(args))
        self._say(f"{'Detached' if removed else 'Was not attached:'} {source.name}.")

    async def _sources(self, _args: list[str]) -> None:
        sources = await self._core.sources(self._scope)
        attached = {s.id for s in await self._core.attached(self._conversation)}
        if not sources:
            self._say("No sources yet: /load a PDF, or use `archivist load directory`.")
        for s in sources:
            mark = "*" if s.id in attached else " "
            self._say(f"{mark} {s.name} ({s.status}, {s.pages} pages, {s.passages} passages)")

    async def _load(self, args: list[str]) -> None:
        if not args:
            self._say("Usage: /load PATH [PATH...]")
            return
        paths, missing = await asyncio.to_thread(_split_existing, args)
        if missing:
            self._say(f"No such file: {', '.join(missing)}")
            return

        def progress(p: Progress) -> None:
            self._say(
                f"  {p.document}: {p.pages_done}/{p.pages_total} pages, {p.passages_done} passages"
            )

        report = await self._core.load(
            self._conversation,
            self._scope,
            paths[0].stem,
            named_apart(paths),
            by=self._speaker,
            progress=progress,
        )
        for failed in report.failed:
            self._say(f"error: {failed.error}")
        self._say(report.summary() + (" — attached here" if report.loaded else ""))

    async def _memory(self, _args: list[str]) -> None:
        view = await self._core.memory(self._conversation)
        self._say(view.core)
        sources = ", ".join(view.sources) if view.sources else "none attached"
        self._say(
            f"{view.messages} messages; {view.passages} passages in archival memory ({sources})."
        )

    async def _search(self, args: list[str]) -> None:
        if not args:
            self._say("Usage: /search QUERY")
            return
        found = await self._core.search(self._conversation, " ".join(args))
        if not found.results:
            self._say("No results (is a source attached? /sources).")
        for r in found.results:
            self._say(f"[{r.rank}] {r.citation} ({r.score:.2f}) {' '.join(r.text.split())}")

    async def _reset(self, args: list[str]) -> None:
        forgotten = await self._core.reset(self._conversation, keep_core="--all" not in args)
        self._say(f"Forgot {forgotten} messages; sources stay attached.")

    async def _help(self, _args: list[str]) -> None:
        self._say(HELP)
