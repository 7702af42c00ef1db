"""Per-conversation queues: order, isolation, error mapping, idle workers, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import INTERNAL_ERROR
from agent.mind.conversations import SHUTTING_DOWN, Conversations, ShuttingDown
from tests.agent.mind.helpers import ScriptedAgents, message


@pytest.fixture
def agents() -> ScriptedAgents:
    return ScriptedAgents()


@pytest.fixture
def conversations(agents: ScriptedAgents) -> Conversations:
    return Conversations(agents, idle_seconds=60)  # type: ignore[arg-type]


async def test_a_second_message_waits_for_the_first_turn(
    agents: ScriptedAgents, conversations: Conversations
) -> None:
    first = asyncio.create_task(conversations.ask(message("one")))
    second = asyncio.create_task(conversations.ask(message("two")))
    await agents.entered.wait()  # by now both tasks ran up to their first await
    assert agents.started == ["one"] and conversations.queued == 1
    agents.release.setdefault("two", asyncio.Event()).set()
    agents.release["one"].set()
    assert (await first).messages == ["re: one"]
    assert (await second).messages == ["re: two"]
    assert agents.started == ["one", "two"]


async def test_other_conversations_run_meanwhile(
    agents: ScriptedAgents, conversations: Conversations
) -> None:
    blocked = asyncio.create_task(conversations.ask(message("slow", "c:1:1")))
    await agents.entered.wait()
    agents.release["fast"] = asyncio.Event()
    agents.release["fast"].set()
    assert (await conversations.ask(message("fast", "c:2:2"))).messages == ["re: fast"]
    assert not blocked.done()
    agents.release["slow"].set()
    assert (await blocked).messages == ["re: slow"]


async def test_failures_become_one_sentence_and_the_worker_goes_on(
    agents: ScriptedAgents, conversations: Conversations
) -> None:
    for text in ("boom", "down", "after"):
        agents.release[text] = asyncio.Event()
        agents.release[text].set()
    assert (await conversations.ask(message("boom"))).notice == INTERNAL_ERROR
    assert (await conversations.ask(message("down"))).notice == "The language model is down."
    assert (await conversations.ask(message("after"))).messages == ["re: after"]


async def test_an_idle_worker_ends_and_a_new_message_starts_another(agents: ScriptedAgents) -> None:
    conversations = Conversations(agents, idle_seconds=0.01)  # type: ignore[arg-type]
    agents.release["a"] = asyncio.Event()
    agents.release["a"].set()
    await conversations.ask(message("a"))
    await asyncio.wait(set(conversations._workers))  # the worker notices it is idle and ends
    assert conversations.active == 0
    agents.release["b"] = asyncio.Event()
    agents.release["b"].set()
    assert (await conversations.ask(message("b"))).messages == ["re: b"]


async def test_close_tells_waiting_callers(
    agents: ScriptedAgents, conversations: Conversations
) -> None:
    running = asyncio.create_task(conversations.ask(message("stuck")))
    waiting = asyncio.create_task(conversations.ask(message("queued")))
    await agents.entered.wait()
    await conversations.close()
    for task in (running, waiting):
        reply = await task
        assert reply.failed and reply.notice == SHUTTING_DOWN
    assert agents.started == ["stuck"]


async def test_close_lets_queued_work_finish_within_the_grace_and_refuses_new_work(
    agents: ScriptedAgents, conversations: Conversations
) -> None:
    running = asyncio.create_task(conversations.ask(message("first")))
    queued = asyncio.create_task(conversations.ask(message("second")))
    await agents.entered.wait()
    agents.release.setdefault("second", asyncio.Event()).set()
    closing = asyncio.create_task(conversations.close(grace=30))
    agents.release["first"].set()
    await closing
    assert (await running).messages == ["re: first"]
    assert (await queued).messages == ["re: second"]
    late = await conversations.ask(message("late", conversation="c:2:2"))
    assert late.failed and late.notice == SHUTTING_DOWN
    with pytest.raises(ShuttingDown):
        await conversations.run("c:1:1", agents.entered.wait)
    assert agents.started == ["first", "second"]


async def test_jobs_run_in_order_with_turns(
    agents: ScriptedAgents, conversations: Conversations
) -> None:
    agents.release["t"] = asyncio.Event()
    turn = asyncio.create_task(conversations.ask(message("t")))

    async def job() -> list[str]:
        return list(agents.started)  # what had run when the job ran

    queued = asyncio.create_task(conversations.run("c:1:1", job))
    await agents.entered.wait()
    assert not queued.done()
    agents.release["t"].set()
    assert (await turn).messages == ["re: t"]
    assert await queued == ["t"]
