"""The agent loop: one turn of a MemGPT-style agent, from a user message to a reply.

Every message (the user's, the model's, each function result) is persisted in recall memory
before it is acted on. The model thinks in its message text (inner monologue), talks only
through ``send_message``, and chains functions with heartbeats up to ``max_steps``. The prompt
is rebuilt every step: system prompt with true memory statistics, then the messages still in
context; when they would overflow the window, the oldest are summarised and evicted first.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from enum import Enum

from agent.documents.library import Library, SearchPage
from agent.errors import ArchivistError
from agent.mind.attribution import cited
from agent.mind.citations import CitationStore
from agent.mind.follow_up import first_search_query
from agent.mind.functions import FUNCTIONS, MAX_REFUSALS, TurnContext
from agent.mind.llm import LLM, Completion, ContextOverflow, LLMUnavailable, ToolCall
from agent.mind.memory import AgentState, AgentStore, CoreMemory
from agent.mind.messages import Message
from agent.mind.notes import archive_overview
from agent.mind.output import (
    NO_ANSWER,
    NO_ANSWER_BUT,
    NOT_SHOWN,
    cut_at_sentence,
    refusal,
    with_text_calls,
)
from agent.mind.pointing import closest_passage, readable
from agent.mind.preview import PartialSink, ReplyPreview
from agent.mind.profiles import Profiles
from agent.mind.recall import RecallStore
from agent.mind.tools import HEARTBEAT, ToolArgumentError, tool_schema, validate_arguments
from agent.mind.window import ContextWindow
from agent.values import Citation

log = logging.getLogger(__name__)

SEARCH_ONLY_LABEL = "Search results (no language model configured):"
MODEL_DOWN_LABEL = "Search results (the language model is unreachable):"


@dataclass(frozen=True)
class Incoming:
    """A message for an agent: who said what, in which conversation and workspace."""

    conversation: str
    scope: str
    text: str
    speaker_id: str = "local"
    speaker_name: str = "user"
    on_partial: PartialSink | None = field(default=None, compare=False)
    """Shown the first reply as the model writes it (streamed), each time it grows; the
    turn's :class:`Reply` then replaces what it showed."""


class Stop(Enum):
    """Why a turn ended."""

    ANSWERED = "answered"
    """The model replied and asked for no further step."""
    STEP_LIMIT = "step_limit"
    """The model was still calling functions when ``max_steps`` ran out."""
    SEARCH_ONLY = "search_only"
    """No model is configured: the reply is archive search results."""
    MODEL_UNAVAILABLE = "model_unavailable"
    ERROR = "error"
    """An expected failure outside the model (Milvus down, for one); the notice says which."""
    INTERNAL_ERROR = "internal_error"
    SHUTTING_DOWN = "shutting_down"


_FAILURES = frozenset({Stop.MODEL_UNAVAILABLE, Stop.ERROR, Stop.INTERNAL_ERROR, Stop.SHUTTING_DOWN})


@dataclass(frozen=True)
class Reply:
    """What a turn produced: messages for the people, the citations they used, why it
    stopped, and a notice: a one-sentence failure or mode label (the LLM being down, say).

    The user's message is kept in memory whatever happens.
    """

    messages: list[str]
    citations: list[Citation] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    stop: Stop = Stop.ANSWERED
    notice: str | None = None

    @property
    def failed(self) -> bool:
        """True when the turn did not finish (the notice says why)."""
        return self.stop in _FAILURES


@dataclass(frozen=True)
class AgentConfig:
    """How agents are made and how far a turn may go."""

    persona: str = "memgpt_doc"
    human: str = "basic"
    char_limit: int = 2000
    max_steps: int = 10
    page_size: int = 5
    context_window: int = 8192
    reply_tokens: int = 1024
    summary_tokens: int = 512
    search_first: bool = False
    """Search the archive for each message before the model's first step."""


