"""The adapters' one policy and error layer, on its own (the platforms' tests ask it through
Discord and Slack: tests/adapters/*/test_policy.py)."""

from __future__ import annotations

import logging

import pytest

from adapters.failures import INTERNAL_ERROR, Refused, sentence_for
from adapters.policy import (
    Action,
    Standing,
    UploadAnswer,
    UploadPolicy,
    needs_manager,
    reads_uploads,
    refusal,
    require,
    upload_answer,
)
from agent.core import ArchivistError

MANAGER = Standing(manager=True, needs="the Librarian role")
MEMBER = Standing(manager=False, needs="the Librarian role")


def test_changing_what_an_agent_reads_or_remembers_needs_a_manager() -> None:
    managed = {a for a in Action if needs_manager(a)}
    assert managed == {
        Action.LOAD,
        Action.ATTACH,
        Action.DETACH,
        Action.FORGET_SOURCE,
        Action.RESET,
    }
    assert not needs_manager(Action.ASK)


async def test_an_open_action_does_not_ask_the_platform() -> None:
    asked: list[str] = []

    async def standing() -> Standing:
        asked.append("asked")
        return MEMBER

    for action in (Action.ASK, Action.SEARCH, Action.LIST_SOURCES, Action.SHOW_MEMORY):
        await require(action, standing)
    assert asked == []
    with pytest.raises(Refused, match=r"^Managing sources needs the Librarian role\.$"):
        await require(Action.ATTACH, standing)
    assert asked == ["asked"]


async def test_a_manager_may_do_everything() -> None:
    async def standing() -> Standing:
        return MANAGER

    for action in Action:
        await require(action, standing)


def test_the_refusal_names_what_is_needed_and_is_ours() -> None:
    refused = refusal(MEMBER)
    assert str(refused) == "Managing sources needs the Librarian role."
    assert isinstance(refused, ArchivistError)


@pytest.mark.parametrize(
    ("policy", "addressed", "read"),
    [
        ("always", False, True),
        ("always", True, True),
        ("mention", False, False),
        ("mention", True, True),
        ("off", False, False),
        ("off", True, False),
    ],
)
def test_which_uploads_are_read(policy: UploadPolicy, addressed: bool, read: bool) -> None:
    assert reads_uploads(policy, addressed=addressed) is read


@pytest.mark.parametrize(
    ("standing", "addressed", "answer"),
    [
        (MANAGER, False, UploadAnswer.LOAD),
        (MANAGER, True, UploadAnswer.LOAD),
        (MEMBER, True, UploadAnswer.REFUSE),
        (MEMBER, False, UploadAnswer.QUIET),
    ],
)
def test_what_an_upload_gets(standing: Standing, addressed: bool, answer: UploadAnswer) -> None:
    assert upload_answer(standing, addressed=addressed) is answer


def test_our_failures_keep_their_words_and_others_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert sentence_for(ArchivistError("No source called x."), "/attach") == "No source called x."
    with caplog.at_level(logging.ERROR, logger="adapters.failures"):
        assert sentence_for(KeyError("secret"), "/attach in C1") == INTERNAL_ERROR
    [record] = caplog.records
    assert record.getMessage() == "/attach in C1 failed"
    assert record.exc_info is not None and record.exc_info[0] is KeyError
