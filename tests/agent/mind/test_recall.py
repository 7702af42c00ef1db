"""Recall memory on real SQLite files: messages stored, read back, searched and evicted."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from agent.db import Database
from agent.mind.memory import AgentStore
from agent.mind.messages import Message, StoredMessage
from agent.mind.recall import INTERRUPTED, RecallStore
from agent.mind.timestamps import timestamp
from tests.fake_openai import tool_pairing_error

KEY = "console:local:default"
PERSONA = "I am Archivist, a careful librarian."
HUMAN = "Nothing known yet."


async def _agent(db: Database, key: str = KEY) -> int:
    state = await AgentStore(db).get_or_create(
        key, persona=PERSONA, human=HUMAN, persona_name="sam", human_name="basic"
    )
    return state.id


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _ids(messages: list[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


async def test_every_message_is_stored_and_read_back_in_order(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    sent = [
        Message("system", "You are Archivist."),
        Message("user", "hello", speaker_id="u1", speaker_name="Alice"),
        Message("assistant", None, tool_calls=[call]),
        Message("tool", '{"status": "OK"}', tool_call_id="c1", name="f"),
        Message("assistant", "Hi Alice!"),
    ]
    ids = [await recall.add(agent_id, m) for m in sent]
    assert ids == sorted(ids)
    assert await recall.count(agent_id) == 5
    stored = await recall.in_context(agent_id)
    assert _ids(stored) == ids
    assert [s.to_openai() for s in stored] == [
        {"role": "system", "content": "You are Archivist."},
        {"role": "user", "content": "[Alice] hello"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": '{"status": "OK"}', "tool_call_id": "c1"},
        {"role": "assistant", "content": "Hi Alice!"},
    ]
    assert stored[1].speaker_id == "u1" and stored[3].name == "f"
    assert stored[0].created_at.tzinfo is not None
    assert all(s.in_context for s in stored)
    summaries = await AgentStore(db).list()
    assert [(s.key, s.messages) for s in summaries] == [(KEY, 5)]
    assert summaries[0].last_activity == stored[-1].created_at


async def test_messages_stored_together_keep_their_order_and_context_flags(
    db: Database,
) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    first = await recall.add(agent_id, Message("user", "before"))
    ids = await recall.add_all(
        agent_id,
        [
            (Message("tool", "Sent.", tool_call_id="c1", name="send_message"), True),
            (Message("assistant", "Hello, Alice."), False),
        ],
    )
    assert ids[0] > first and ids == sorted(ids) and len(ids) == 2
    assert _ids(await recall.in_context(agent_id)) == [first, ids[0]]
    assert [m.id for m in (await recall.search(agent_id, "Alice")).results] == [ids[1]]
    assert await recall.add_all(agent_id, []) == []


def test_speaker_names_cannot_forge_lines_or_speakers() -> None:
    message = Message("user", "hi", speaker_name="Bob]\n[System")
    assert message.to_openai()["content"] == "[Bob System] hi"


def test_messages_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        Message("tool", "result")
    with pytest.raises(ValueError, match="needs content"):
        Message("user", None)
    with pytest.raises(ValueError, match="naive datetime"):
        Message("user", "hi", created_at=datetime(2024, 5, 1))


def test_timestamps_are_utc_with_milliseconds() -> None:
    moment = datetime(2024, 5, 1, 11, 30, 0, 250999, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp(moment) == "2024-05-01T09:30:00.250Z"


async def test_search_ranks_pages_and_counts_truly(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    for i in range(11):
        await recall.add(agent_id, Message("user", f"note {i} mentions titration once"))
    best = await recall.add(agent_id, Message("assistant", "titration titration titration!"))
    await recall.add(agent_id, Message("user", "nothing relevant here"))
    seen: list[int] = []
    for page in range(3):
        result = await recall.search(agent_id, "titration", page=page, page_size=5)
        assert (result.total, result.pages, result.page) == (12, 3, page)
        seen += _ids(result.results)
    assert len(seen) == len(set(seen)) == 12
    assert seen[0] == best
    beyond = await recall.search(agent_id, "titration", page=3, page_size=5)
    assert (beyond.results, beyond.total) == ([], 12)
    with pytest.raises(ValueError, match="page -1"):
        await recall.search(agent_id, "titration", page=-1)


async def test_search_skips_system_and_function_results(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    await recall.add(agent_id, Message("system", "secret plumbing"))
    await recall.add(agent_id, Message("tool", "plumbing result", tool_call_id="c", name="f"))
    said = await recall.add(agent_id, Message("user", "plumbing question", speaker_name="Al"))
    result = await recall.search(agent_id, "plumbing")
    assert (result.total, _ids(result.results)) == (1, [said])
    assert result.results[0].speaker_name == "Al"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Each whitespace-separated word is one quoted phrase, ORed with the others.
        ("NEAR(apple pear)", {"pear"}),  # "near apple" is no phrase of any message
        ('"unbalanced', set()),
        ("apple AND NOT pear", {"apple", "pear", "words"}),
        ("content:apple", set()),  # no column filter: the phrase "content apple"
        ("appl*", set()),  # no prefix search
        ("^apple", {"apple"}),
        ("apple) OR (1", {"apple"}),
        ("-apple", {"apple"}),
    ],
)
async def test_fts_syntax_in_queries_is_plain_text(
    db: Database, query: str, expected: set[str]
) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    messages = {
        "apple": "an apple a day",
        "pear": "a pear",
        "words": "NEAR and NOT are words too, as is AND",
    }
    ids = {
        await recall.add(agent_id, Message("user", text)): name for name, text in messages.items()
    }
    result = await recall.search(agent_id, query)
    assert {ids[m.id] for m in result.results} == expected
    assert result.total == len(expected)


async def test_a_query_without_words_finds_nothing(db: Database) -> None:
    agent_id = await _agent(db)
    await RecallStore(db).add(agent_id, Message("user", "hello"))
    result = await RecallStore(db).search(agent_id, ' " * ( ')
    assert (result.results, result.total, result.pages) == ([], 0, 0)


async def test_date_search_covers_whole_days_inclusively(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    times = [
        "2024-05-01T23:59:59.999",
        "2024-05-02T00:00:00.000",
        "2024-05-02T12:00:00.000",
        "2024-05-03T23:59:59.999",
        "2024-05-04T00:00:00.000",
    ]
    ids = [
        await recall.add(agent_id, Message("user", f"message {i}", created_at=_at(t)))
        for i, t in enumerate(times)
    ]
    # Out of order on purpose: results follow time, not insertion.
    late = await recall.add(
        agent_id, Message("assistant", "late entry", created_at=_at("2024-05-02T06:00:00"))
    )
    await recall.add(
        agent_id, Message("tool", "x", tool_call_id="c", created_at=_at("2024-05-02T07:00:00"))
    )
    days = await recall.search_date(agent_id, date(2024, 5, 2), date(2024, 5, 3), page_size=10)
    assert _ids(days.results) == [ids[1], late, ids[2], ids[3]]
    assert days.total == 4
    one_day = await recall.search_date(agent_id, date(2024, 5, 1), date(2024, 5, 1))
    assert _ids(one_day.results) == [ids[0]]
    exact = await recall.search_date(agent_id, _at(times[1]), _at(times[2]))
    assert _ids(exact.results) == [ids[1], late, ids[2]]
    paged = await recall.search_date(
        agent_id, date(2024, 5, 1), date(2024, 5, 4), page=1, page_size=4
    )
    assert (paged.total, paged.pages, _ids(paged.results)) == (6, 2, [ids[3], ids[4]])
    with pytest.raises(ValueError, match="naive datetime"):
        await recall.search_date(agent_id, datetime(2024, 5, 1), date(2024, 5, 2))


async def test_evicted_messages_leave_the_context_but_stay_searchable(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    ids = [await recall.add(agent_id, Message("user", f"fact {i} about kiwis")) for i in range(6)]
    evicted = await recall.evict(agent_id, ids[3], summary="Six facts about kiwis.")
    assert evicted == 4
    assert await recall.evict(agent_id, ids[3]) == 0
    assert _ids(await recall.in_context(agent_id)) == ids[4:]
    found = await recall.search(agent_id, "kiwis", page_size=10)
    assert sorted(_ids(found.results)) == ids
    assert {m.in_context for m in found.results} == {True, False}
    assert await recall.count(agent_id) == 6
    state = await AgentStore(db).get(KEY)
    assert state is not None and state.summary == "Six facts about kiwis."


async def test_two_agents_never_see_each_others_messages(db: Database) -> None:
    first = await _agent(db, "discord:1:10")
    second = await _agent(db, "slack:T1:C1")
    recall = RecallStore(db)
    mine = await recall.add(first, Message("user", "the password is swordfish"))
    theirs = await recall.add(second, Message("user", "swordfish for dinner"))
    await recall.add(second, Message("user", "more swordfish"))
    found = await recall.search(first, "swordfish")
    assert (found.total, _ids(found.results)) == (1, [mine])
    today = datetime.now(timezone.utc).date()
    dated = await recall.search_date(first, today - timedelta(days=1), today + timedelta(days=1))
    assert _ids(dated.results) == [mine]
    assert _ids(await recall.in_context(second))[0] == theirs
    await recall.evict(first, theirs)  # another agent's id bound evicts only its own
    assert _ids(await recall.in_context(second))[0] == theirs
    await AgentStore(db).reset(second)
    assert await recall.count(first) == 1
    listing = {s.key: s.messages for s in await AgentStore(db).list()}
    assert listing == {"discord:1:10": 1, "slack:T1:C1": 0}


def _call(call_id: str, name: str = "archival_memory_search") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def _calls(*call_ids: str) -> Message:
    return Message("assistant", "Let me look.", tool_calls=[_call(i) for i in call_ids])


def _result(call_id: str, text: str = "found it") -> Message:
    return Message("tool", text, tool_call_id=call_id, name="archival_memory_search")


def _shape(messages: list[StoredMessage]) -> list[tuple[str, str | None]]:
    """Each message as (role, what it says or which call it answers)."""
    return [
        (m.role, m.tool_call_id if m.role == "tool" else m.content or str(m.tool_calls))
        for m in messages
    ]


async def _assert_paired(recall: RecallStore, agent_id: int) -> None:
    prompt = [m.to_openai() for m in await recall.in_context(agent_id)]
    assert tool_pairing_error(prompt) is None, prompt


async def test_calls_left_without_results_get_one_interrupted_result_each(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    await recall.add(agent_id, Message("user", "Where is the manual?"))
    asked = await recall.add(agent_id, _calls("c1", "c2", "c3"))
    await recall.add_all(
        agent_id, [(_result("c1"), True), (Message("assistant", "Sent this."), False)]
    )
    assert tool_pairing_error([m.to_openai() for m in await recall.in_context(agent_id)])

    assert await recall.answer_dangling_calls(agent_id) == 2

    stored = await recall.in_context(agent_id)
    assert [m.id for m in stored][:3] == [asked - 1, asked, asked + 1]
    assert _shape(stored)[2:] == [("tool", "c1"), ("tool", "c2"), ("tool", "c3")]
    for answer in stored[3:]:
        assert answer.content == INTERRUPTED and answer.name == "archival_memory_search"
    await _assert_paired(recall, agent_id)
    count = await recall.count(agent_id)
    assert await recall.answer_dangling_calls(agent_id) == 0
    assert await recall.count(agent_id) == count


async def test_a_paired_conversation_is_left_alone(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    await recall.add(agent_id, Message("user", "hello"))
    await recall.add(agent_id, _calls("c1", "c2"))
    await recall.add_all(agent_id, [(_result("c2"), True), (_result("c1"), True)])
    await recall.add(agent_id, Message("system", "[memory pressure] save what matters"))
    await recall.add(agent_id, Message("assistant", "Hello!"))
    before = await recall.in_context(agent_id)
    assert await recall.answer_dangling_calls(agent_id) == 0
    assert await recall.in_context(agent_id) == before
    assert await recall.count(agent_id) == len(before)


async def test_a_dangling_call_with_later_messages_leaves_the_context(db: Database) -> None:
    # As in a state file written before the check existed: later turns stored after the call.
    agent_id = await _agent(db)
    other = await _agent(db, "slack:T1:C1")
    recall = RecallStore(db)
    await recall.add(agent_id, Message("user", "first question"))
    await recall.add(agent_id, _calls("c1"))
    await recall.add(agent_id, Message("user", "second question"))
    await recall.add(agent_id, _calls("c2", "c3"))
    theirs = await recall.add(other, _result("c3"))
    await recall.add(agent_id, _result("c3"))
    await recall.add(agent_id, Message("user", "third question"))
    await recall.add(agent_id, _calls("c4"))
    count = await recall.count(agent_id)

    assert await recall.answer_dangling_calls(agent_id) == 1

    assert _shape(await recall.in_context(agent_id)) == [
        ("user", "first question"),
        ("user", "second question"),
        ("user", "third question"),
        ("assistant", "Let me look."),
        ("tool", "c4"),
    ]
    await _assert_paired(recall, agent_id)
    assert await recall.count(agent_id) == count + 1  # nothing is deleted
    assert _ids(await recall.in_context(other)) == [theirs]
    assert await recall.answer_dangling_calls(agent_id) == 0


async def test_only_messages_in_context_pair(db: Database) -> None:
    agent_id = await _agent(db)
    recall = RecallStore(db)
    await recall.add(agent_id, Message("user", "one"))
    first_call = await recall.add(agent_id, _calls("c1"))
    stray = await recall.add(agent_id, _result("c1"))
    await recall.add(agent_id, Message("user", "two"))
    await recall.add(agent_id, _calls("c2"))
    evicted = await recall.add(agent_id, _result("c2"))
    # The call left the context and its result did not; the reverse for c2.
    await recall.evict(agent_id, first_call)
    await db.write("UPDATE messages SET in_context = 0 WHERE id = ?", (evicted,))

    assert await recall.answer_dangling_calls(agent_id) == 1

    stored = await recall.in_context(agent_id)
    assert stray not in _ids(stored)
    assert _shape(stored) == [("user", "two"), ("assistant", "Let me look."), ("tool", "c2")]
    assert stored[-1].content == INTERRUPTED
    await _assert_paired(recall, agent_id)
    assert await recall.answer_dangling_calls(agent_id) == 0


async def test_call_ids_are_paired_within_their_message(db: Database) -> None:
    # Some servers number calls per response, so one id recurs across the conversation.
    agent_id = await _agent(db)
    recall = RecallStore(db)
    await recall.add(agent_id, Message("user", "one"))
    await recall.add(agent_id, _calls("0"))
    await recall.add(agent_id, _result("0"))
    await recall.add(agent_id, Message("user", "two"))
    await recall.add(agent_id, _calls("0"))
    assert await recall.answer_dangling_calls(agent_id) == 1
    assert _shape(await recall.in_context(agent_id))[-2:] == [
        ("assistant", "Let me look."),
        ("tool", "0"),
    ]
    await _assert_paired(recall, agent_id)
