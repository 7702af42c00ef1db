"""The context window: build each step's prompt and keep it from overflowing.

The window is the smaller of the configured one and what the server says it has. Tokens
are estimated offline (UTF-8 bytes / 3, conservative for English) and the estimate is
calibrated by the prompt sizes the server reports, so a small window is neither overrun nor
summarised needlessly. The prompt keeps room for the reply (``max_tokens``).

The prompt is ordered for servers' prefix caches: what rarely changes first (instructions,
core memory, the summary; the tool schemas follow it in most chat templates), then the
conversation, and the changing memory statistics last, just before the newest message, so a
step re-reads only what is new. Near the limit the statistics warn the agent, once until the
next summary, to save what matters; past it the results of earlier turns' function calls are
shortened in the prompt first (a search result was read when it came; its citations stay
valid), then, if that is not enough, the oldest messages are summarised into the agent's
recursive summary and leave the prompt (they stay in recall memory, whole and searchable).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agent.documents.library import Library
from agent.mind.functions import TurnContext
from agent.mind.instructions import MEMORY_PRESSURE, STATISTICS, SUMMARY_PROMPT, SYSTEM_PROMPT
from agent.mind.llm import LLM, Completion
from agent.mind.memory import AgentStore
from agent.mind.messages import StoredMessage
from agent.mind.notes import archive_overview
from agent.mind.output import repetitive
from agent.mind.recall import RecallStore

log = logging.getLogger(__name__)

WARN_AT = 0.75
SUMMARISE_AT = 0.9
# After summarising, the messages left in view fill at most this share of the window.
KEEP_AFTER_SUMMARY = 0.5
# How far the calibrated estimate may move from bytes / 3, either way.
_RATIO_BOUNDS = (0.4, 1.5)
_SUMMARY_CHARS = 3000
# Fewer words than this is no summary ("(none)", "OK"): the extract is used instead.
_SUMMARY_MIN_WORDS = 5
_EXTRACT_LINE_CHARS = 160
# What is left of an earlier turn's function result when the prompt must shrink.
_SHORT_RESULT_CHARS = 240
SHORTENED = " … (shortened to save room: call the function again to read it all)"
# Tokens one search result passage takes in a prompt, with its citation line: a page of
# results should fill at most a quarter of the window.
_PASSAGE_TOKENS = 300
_MIN_REPLY_TOKENS = 256


def estimate_tokens(payload: Any) -> int:
    """A conservative token count for messages or schemas (UTF-8 bytes / 3)."""
    return len(json.dumps(payload, ensure_ascii=False).encode()) // 3 + 1


@dataclass(frozen=True)
class Prompt:
    """The messages of one request and their estimated size in tokens."""

    messages: list[dict[str, Any]]
    estimated_tokens: int
    """Bytes / 3 of the messages and the tool schemas, before calibration."""


class ContextWindow:
    """Builds prompts for one model, summarising when they would outgrow its window."""

    def __init__(
        self,
        *,
        llm: LLM,
        recall: RecallStore,
        store: AgentStore,
        library: Library,
        window_tokens: int,
        reply_tokens: int,
        summary_tokens: int,
        schemas: Sequence[dict[str, Any]],
    ) -> None:
        self._llm = llm
        self._recall = recall
        self._store = store
        self._library = library
        self._configured = window_tokens
        self._size: int | None = None
        self._sizing = asyncio.Lock()
        # Room kept for each step's answer (its max_tokens): the configured bound, or an
        # eighth of a small window. A quarter of a 4,096-token window left the current turn
        # alone (instructions, tools, a page of results) over the summarising threshold, so
        # every turn paid a summary; replies of local models run to a few hundred tokens.
        self._reply_tokens = reply_tokens
        self._summary_tokens = summary_tokens
        self._fixed = estimate_tokens(list(schemas))
        # Real tokens per estimated token, learnt from the server's usage reports.
        self._ratio = 1.0
        # Agents told of memory pressure since their last summary: told once, as MemGPT does,
        # not at every turn until the summary comes (a small window is past the warning line
        # at nearly every turn, and a small model says the warning back).
        self._warned: set[int] = set()

    async def size(self) -> int:
        """The window in tokens: the configured one, or the server's if that is smaller."""
        async with self._sizing:
            if self._size is None:
                reported = await self._llm.context_window()
                self._size = min(self._configured, reported or self._configured)
                if reported and reported < self._configured:
                    log.info(
                        "the model server's context window is %d tokens (configured %d): using %d",
                        reported,
                        self._configured,
                        self._size,
                    )
            return self._size

    def observe(self, prompt: Prompt, completion: Completion) -> None:
        """Calibrate the estimate by the prompt size the server reported for ``prompt``."""
        if not completion.prompt_tokens or prompt.estimated_tokens <= 0:
            return
        measured = completion.prompt_tokens / prompt.estimated_tokens
        low, high = _RATIO_BOUNDS
        self._ratio = min(high, max(low, 0.7 * self._ratio + 0.3 * measured))

    async def overflowed(self, ctx: TurnContext, window: int | None) -> None:
        """The server refused a prompt as too long: believe its window and summarise now."""
        size = await self.size()
        if window and window < size:
            self._size = window
        else:
            # Our count ran short of the server's: count more conservatively from now on.
            self._ratio = min(_RATIO_BOUNDS[1], self._ratio * 1.25)
        log.info("agent %s: the server found the prompt too long; summarising", ctx.agent.key)
        messages, system, _ = await self._view(ctx)
        budget = await self._budget()
        await self._summarise(ctx, messages, self._part(system), budget)

    async def page_size(self, configured: int) -> int:
        """Search results per page: ``configured``, fewer when a page would crowd the window."""
        return max(2, min(configured, await self.size() // (4 * _PASSAGE_TOKENS)))

    async def prompt(self, ctx: TurnContext) -> Prompt:
        """The messages for the next completion, within the window."""
        budget = await self._budget()
        messages, system, stats = await self._view(ctx)
        raw = self._raw(system, stats, messages)
        for _ in range(2):  # a summary that frees too little is followed by another
            if raw * self._ratio <= SUMMARISE_AT * budget:
                break
            messages = _earlier_results_shortened(messages)
            raw = self._raw(system, stats, messages)
            if raw * self._ratio <= SUMMARISE_AT * budget:
                break
            await self._summarise(ctx, messages, self._part(system), budget)
            messages, system, stats = await self._view(ctx)
            raw = self._raw(system, stats, messages)
        used = round(raw * self._ratio)
        # Only earlier turns can be summarised away: a turn that fills the window by itself
        # (a small window, a long search result) gets no warning, which a small model would
        # only say back to the person.
        if ctx.memory_warned or (
            used > WARN_AT * budget
            and _earlier_turns(messages)
            and ctx.agent.id not in self._warned
        ):
            ctx.memory_warned = True
            self._warned.add(ctx.agent.id)
            pressure = MEMORY_PRESSURE.format(percent=round(100 * used / budget))
            stats = {"role": "system", "content": f"{stats['content']}\n{pressure}"}
        return Prompt(_with_statistics(system, stats, messages), raw)

    async def _budget(self) -> int:
        """Tokens a prompt may use: the window less the room kept for the answer."""
        size = await self.size()
        return size - await self.reply_tokens()

    async def reply_tokens(self) -> int:
        """The most tokens one step may generate in this window (its ``max_tokens``)."""
        return min(self._reply_tokens, max(_MIN_REPLY_TOKENS, await self.size() // 8))

    def _raw(
        self, system: dict[str, Any], stats: dict[str, Any], messages: list[StoredMessage]
    ) -> int:
        """Uncalibrated tokens of a whole prompt, tool schemas included."""
        return self._fixed + estimate_tokens([system, stats, *[m.to_openai() for m in messages]])

    def _part(self, payload: Any) -> int:
        """Calibrated tokens of one part of a prompt."""
        return round(estimate_tokens(payload) * self._ratio)

    async def _view(
        self, ctx: TurnContext
    ) -> tuple[list[StoredMessage], dict[str, Any], dict[str, Any]]:
        """The messages in context, the system prompt and the statistics, read afresh.

        The reads are independent, so they run at once on the database's readers.
        """
        messages, summary, recall, (passages, names) = await asyncio.gather(
            self._recall.in_context(ctx.agent.id),
            self._store.summary(ctx.agent.id),
            self._recall.count(ctx.agent.id),
            archive_overview(self._library.links, ctx.agent.key),
        )
        system = SYSTEM_PROMPT.format(
            summary=f"Summary of earlier conversation: {summary}\n" if summary else "",
            core=ctx.core.render(),
        )
        stats = STATISTICS.format(
            recall=recall,
            hidden=max(recall - len(messages), 0),
            archival=passages,
            sources=", ".join(names) if names else "no attached sources",
        )
        return (
            messages,
            {"role": "system", "content": system},
            {"role": "system", "content": stats},
        )

    async def _summarise(
        self, ctx: TurnContext, messages: list[StoredMessage], system_tokens: int, budget: int
    ) -> None:
        """Fold the oldest messages into the summary and take them out of view."""
        keep = KEEP_AFTER_SUMMARY * budget - system_tokens - self._fixed * self._ratio
        cut = _cut_point(messages, keep, self._part)
        if cut == 0:
            log.warning("agent %s: nothing can be evicted; the prompt stays long", ctx.agent.key)
            return
        previous = await self._store.summary(ctx.agent.id)
        evicted = messages[:cut]
        summary = await self._summary(previous, evicted) or _extract(previous, evicted)
        count = await self._recall.evict(ctx.agent.id, evicted[-1].id, summary=summary)
        self._warned.discard(ctx.agent.id)
        log.info("agent %s: summarised and evicted %d messages", ctx.agent.key, count)

    async def _summary(self, previous: str, evicted: list[StoredMessage]) -> str | None:
        """The model's summary, asked twice at most; None if neither answer is usable."""
        transcript = "\n".join(_transcript_line(m) for m in evicted)
        for words, tokens in ((300, self._summary_tokens), (100, self._summary_tokens // 2)):
            request = [
                {"role": "system", "content": SUMMARY_PROMPT.format(words=words)},
                {
                    "role": "user",
                    "content": f"Previous summary:\n{previous or 'There is none yet.'}\n\n"
                    f"Messages:\n{transcript}",
                },
            ]
            completion = await self._llm.complete(request, [], max_tokens=tokens)
            text = (completion.content or "").strip()
            usable = len(text.split()) >= _SUMMARY_MIN_WORDS and not repetitive(text)
            if usable and completion.finish_reason != "length":
                return text[:_SUMMARY_CHARS]
            log.info(
                "summary unusable (finish=%s, %d chars): asking again shorter",
                completion.finish_reason,
                len(text),
            )
        return None


def _extract(previous: str, evicted: list[StoredMessage]) -> str:
    """A summary made without the model: the previous one plus each message's first line."""
    lines = [previous] if previous else []
    for message in evicted:
        first = (message.content or "").strip().split("\n", 1)[0][:_EXTRACT_LINE_CHARS]
        if first and message.role in ("user", "assistant"):
            lines.append(f"{message.speaker_name or message.role}: {first}")
    text = "\n".join(lines)
    return text[-_SUMMARY_CHARS:]


def _earlier_results_shortened(messages: list[StoredMessage]) -> list[StoredMessage]:
    """``messages`` with the function results of turns before the newest one cut short."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=0)
    return [
        replace(m, content=(m.content or "")[:_SHORT_RESULT_CHARS].rstrip() + SHORTENED)
        if i < last_user and m.role == "tool" and len(m.content or "") > _SHORT_RESULT_CHARS
        else m
        for i, m in enumerate(messages)
    ]


def _earlier_turns(messages: list[StoredMessage]) -> bool:
    """Whether any message in view comes before the newest person's message."""
    return max((i for i, m in enumerate(messages) if m.role == "user"), default=0) > 0


def _with_statistics(
    system: dict[str, Any], stats: dict[str, Any], messages: list[StoredMessage]
) -> list[dict[str, Any]]:
    """System prompt, conversation, statistics just before the newest person's message."""
    rendered = [m.to_openai() for m in messages]
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages))
    return [system, *rendered[:last_user], stats, *rendered[last_user:]]


def _cut_point(messages: list[StoredMessage], budget: float, size: Callable[[Any], int]) -> int:
    """How many of the oldest messages to evict so the rest fit ``budget`` tokens.

    The first message kept must be a user message, so no function result is left without the
    call it answers; the newest user message is always kept.
    """
    sizes = [size(m.to_openai()) for m in messages]
    remaining = sum(sizes)
    starts: list[int] = []
    for i, message in enumerate(messages):
        if i > 0 and message.role == "user":
            starts.append(i)
            if remaining <= budget:
                return i
        remaining -= sizes[i]
    return starts[-1] if starts else 0


def _transcript_line(message: StoredMessage) -> str:
    who = message.speaker_name or message.role
    if message.tool_calls:
        calls = ", ".join(
            f"{c['function']['name']}({c['function']['arguments'][:200]})"
            for c in message.tool_calls
        )
        return f"{who}: {message.content or ''} [calls {calls}]"
    return f"{who}: {(message.content or '')[:1000]}"