class Agents:
    """Runs turns for every conversation's agent (one turn at a time per conversation is the
    caller's job: see :class:`agent.mind.conversations.Conversations`)."""

    def __init__(
        self,
        *,
        store: AgentStore,
        recall: RecallStore,
        library: Library,
        llm: LLM | None,
        profiles: Profiles,
        config: AgentConfig,
        citations: CitationStore,
    ) -> None:
        self._store = store
        self._citations = citations
        self._recall = recall
        self._library = library
        self._llm = llm
        self._profiles = profiles
        self._config = config
        self._schemas = [tool_schema(fn) for fn in FUNCTIONS.values()]
        self._window = (
            ContextWindow(
                llm=llm,
                recall=recall,
                store=store,
                library=library,
                window_tokens=config.context_window,
                reply_tokens=config.reply_tokens,
                summary_tokens=config.summary_tokens,
                schemas=self._schemas,
            )
            if llm is not None
            else None
        )

    @property
    def search_only(self) -> bool:
        """True when no language model is configured: replies are archive search results."""
        return self._llm is None

    async def agent(self, key: str) -> AgentState:
        """The agent of a conversation, created with the configured persona on first use."""
        existing = await self._store.get(key)
        if existing is not None:
            return existing
        return await self._store.get_or_create(
            key,
            persona=self._profiles.persona(self._config.persona),
            human=self._profiles.human(self._config.human),
            persona_name=self._config.persona,
            human_name=self._config.human,
            char_limit=self._config.char_limit,
        )

    async def turn(self, incoming: Incoming) -> Reply:
        """Handle one user message and return the reply."""
        state = await self.agent(incoming.conversation)
        await self._recall.answer_dangling_calls(state.id)
        await self._recall.add(
            state.id,
            Message(
                "user",
                incoming.text,
                speaker_id=incoming.speaker_id,
                speaker_name=incoming.speaker_name,
            ),
        )
        if self._llm is None or self._window is None:
            return await self._search_only(state, incoming.text)
        ctx = TurnContext(
            agent=state,
            core=CoreMemory.of(state, self._store),
            recall=self._recall,
            library=self._library,
            page_size=await self._window.page_size(self._config.page_size),
            previous_reply=await self._recall.last_reply(state.id),
            question=incoming.text,
            citations=self._citations,
        )
        if self._config.search_first:
            await self._search_first(ctx, incoming.text)
        thoughts: list[str] = []
        stop = Stop.STEP_LIMIT
        overflowed = False
        try:
            for _ in range(self._config.max_steps):
                prompt = await self._window.prompt(ctx)
                preview = (
                    ReplyPreview(incoming.on_partial)
                    if incoming.on_partial is not None and not ctx.messages
                    else None
                )
                try:
                    completion = await self._llm.complete(
                        prompt.messages,
                        self._schemas,
                        max_tokens=await self._window.reply_tokens(),
                        on_delta=preview,
                    )
                except ContextOverflow as exc:
                    if overflowed:
                        raise
                    # The server's window is smaller than we knew: summarise, then retry.
                    overflowed = True
                    await self._window.overflowed(ctx, exc.window)
                    continue
                self._window.observe(prompt, completion)
                completion = with_text_calls(completion, FUNCTIONS)
                if completion.content:
                    thoughts.append(completion.content)
                if not await self._act(ctx, completion):
                    stop = Stop.ANSWERED
                    break
        except LLMUnavailable as exc:
            messages, citations = await cited(ctx)
            if not messages:
                messages, citations = await self._searched_instead(state, incoming.text)
            return Reply(messages, citations, thoughts, Stop.MODEL_UNAVAILABLE, notice=str(exc))
        if not ctx.messages:
            # Inner monologue stays private: a turn that never spoke says so rather than leave
            # the person with nothing, and remembers having said it.
            if stop is Stop.STEP_LIMIT:
                fallback = (
                    f"I could not finish within {self._config.max_steps} steps: please ask"
                    " again, perhaps more narrowly."
                )
            else:
                # A passage of this turn that matches the question says more than an apology
                # (a small model often writes nothing with the right passage in view).
                passage = closest_passage(ctx.shown, ctx.question)
                fallback = f"{NO_ANSWER_BUT}\n{passage}" if passage else NO_ANSWER
            row = await self._recall.add(state.id, Message("assistant", fallback))
            if stop is not Stop.STEP_LIMIT:
                # Kept for search but out of view: a small model copies the apology as its
                # answer to every later question (bench/real_model.py, 5020059).
                ctx.unseen.append(row)
            ctx.messages.append(fallback)
        await self._recall.hide(state.id, ctx.unseen)
        messages, citations = await cited(ctx)
        return Reply(messages, citations, thoughts, stop)

    async def _act(self, ctx: TurnContext, completion: Completion) -> bool:
        """Persist the model's message and run its calls; True if the model wants another step."""
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in completion.tool_calls
        ]
        # An assistant message needs text unless it calls functions.
        content = completion.content if completion.content or calls else ""
        row = await self._recall.add(
            ctx.agent.id, Message("assistant", content, tool_calls=calls or None)
        )
        if not calls:
            return await self._speak(ctx, completion, row)
        again = False
        for call in completion.tool_calls:
            sent = len(ctx.messages)
            result, heartbeat = await self._call(ctx, call.name, call.arguments)
            # The result, then what the people were told as rows of their own (search only,
            # so conversation search finds them), stored together.
            await self._recall.add_all(
                ctx.agent.id,
                [
                    (Message("tool", result, tool_call_id=call.id, name=call.name), True),
                    *((Message("assistant", text), False) for text in ctx.messages[sent:]),
                ],
            )
            again = again or heartbeat
        # A chain that ends without a word to the people gets one more step to say something,
        # unless the model keeps writing what cannot be shown.
        return (again or not ctx.messages) and ctx.refused < MAX_REFUSALS

    async def _speak(self, ctx: TurnContext, completion: Completion, row: int) -> bool:
        """Deliver a plain-text reply if a person may see it, else tell the model why (once).

        True if the model gets another step.
        """
        text = (completion.content or "").strip()
        if not text:
            # Out of view with the turn: a small model shown its own empty reply answers the
            # next questions with nothing too (bench/real_model.py, 6d49151).
            ctx.unseen.append(row)
            return False
        if ctx.messages:
            return False  # monologue after the answer was sent
        if completion.finish_reason == "length":
            text = cut_at_sentence(text)
        text = readable(text, ctx.shown, ctx.question)
        reason = refusal(text, ctx.previous_reply)
        if reason is None:
            ctx.messages.append(text)
            return False
        log.info("reply in %s not shown: %s", ctx.agent.key, reason)
        ctx.refused += 1
        ctx.unseen.append(row)
        if ctx.refused >= MAX_REFUSALS:
            return False
        note = Message("system", NOT_SHOWN.format(reason=reason))
        ctx.unseen.append(await self._recall.add(ctx.agent.id, note))
        return True

    async def _search_first(self, ctx: TurnContext, text: str) -> None:
        """Run ``archival_memory_search`` for the message (a follow-up with the question it
        follows) as the agent's own first call, so the model starts from the passages (stored
        as a call and its result, paired)."""
        passages, _ = await archive_overview(self._library.links, ctx.agent.key)
        if not passages or not text.strip():
            return
        query = first_search_query(text, await self._recall.earlier_question(ctx.agent.id))
        call = ToolCall(
            f"call_{uuid.uuid4().hex[:24]}", "archival_memory_search", json.dumps({"query": query})
        )
        await self._act(ctx, Completion(None, [call], None, None))

    async def _call(self, ctx: TurnContext, name: str, arguments: str) -> tuple[str, bool]:
        """Run one function call; failures go back to the model, which then runs again."""
        fn = FUNCTIONS.get(name)
        if fn is None:
            known = ", ".join(FUNCTIONS)
            return f"Error: there is no function {name[:64]!r}; the functions are {known}.", True
        try:
            args = validate_arguments(fn, arguments)
            heartbeat = bool(args.pop(HEARTBEAT, False))
            return await fn(ctx, **args), heartbeat
        except (ToolArgumentError, ArchivistError) as exc:
            return f"Error: {exc}", True
        except Exception:
            # Every call must get a result, or the next prompt pairs a call with nothing and
            # the provider rejects the conversation from then on.
            log.exception("function %s failed in %s", name, ctx.agent.key)
            return f"Error: {name} failed on an internal error; try something else.", True

    async def _search_only(self, state: AgentState, text: str) -> Reply:
        found = await self._library.search_attached(state.key, text, top_k=self._config.page_size)
        reply = _search_only_text(found, SEARCH_ONLY_LABEL)
        await self._recall.add(state.id, Message("assistant", reply))
        citations = [r.cited_as(r.rank) for r in found.results]
        # The label opens the reply itself; a notice repeating it would show it twice.
        return Reply([reply], citations, stop=Stop.SEARCH_ONLY)

    async def _searched_instead(
        self, state: AgentState, text: str
    ) -> tuple[list[str], list[Citation]]:
        """With the model unreachable: the attached sources' best passages, labelled so.

        Nothing if nothing matches or the archive fails too (the notice says the model is
        down either way). Not kept in recall memory: the model did not say it.
        """
        try:
            found = await self._library.search_attached(
                state.key, text, top_k=self._config.page_size
            )
        except ArchivistError as exc:
            log.warning("no search results instead of the model for %s: %s", state.key, exc)
            return [], []
        if not found.results:
            return [], []
        citations = [r.cited_as(r.rank) for r in found.results]
        return [_search_only_text(found, MODEL_DOWN_LABEL)], citations


def _search_only_text(found: SearchPage, label: str) -> str:
    if not found.total:
        return f"{label} nothing to search: attach a source to this conversation first."
    lines = [label]
    for r in found.results:
        lines.append(f"[{r.rank}] {r.citation}: {' '.join(r.text.split())}")
    return "\n".join(lines)
